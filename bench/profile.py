"""Sampling the server with py-spy during a run, and reading the samples: where the CPU time goes."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


class Sampler:
    """`py-spy record --gil` attached to a running process (samples only the thread running Python code)."""

    def __init__(self, pid: int, out: Path, *, rate: int = 250) -> None:
        exe = shutil.which("py-spy")
        if exe is None:
            raise RuntimeError("py-spy is not installed (pip install py-spy)")
        self.out = out
        self.proc = subprocess.Popen(
            [exe, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw", "--output", str(out),
             "--nonblocking", "--gil"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _name(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    file = m["file"]
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{m['func']} ({file})"


def summary(raw: Path, *, top: int = 25) -> list[str]:
    """Top functions by own time and by inclusive time, from py-spy's collapsed-stack output."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    files: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_name(f) for f in stack.split(";")]
        own[frames[-1]] += n
        for name in set(frames):
            incl[name] += n
        leaf_file = frames[-1].rsplit("(", 1)[-1].rstrip(")")
        files[leaf_file] += n
    if not total:
        return ["no samples"]
    out = [f"{total} samples; own time:"]
    out += [f"  {n / total * 100:5.1f}%  {name}" for name, n in own.most_common(top)]
    out.append("inclusive time:")
    out += [f"  {n / total * 100:5.1f}%  {name}" for name, n in incl.most_common(top)]
    out.append("own time by file:")
    out += [f"  {n / total * 100:5.1f}%  {name}" for name, n in files.most_common(top)]
    return out
