"""Hot reload: watch the flow files and swap a freshly validated Bot into the running dispatcher.

Polling (the modification time and size of each *.yaml file, about once a second) needs no
extra dependency and works on every file system, including network mounts and Docker volumes.
Invalid flow files never replace good ones: the server keeps the last good flows and logs why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Mapping
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

    async def start(self) -> None:
        self.seen = await asyncio.to_thread(snapshot, self.settings.flows)
        self.task = asyncio.create_task(self._watch(), name="flow-reloader")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    async def check(self) -> bool:
        """Look once; reload if the files changed. True when a new Bot was swapped in."""
        now = await asyncio.to_thread(snapshot, self.settings.flows)
        if now == self.seen:
            return False
        self.seen = now
        return await self.reload()

    async def reload(self) -> bool:
        """Load and validate the flow files; swap them in if they have no errors."""
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
        log.info("flows reloaded: %d flows from %s", len(bot.flows), self.settings.flows)
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
    try:
        yield
    finally:
        await reloader.stop()
