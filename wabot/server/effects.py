"""Performing the engine's effects: http steps and handoffs, for the server and the author tools alike.

The engine asks for an http call as a value; this module makes the request, feeds the answer
back to the engine, and repeats (bounded) until a turn has no more calls to make.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from wabot import urls
from wabot.engine import advance
from wabot.state import State, TimerChange
from wabot.whatsapp import outbound

__all__ = [
    "MAX_EFFECT_ROUNDS", "NO_PRIVATE_HOSTS", "Effected", "HttpAnswer", "HttpRules", "http_session", "perform",
    "real_http",
]

MAX_EFFECT_ROUNDS = 20  # http steps in a row within one turn
MAX_REDIRECTS = 5
DEFAULT_MAX_ANSWER_BYTES = 1024 * 1024


OpenFile = Callable[[str], Awaitable[tuple[Path, dict[str, Any]] | None]]


@dataclass(frozen=True, slots=True)
class HttpRules:
    """What an http step may reach: private hosts the config allows, and the largest answer read."""

    private_hosts: frozenset[str] = frozenset()
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES
    open_file: OpenFile | None = None  # a customer's file by its token (server/media.py), for multipart uploads


NO_PRIVATE_HOSTS = HttpRules()


class _Blocked(OSError):
    """A name resolved only to private addresses the config does not allow."""


class _PublicOnly(AbstractResolver):
    """Resolves names, dropping private addresses, so a name cannot point the bot at an internal host."""

    def __init__(self, private_hosts: frozenset[str]) -> None:
        self.inner = aiohttp.ThreadedResolver()
        self.private_hosts = private_hosts

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        found = await self.inner.resolve(host, port, family)
        if urls.allowed(host, port, self.private_hosts):
            return found
        public = [r for r in found if urls.is_public(r["host"])]
        if not public:
            raise _Blocked(f"{host} resolves to a private address (add it to http.private_hosts to allow it)")
        return public

    async def close(self) -> None:
        await self.inner.close()


def http_session(rules: HttpRules) -> aiohttp.ClientSession:
    """A session for http steps only (never Graph's): its resolver refuses private addresses."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=_PublicOnly(rules.private_hosts)))

HttpAnswer = Callable[[advance.HttpCall], Awaitable[advance.HttpResult]]
Step = Callable[[State, advance.Event], advance.Outcome]


@dataclass(frozen=True, slots=True)
class Effected:
    """One turn with its effects performed: every reply, the final state, the calls made, a handoff's reason."""

    replies: tuple[outbound.Outgoing, ...]
    state: State
    calls: tuple[advance.HttpCall, ...] = ()
    handoff: str | None = None
    finished: tuple[tuple[str, dict[str, Any]], ...] = ()  # flows that ended in this turn, with their variables
    timers: tuple[TimerChange, ...] = ()  # timers set and cancelled, in order (kept in the turn's commit)
    note: str = ""  # what a due timer did


async def perform(outcome: advance.Outcome, *, step: Step, http: HttpAnswer) -> Effected:
    """Make the http calls `outcome` asks for, one at a time, feeding each answer back through `step`."""
    replies = list(outcome.replies)
    calls: list[advance.HttpCall] = []
    handoff: str | None = None
    finished = list(outcome.finished)
    timers: list[TimerChange] = []
    note = outcome.note
    for _ in range(MAX_EFFECT_ROUNDS):
        for effect in outcome.effects:
            if isinstance(effect, advance.HandoffOpened):
                handoff = effect.reason or "no reason given"
            elif isinstance(effect, advance.SetTimer | advance.CancelTimers):
                timers.append(effect)
        pending = [e for e in outcome.effects if isinstance(e, advance.HttpCall)]
        if not pending:
            break
        calls.append(pending[0])
        outcome = step(outcome.state, await http(pending[0]))
        replies.extend(outcome.replies)
        finished.extend(outcome.finished)
    return Effected(tuple(replies), outcome.state, tuple(calls), handoff, tuple(finished), tuple(timers), note)


async def real_http(
    session: aiohttp.ClientSession, call: advance.HttpCall, rules: HttpRules = NO_PRIVATE_HOSTS
) -> advance.HttpResult:
    """Perform an http step's request (errors and non-2xx answers become a failed HttpResult, never raise).

    Redirects are followed only when the step says so, only within the same scheme, host and port.
    """
    url, method, body = call.url, call.method, call.body
    form: aiohttp.FormData | None = None
    if call.files:
        made = await _form(call, rules)
        if isinstance(made, str):
            return advance.HttpResult(False, error=made)
        form = made
    try:
        for _ in range(MAX_REDIRECTS + 1):
            if refused := urls.problem(url, allowed_hosts=rules.private_hosts):
                return advance.HttpResult(False, error=f"refused: {refused}")
            payload: dict[str, Any] = {"data": form} if form is not None else {"json": body}
            async with session.request(
                method, URL(url, encoded=True), headers=call.headers, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=call.timeout), **payload,
            ) as resp:
                if resp.status in (301, 302, 303, 307, 308) and "Location" in resp.headers:
                    if not call.follow_redirects:
                        return advance.HttpResult(False, resp.status, None, f"the server answered {resp.status} "
                                                  "(a redirect; the step does not say follow_redirects: true)")
                    target = URL(url, encoded=True).join(URL(resp.headers["Location"], encoded=True))
                    if target.origin() != URL(url, encoded=True).origin():
                        return advance.HttpResult(False, resp.status, None, "refused: the server redirected to "
                                                  f"another host ({target.host}); redirects stay on one host")
                    url = str(target)
                    if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
                        method, body = "GET", None
                    continue
                raw = await _read_limited(resp, rules.max_answer_bytes)
                if raw is None:
                    return advance.HttpResult(False, resp.status, None, "the answer is larger than "
                                              f"{rules.max_answer_bytes} bytes (http.max_answer_bytes)")
                text = raw.decode(resp.get_encoding() if resp.charset else "utf-8", errors="replace")
                try:
                    data: Any = json.loads(text) if text else None
                except ValueError:
                    data = text
                if resp.status >= 400:
                    return advance.HttpResult(False, resp.status, data, f"the server answered {resp.status}")
                return advance.HttpResult(True, resp.status, data)
        return advance.HttpResult(False, error=f"more than {MAX_REDIRECTS} redirects")
    except TimeoutError:
        return advance.HttpResult(False, error=f"no answer within {call.timeout:g} seconds")
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, _Blocked):
            return advance.HttpResult(False, error=f"refused: {exc.os_error}")
        return advance.HttpResult(False, error=f"could not connect: {exc.__class__.__name__}")
    except aiohttp.ClientError as exc:
        return advance.HttpResult(False, error=f"could not connect: {exc.__class__.__name__}")
    except ValueError as exc:
        return advance.HttpResult(False, error=f"invalid request: {exc}")


async def _form(call: advance.HttpCall, rules: HttpRules) -> aiohttp.FormData | str:
    """multipart/form-data: the body's fields, then each file a question saved; a sentence when one is gone."""
    form = aiohttp.FormData()
    for name, value in (call.body or {}).items() if isinstance(call.body, dict) else ():
        form.add_field(str(name), value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
    for name, saved in call.files:
        opened = await rules.open_file(str(saved.get("file", ""))) if rules.open_file is not None else None
        if opened is None:
            return f"the file for {name!r} is no longer available (purged, or Meta no longer has it)"
        path, meta = opened
        form.add_field(name, await asyncio.to_thread(path.read_bytes), filename=str(meta.get("filename") or name),
                       content_type=str(meta.get("mime") or "application/octet-stream"))
    return form


async def _read_limited(resp: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The body, or None as soon as it is longer than `limit` (never read whole into memory)."""
    if resp.content_length is not None and resp.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
