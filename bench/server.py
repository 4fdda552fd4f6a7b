"""Start the real wabot server as a subprocess with a bench configuration, and watch its CPU and memory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]  # no stubs in the test extra
import yaml

REPO = Path(__file__).resolve().parent.parent
SECRET = "bench-app-secret"
ENV = {
    "WHATSAPP_TOKEN": "bench-token",
    "WHATSAPP_PHONE_NUMBER_ID": "100200300400500",
    "WHATSAPP_APP_SECRET": SECRET,
    "WHATSAPP_VERIFY_TOKEN": "bench-verify",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(folder: Path, *, flows: Path, send_rate: float, log_level: str = "WARNING") -> Path:
    """The shipped config.yaml with the bench's changes: local only, quiet logs, the outbox unthrottled."""
    raw = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    raw["server"]["host"] = "127.0.0.1"
    raw["admin"]["port"] = 0  # the admin listener on any free port: the bench does not use it
    raw["bot"]["flows"] = str(flows)
    # Meta's pacing (80/s, or 1,000/s at the top tier) would cap replies below what 1,000 inbound/s need
    raw["outbox"]["rate_per_second"] = send_rate
    raw["logging"]["level"] = log_level  # WARNING unless asked: the shipped INFO costs (bench/compare.py)
    # the demo's order look-up (SHOP_API) goes to the fake Graph on a free loopback port: allowed like the shop's
    raw["http"]["private_hosts"] = ["127.0.0.1"]
    path = folder / "bench-config.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


@dataclass(frozen=True, slots=True)
class Usage:
    cpu: float  # CPU seconds per wall second (1.0 = one core busy)
    sys: float  # the part of `cpu` spent in the kernel (system calls)
    rss_mb: float  # at the end
    peak_rss_mb: float  # the most the process ever held (VmHWM)


class Server:
    """`python -m wabot --config ...` in a subprocess; `stop()` sends SIGTERM and waits."""

    def __init__(
        self, folder: Path, *, graph_url: str, flows: Path = REPO / "flows", db: Path | None = None,
        send_rate: float = 20000, uvloop: bool = True, profile: Path | None = None, log_level: str = "WARNING",
    ) -> None:
        self.folder = folder
        self.port = free_port()
        self.config = write_config(folder, flows=flows, send_rate=send_rate, log_level=log_level)
        self.db = db or folder / "bench.db"
        self.log = folder / "server.log"
        self.env = dict(os.environ, **ENV, WHATSAPP_API_URL=graph_url, SHOP_API=graph_url,
                        WABOT_DB=str(self.db), WABOT_PORT=str(self.port),
                        WABOT_UVLOOP="1" if uvloop else "0")  # the server uses uvloop when installed unless 0
        self.profile = profile
        self.proc: subprocess.Popen[bytes] | None = None
        self.ps: psutil.Process | None = None
        self.started = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        args = ["--config", str(self.config)]
        if self.profile:
            # cProfile writes its file when run_app returns after SIGTERM
            return [sys.executable, "-m", "cProfile", "-o", str(self.profile), "-m", "wabot", *args]
        return [sys.executable, "-m", "wabot", *args]

    def start(self, timeout: float = 30.0) -> float:
        """Start and wait for /healthz; return the seconds from process start to the first 200."""
        self.started = time.monotonic()
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(self.command(), env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        self.ps = psutil.Process(self.proc.pid)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server stopped at start-up (exit {self.proc.returncode}):\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        return time.monotonic() - self.started
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() - self.started > timeout:
                raise RuntimeError(f"the server did not answer /healthz within {timeout:g} s:\n{self.tail()}")
            time.sleep(0.005)

    def cpu_seconds(self) -> tuple[float, float]:
        """(user + system, system) CPU seconds so far."""
        assert self.ps is not None
        t = self.ps.cpu_times()
        return float(t.user + t.system), float(t.system)

    def usage(self, cpu_start: tuple[float, float], wall: float) -> Usage:
        assert self.ps is not None
        rss = self.ps.memory_info().rss / 2**20
        total, system = self.cpu_seconds()
        peak = max(rss, _peak_rss_mb(self.ps.pid))
        return Usage((total - cpu_start[0]) / wall, (system - cpu_start[1]) / wall, rss, peak)

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
