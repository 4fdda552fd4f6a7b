"""One server per SQLite file: an exclusive lock on `<database>.lock`, which names the process holding it.

Two servers on one file would both take webhooks and both send the outbox: replies twice, or out of order.
The lock is the kernel's (flock), so it goes away with the process, however it ends; the file stays
and only says who held it last.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wabot.errors import WabotError


class InUseError(WabotError):
    """Another process serves this database; `holder` is what its lock file says (pid, host, port, since)."""

    def __init__(self, message: str, *, holder: dict[str, Any]) -> None:
        super().__init__(message)
        self.holder = holder


@dataclass(slots=True)
class ServerLock:
    """The held lock; `release()` gives it up (closing the file does)."""

    path: Path
    fd: int

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


def acquire(database: Path, *, port: int) -> ServerLock | None:
    """Take the database's lock, or raise InUseError naming the holder; None for an in-memory database."""
    if str(database) == ":memory:":
        return None
    path = lock_path(database)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        holder = holder_of(database) or {}
        raise InUseError(_busy(database, holder), holder=holder) from None
    me = {"pid": os.getpid(), "host": socket.gethostname(), "port": port,
          "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
    return ServerLock(path, fd)


def holder_of(database: Path) -> dict[str, Any] | None:
    """What the lock file says about the process that holds it; None when no process holds it now."""
    path = lock_path(database)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:  # held: read who holds it
            text = os.pread(fd, 4096, 0).decode(errors="replace")
            try:
                found: dict[str, Any] = json.loads(text)
            except ValueError:
                found = {}
            return found
        return None  # nobody holds it: the file is left from a server that has stopped
    finally:
        os.close(fd)


def _busy(database: Path, holder: dict[str, Any]) -> str:
    who = f"process {holder.get('pid', '?')}"
    if holder.get("host"):
        who += f" on {holder['host']}"
    if holder.get("port"):
        who += f", port {holder['port']}"
    if holder.get("since"):
        who += f", since {holder['since']}"
    return (f"Another wabot ({who}) already serves the database {database}; two servers on one file would "
            f"answer and send twice. Stop that one first (kill {holder.get('pid', '<pid>')}, or systemctl stop "
            "wabot), or give this one its own database.path.")
