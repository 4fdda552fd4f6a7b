"""Hot reload: watch the flow files and swap a freshly validated Bot into the running dispatcher.

Polling (the modification time and size of each *.yaml file, about once a second) needs no
extra dependency and works on every file system, including network mounts and Docker volumes.
Invalid flow files never replace good ones: the server keeps the last good flows and logs why.

Several instances on one PostgreSQL each watch their own files: on one machine, or a shared volume, they
see the same change within a second. After a reload an instance tells the others (LISTEN/NOTIFY) the
fingerprint of the flows it now serves; each looks at its files at once and, if it serves other flows than
that (a machine the deploy missed), says so in its log.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Protocol

from aiohttp import web

from wabot.config import BotSettings, template_env
from wabot.errors import Problem
from wabot.flows.load import load_configured
from wabot.flows.model import Bot
from wabot.server.keys import DISPATCHER, SETTINGS

log = logging.getLogger(__name__)

INTERVAL = 1.0  # seconds between looks at the flow files

Snapshot = dict[str, tuple[int, int]]  # file -> (modification time in ns, size)


class HasBot(Protocol):
    bot: Bot


def snapshot(path: Path) -> Snapshot:
    """What the flow files look like now: the files the loader reads (*.yaml directly in a folder)."""
    files = [path] if path.is_file() else [p for p in path.glob("*") if p.suffix in (".yaml", ".yml")]
    seen: Snapshot = {}
    for file in files:
        with contextlib.suppress(OSError):  # removed while we looked: it counts as gone
            st = file.stat()
            seen[str(file)] = (st.st_mtime_ns, st.st_size)
    return seen


def fingerprint(path: Path) -> str:
    """A short digest of the flow files' names and contents: equal on every machine holding the same files."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.glob("*") if p.suffix in (".yaml", ".yml"))
    for file in files:
        with contextlib.suppress(OSError):
            digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


class Reloader:
    """Polls the flow files; on a change, loads and validates them in a thread and swaps the Bot if clean."""

    def __init__(
        self, target: HasBot, *, settings: BotSettings, env: Mapping[str, str], interval: float | None = None
    ) -> None:
        self.target = target
        self.settings = settings
        self.env = dict(env)
        self.interval = INTERVAL if interval is None else interval
        self.seen: Snapshot = {}
        self.task: asyncio.Task[None] | None = None
        self.served = ""  # the fingerprint of the flows being served
        self.on_reload: Callable[[str], None] | None = None  # told the new fingerprint after each reload
        self.looks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.seen = await asyncio.to_thread(snapshot, self.settings.flows)
        self.served = await asyncio.to_thread(fingerprint, self.settings.flows)
        self.task = asyncio.create_task(self._watch(), name="flow-reloader")

    async def stop(self) -> None:
        for task in [*self.looks, *([self.task] if self.task else [])]:
            task.cancel()
        await asyncio.gather(*self.looks, *([self.task] if self.task else []), return_exceptions=True)
        self.task = None

    def heard(self, served: str, by: str = "another instance") -> None:
        """Another instance now serves the flows `served`: look at the files now, and say so if ours differ."""
        task = asyncio.create_task(self._compare(served, by))
        self.looks.add(task)
        task.add_done_callback(self.looks.discard)

    async def _compare(self, served: str, by: str) -> None:
        await self.check()
        if served != self.served:
            log.warning(
                "%s reloaded its flows (fingerprint %s) but this one serves other flows (%s, from %s): customers "
                "get different answers depending on the instance. Give every instance the same flow files.",
                by, served, self.served, self.settings.flows,
            )

    async def check(self) -> bool:
        """Look once; reload if the files changed. True when a new Bot was swapped in."""
        now = await asyncio.to_thread(snapshot, self.settings.flows)
        if now == self.seen:
            return False
        self.seen = now
        return await self.reload()

    async def reload(self) -> bool:
        """Load and validate the flow files; swap them in if they have no errors."""
        served = await asyncio.to_thread(fingerprint, self.settings.flows)
        bot, problems = await asyncio.to_thread(load_configured, self.settings, environ=self.env)
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            log.error(
                "the flow files changed but have %d error(s); still serving the flows loaded before. "
                "Fix these and save again:", len(errors),
            )
            _log_all(errors, logging.ERROR)
            return False
        _log_all([p for p in problems if p.severity != "error"], logging.WARNING)
        self.target.bot = bot
        self.served = served
        log.info("flows reloaded: %d flows from %s (fingerprint %s)", len(bot.flows), self.settings.flows, served)
        if self.on_reload is not None:
            self.on_reload(served)
        return True

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except Exception:  # a bug here must not stop the server nor the watching
                log.exception("could not reload the flow files; still serving the flows loaded before")


def _log_all(problems: list[Problem], level: int) -> None:
    for problem in problems:
        log.log(level, "%s", problem)


async def reloading(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: watch the flow files while the server runs (after the dispatcher is set up)."""
    bot = app[SETTINGS].bot
    reloader = Reloader(app[DISPATCHER], settings=bot, env=template_env(os.environ, bot.env))
    await reloader.start()
    cluster = app[DISPATCHER].cluster
    if cluster is not None:  # several instances: each tells the others what it serves after a reload
        reloader.on_reload = lambda served: cluster.tell(f"flows {served}")
        cluster.on_flows = reloader.heard
    try:
        yield
    finally:
        await reloader.stop()
