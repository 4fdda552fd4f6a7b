"""One server per SQLite file: a second `python -m wabot` on the same database refuses to start, naming the first."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests import DEMO
from wabot.db import lock


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(folder: Path, db: Path, port: int) -> Path:
    path = folder / "config.yaml"
    folder.mkdir(exist_ok=True)
    path.write_text(f"server: {{host: 127.0.0.1, port: {port}}}\nadmin: {{port: 0}}\ndatabase: {{path: '{db}'}}\n"
                    f"bot: {{flows: '{DEMO}'}}\nlogging: {{level: WARNING}}\n", encoding="utf-8")
    return path


def wait_healthy(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the first server stopped"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the first server never became healthy")


def test_a_second_server_on_the_same_file_stops_with_a_sentence_naming_the_first(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    first_port = free_port()
    log = (tmp_path / "first.log").open("wb")
    first = subprocess.Popen([sys.executable, "-m", "wabot", "--config", str(write_config(tmp_path / "a", db,
                                                                                              first_port))],
                             stdout=log, stderr=log)
    try:
        wait_healthy(first_port, first)
        holder = lock.holder_of(db)
        assert holder is not None and (holder["pid"], holder["port"]) == (first.pid, first_port)
        second = subprocess.run([sys.executable, "-m", "wabot", "--config",
                                 str(write_config(tmp_path / "b", db, free_port()))],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert f"Another wabot (process {first.pid} on " in second.stderr
        assert f"port {first_port}" in second.stderr and str(db) in second.stderr
        assert "Traceback" not in second.stderr
        assert first.poll() is None, "the first server must keep serving"
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)
        log.close()
    assert lock.holder_of(db) is None  # released on a clean stop (and by the kernel on kill -9)


def test_the_lock_is_free_again_once_released(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    held = lock.acquire(db, port=8080)
    assert held is not None
    with pytest.raises(lock.InUseError, match="Another wabot"):
        lock.acquire(db, port=8081)
    held.release()
    again = lock.acquire(db, port=8081)
    assert again is not None
    again.release()
    assert lock.acquire(Path(":memory:"), port=1) is None
