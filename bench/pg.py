"""PostgreSQL for the instances bench: a fresh database per run, and the CPU its server processes spend.

The CPU is read from /proc (psutil) for the postgres processes on this machine: the backends serving the
bench's database (their process title names it) and the server's background writers (checkpointer, WAL
writer, background writer), which the bench shares with whatever else uses that PostgreSQL server.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import asyncpg
import psutil  # type: ignore[import-untyped]

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BACKGROUND = ("checkpointer", "background writer", "walwriter", "wal writer")


def _run(url: str, sql: str) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(go())


class Database:
    """`CREATE DATABASE wabot_bench_<random>` on the server at `admin`; `drop()` removes it."""

    def __init__(self, admin: str = ADMIN_URL) -> None:
        self.admin = admin
        self.name = f"wabot_bench_{secrets.token_hex(4)}"
        _run(admin, f"CREATE DATABASE {self.name}")
        self.url = admin.rsplit("/", 1)[0] + f"/{self.name}"

    async def count(self, sql: str) -> int:
        """One number from the bench's database (e.g. how many replies are marked sent)."""
        conn = await asyncpg.connect(self.url, timeout=10)
        try:
            return int(await conn.fetchval(sql))
        finally:
            await conn.close()

    def drop(self) -> None:
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            _run(self.admin, f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")

    @property
    def local(self) -> bool:
        """Whether the server runs on this machine (its processes' CPU can be read)."""
        return urlsplit(self.admin).hostname in ("127.0.0.1", "localhost", "::1", None, "")


@dataclass
class PgCpu:
    """CPU seconds of the postgres processes, from the first sample to the last one each process was seen in.

    A backend that goes away between samples (the killed instance's connections) keeps its last sampled value,
    so sample right before killing.
    """

    database: str
    first: dict[int, float] = field(default_factory=dict)
    last: dict[int, float] = field(default_factory=dict)
    kinds: dict[int, str] = field(default_factory=dict)  # pid -> "backend" | "background"
    started: bool = False

    def sample(self) -> None:
        for proc in psutil.process_iter(["name", "cmdline"]):
            kind = self._kind(proc)
            if kind is None:
                continue
            try:
                t = proc.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            used = float(t.user + t.system)
            if proc.pid not in self.last:
                self.first[proc.pid] = used if not self.started else 0.0  # born during the run: all of it counts
                self.kinds[proc.pid] = kind
            self.last[proc.pid] = used
        self.started = True

    def _kind(self, proc: psutil.Process) -> str | None:
        if proc.info["name"] not in ("postgres", "postmaster"):
            return None
        title = " ".join(proc.info["cmdline"] or ())
        if f" {self.database} " in f"{title} ":
            return "backend"
        if any(b in title for b in BACKGROUND):
            return "background"
        return None  # the postmaster itself, or another database's backend

    def seconds(self, kind: str) -> float:
        return sum(self.last[p] - self.first[p] for p in self.last if self.kinds[p] == kind)
