"""Running conversation tests on the real engine, with stand-in answers for http steps."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from wabot.db.store import Store
from wabot.engine import advance
from wabot.flows.model import Bot
from wabot.templates import Renderer
from wabot.text import fold
from wabot.tools.conversation import Conversation, Turn, body, choices, combine, describe, refused
from wabot.tools.scenarios import Case, Expect, StandIn, Step, read_cases
from wabot.whatsapp import inbound, outbound


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a test failed: where (file and line of the step or check) and expected against actual."""

    file: str
    line: int
    test: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: test \"{self.test}\": {self.message}"


@dataclass(frozen=True, slots=True)
class Result:
    case: Case
    failure: Failure | None = None

    @property
    def passed(self) -> bool:
        return self.failure is None


class _Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


async def run_case(bot: Bot, case: Case, *, renderer: Renderer | None = None) -> Result:
    """Run one test from a fresh conversation; stop at the first step that does not do what it expects."""
    clock = _Clock(case.now.timestamp() if case.now else math.floor(time.time()))
    stand_ins: dict[str, StandIn] = dict(case.http)
    missing: list[str] = []

    async def answer(call: advance.HttpCall) -> advance.HttpResult:
        key = f"{call.method} {call.url}"
        found = stand_ins.get(key)
        if found is None:
            missing.append(key)
            return advance.HttpResult(False, error="the test has no stand-in answer for this request")
        if found.error:
            return advance.HttpResult(False, error=found.error)
        ok = 200 <= found.status < 300
        return advance.HttpResult(ok, found.status, found.data, "" if ok else f"the server answered {found.status}")

    store = await Store.open(":memory:")
    try:
        chat = Conversation(replace(bot, env=dict(case.env)), store=store, customer=case.customer, http=answer,
                            renderer=renderer, clock=clock)
        last: Turn | None = None
        for n, step in enumerate(case.steps, start=1):
            stand_ins = {**case.http, **step.http}
            missing.clear()
            clock.now += 1  # a second between messages keeps timestamps in order
            try:
                turn = await _do(chat, step, last, clock)
            except _Mismatch as err:
                return Result(case, Failure(case.file, step.line, case.name, f"step {n}: {err}"))
            if missing:
                message = (f"step {n}: the flow called {missing[0]}, but the test has no stand-in answer for it — "
                           f"add it under http: in the test")
                return Result(case, Failure(case.file, step.line, case.name, message))
            unsent = next((p for p in map(refused, turn.replies) if p), None)
            if unsent:
                message = f"step {n}: the server would not send a reply, so the customer would not see it: {unsent}"
                return Result(case, Failure(case.file, step.line, case.name, message))
            problem = check(step.expect, turn)
            if problem is not None:
                line = step.expect.lines.get(problem[0], step.line)
                return Result(case, Failure(case.file, line, case.name, f"step {n}: {problem[1]}"))
            if turn.replies or step.kind != "wait":
                last = turn
    finally:
        await store.close()
    return Result(case)


async def run_cases(bot: Bot, cases: Sequence[Case]) -> list[Result]:
    renderer = Renderer(timezone=bot.timezone)
    return [await run_case(bot, case, renderer=renderer) for case in cases]


async def run_files(bot: Bot, files: Sequence[Path], out: TextIO) -> int:
    """Run every test in the files, report each to `out`; 0 when all pass, 1 otherwise."""
    passed = failed = 0
    for file in files:
        cases, problems = read_cases(file, timezone=bot.timezone)
        for problem in problems:
            out.write(f"{problem}\n")
        errors = [p for p in problems if p.severity == "error"]
        failed += len(errors)
        if errors:  # a test with a step or check that could not be read would pass for the wrong reason
            for case in cases:
                out.write(f"✗ {file}: {case.name}: not run — fix the problems in the file first\n")
            failed += len(cases)
            continue
        for result in await run_cases(bot, cases):
            if result.failure is None:
                passed += 1
                out.write(f"✓ {file}: {result.case.name}\n")
            else:
                failed += 1
                out.write(f"✗ {result.failure}\n")
    out.write(f"{passed} passed, {failed} failed.\n")
    return 1 if failed else 0


class _Mismatch(Exception):
    """A step cannot be done (a tap on a button the bot did not offer)."""


async def _do(chat: Conversation, step: Step, last: Turn | None, clock: _Clock) -> Turn:
    if step.kind == "send":
        assert step.content is not None
        return await chat.send(step.content)
    if step.kind == "tap":
        return await chat.send(_tap(step.tap, last))
    if step.kind == "resume":
        return await chat.resume()
    if step.kind == "start":  # refused as the business API would refuse it
        flow = chat.bot.flows.get(step.flow)
        if flow is None:
            raise _Mismatch(f"there is no flow named {step.flow!r} to start; the flows are: "
                            f"{', '.join(chat.bot.flows)}")
        if missing := [name for name in flow.inputs if name not in step.variables]:
            raise _Mismatch(f"the business API would refuse this start: the flow {step.flow!r} needs "
                            f"{', '.join(missing)} in vars (its inputs)")
        return await chat.start(step.flow, dict(step.variables))
    until = clock.now + step.seconds

    def move(due: float) -> None:
        clock.now = max(clock.now, due)

    fired = await chat.fire_due(until, move=move)  # the flows' reminders, timeouts and waits on the way, in order
    clock.now = until
    return combine([*fired, await chat.tick()])  # and what the server's sweep would do after that long


def _tap(wanted: str | int, last: Turn | None) -> inbound.Reply:
    offered = [(r, c) for r in (last.replies if last else ()) for c in choices(r)]
    if not offered:
        raise _Mismatch(f'cannot tap "{wanted}": the bot did not offer any buttons or list rows')
    if isinstance(wanted, int):
        if not 1 <= wanted <= len(offered):
            raise _Mismatch(f"cannot tap number {wanted}: the bot offered {len(offered)} choices")
        reply, chosen = offered[wanted - 1]
    else:
        exact = [(r, c) for r, c in offered if c.title == wanted]
        loose = [(r, c) for r, c in offered if fold(c.title) == fold(wanted)]
        if not (exact or loose):
            titles = ", ".join(f'"{c.title}"' for _, c in offered)
            raise _Mismatch(f'cannot tap "{wanted}": the bot offered {titles}')
        reply, chosen = (exact or loose)[-1]
    kind = "button_reply" if isinstance(reply, outbound.Buttons) else "list_reply"
    description = chosen.description if isinstance(chosen, outbound.Row) else None
    return inbound.Reply(kind, chosen.id, chosen.title, description)


def check(expect: Expect, turn: Turn) -> tuple[str, str] | None:
    """(key, what is wrong) for the first check `turn` fails, or None when it passes them all."""
    shown = "\n".join(line for r in turn.replies for line in describe(r))
    answered = _quote(shown) if shown else "  (the bot said nothing)"
    if expect.silent and turn.replies:
        return "silent", f"expected the bot to say nothing, but it answered:\n{answered}"
    if expect.text is not None:
        texts = [t for t in (body(r) for r in turn.replies) if t is not None]
        wrong = (expect.text[0] not in texts) if len(expect.text) == 1 else (list(expect.text) != texts)
        if wrong:
            return "text", f"expected the text:\n{_quote(chr(10).join(expect.text))}\nbut the bot answered:\n{answered}"
    for needle in expect.contains:
        if needle not in shown:
            return "contains", f'expected the answer to contain "{needle}", but the bot answered:\n{answered}'
    for needle in expect.not_contains:
        if needle in shown:
            return "not_contains", f'expected the answer not to contain "{needle}", but the bot answered:\n{answered}'
    for key, kind in (("buttons", outbound.Buttons), ("list", outbound.ListMessage)):
        wanted = expect.buttons if key == "buttons" else expect.list
        if wanted is None:
            continue
        offered = [r for r in turn.replies if isinstance(r, kind)]
        actual = [c.title for c in choices(offered[-1])] if offered else None
        if actual != list(wanted):
            got = ", ".join(actual) if actual is not None else f"no {key}"
            return key, f"expected {key}: {', '.join(wanted)}\n          actual: {got}\nthe bot answered:\n{answered}"
    for name, value in expect.saved.items():
        vars_ = turn.state.vars
        if name not in vars_:
            return "saved", f"expected the variable {name} = {value!r}, but it is not saved (saved: {_vars(vars_)})"
        if not _same(vars_[name], value):
            return "saved", f"expected the variable {name} = {value!r}, but it is {vars_[name]!r}"
    if expect.at is not None:
        here = f"{turn.state.flow}.{turn.state.step}" if turn.state.flow else "end"
        if here != expect.at and turn.state.flow != expect.at:
            where = "ended" if here == "end" else f"is at {here}"
            return "at", f"expected the conversation at {expect.at}, but it {where}"
    if expect.handoff is not None:
        opened = turn.handoff is not None
        if opened != expect.handoff:
            what = "a person to take over" if expect.handoff else "no handoff"
            return "handoff", f"expected {what}, but {'one' if opened else 'none'} was opened"
    if expect.called is not None:
        made = [f"{c.method} {c.url}" for c in turn.calls]
        if made != list(expect.called):
            return "called", (f"expected the requests: {', '.join(expect.called) or 'none'}\n"
                              f"           actual: {', '.join(made) or 'none'}")
    return None


def _same(actual: Any, wanted: Any) -> bool:
    if isinstance(actual, int | float) and isinstance(wanted, int | float):
        return bool(actual == wanted) and isinstance(actual, bool) == isinstance(wanted, bool)
    return bool(actual == wanted)


def _vars(vars_: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in vars_.items()) or "nothing"


def _quote(text: str) -> str:
    return "\n".join(f"  | {line}" for line in text.splitlines())
