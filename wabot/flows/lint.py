"""Whole-bot checks once everything is built: the start flow, replies, reachability, variables, names."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from wabot.errors import Problem
from wabot.flows.build import Built
from wabot.flows.model import Ask, Bot, End, Flow, Goto, Http, If, Jump, Localized, Menu, Route, Step, Wait
from wabot.flows.texts import suggest

BUILTIN_VARIABLES = frozenset({"contact", "message", "now", "env", "lang", "item"})  # item: options from data


def check_bot(bot: Bot, built: Built, *, first_file: str) -> list[Problem]:
    """Errors and warnings that need every file at once."""
    problems: list[Problem] = []
    if bot.start not in bot.flows:
        problems.append(Problem(
            f"the start flow '{bot.start}' does not exist", first_file, 1, "",
            suggest(bot.start, bot.flows) or f"add a flow called '{bot.start}', or set bot.start_flow in config.yaml",
        ))
    problems += _replies(bot, built)
    problems += _reachability(bot)
    problems += _variables(built)
    problems += _timers(bot)
    for flow in bot.flows.values():
        for i, step in enumerate(flow.steps):
            if step.has_id and step.key in bot.flows and step.key != flow.name:
                problems.append(Problem(
                    f"the step id '{step.key}' is also the name of a flow; 'goto: {step.key}' in this flow "
                    "means the step", step.where.file, step.where.line, where(flow, i, step),
                    f"rename the step, or write '{step.key}.<step id>' to reach the flow", "warning"))
    return problems


def where(flow: Flow, i: int, step: Step) -> str:
    """`flow main, step 'menu'` or `flow main, step 3 (say)`."""
    if step.has_id:
        return f"flow {flow.name}, step '{step.key}'"
    return f"flow {flow.name}, step {i + 1} ({type(step.action).__name__.lower()})"


def _replies(bot: Bot, built: Built) -> Iterator[Problem]:
    used = {"reengage"}  # sent by wabot itself when the 24-hour window has closed (see docs/flows.md)
    for use in built.texts.reply_uses:
        used.add(use.name)
        if use.name not in bot.replies:
            yield Problem(f"there is no reply called '{use.name}'", use.file, use.line, use.where,
                          suggest(use.name, bot.replies) or "add it under 'replies:' or fix the name")
    for name, at in built.reply_lines.items():
        if name not in used:
            yield Problem(f"the reply '{name}' is never used", at.file, at.line, f"reply {name}",
                          f"use it with 'say: {{reply: {name}}}', or remove it", "warning")


@dataclass(frozen=True, slots=True)
class Exit:
    """A jump a step can make, and when: an option's title, "yes", "fails", a route's words..."""

    jump: Jump
    when: str | Localized = ""


def exits(step: Step) -> Iterator[Exit]:
    """Every jump a step can make (going on to the next step is not a jump); the diagram draws the same."""
    a = step.action
    if isinstance(a, Menu):
        yield from (Exit(o.jump, o.title) for o in a.options)
    elif isinstance(a, Ask) and a.on_fail:
        yield Exit(a.on_fail, f"fails {a.attempts} times" if a.attempts else "fails")
    elif isinstance(a, If):
        yield from (Exit(j, when) for j, when in ((a.then, "yes"), (a.else_, "no")) if j)
    elif isinstance(a, Route):
        yield from (Exit(r.jump, ", ".join(r.keywords) or f"matches {r.regex}") for r in a.routes)
        if a.else_:
            yield Exit(a.else_, "anything else")
    elif isinstance(a, Http) and a.on_error:
        yield Exit(a.on_error, "error")
    elif isinstance(a, Goto):
        yield Exit(a.jump)
    elif isinstance(a, Wait) and a.past:
        yield Exit(a.past, "already past")
    if isinstance(a, Menu | Ask) and a.timeout:
        yield Exit(a.timeout.jump, f"no answer in {a.timeout.written}")


def jumps(step: Step) -> Iterator[Jump]:
    """Every jump a step can make."""
    return (e.jump for e in exits(step))


def _ends(step: Step) -> bool:
    """True when the next step can never be reached by just going on."""
    a = step.action
    if isinstance(a, Goto):
        return a.jump.kind != "call"
    if isinstance(a, End):
        return True
    if isinstance(a, Menu):
        return all(o.jump.kind != "call" for o in a.options)
    if isinstance(a, If):
        return a.then is not None and a.else_ is not None
    if isinstance(a, Route):
        return a.else_ is not None and all(r.jump.kind != "call" for r in a.routes)
    return False  # a handoff goes on with the next step once a person gives the conversation back


def _reachability(bot: Bot) -> Iterator[Problem]:
    targets: set[tuple[str, str | None]] = set()
    others = [t.jump for t in bot.triggers] + ([bot.fallback.jump] if bot.fallback.jump else [])
    for jump in [*others, *(j for f in bot.flows.values() for s in f.steps for j in jumps(s))]:
        if jump.kind in ("goto", "call"):
            targets.add((jump.flow, jump.step))
    called = {f for f, _ in targets}
    for flow in bot.flows.values():
        if flow.name != bot.start and flow.name not in called and not flow.inputs:  # inputs: the API starts it
            yield Problem(f"nothing goes to the flow '{flow.name}'", flow.where.file, flow.where.line,
                          f"flow {flow.name}", "jump to it from a step, a menu option or a trigger, or remove it",
                          "warning")
        for i, step in enumerate(flow.steps[1:], start=1):
            if _ends(flow.steps[i - 1]) and (flow.name, step.key) not in targets:
                yield Problem(
                    "this step can never run: the step before it always jumps away and nothing jumps here",
                    step.where.file, step.where.line, where(flow, i, step),
                    f"jump to it (goto: {step.key}), or remove it" if step.has_id
                    else "give it an id and jump to it, or remove it", "warning")


DAY = 24 * 3600.0  # WhatsApp's customer service window: later, only an approved template may be sent


def _timers(bot: Bot) -> Iterator[Problem]:
    """Reminders that can never be sent, and timers that may end outside the 24-hour window with no template."""
    for flow in bot.flows.values():
        for i, step in enumerate(flow.steps):
            a, here = step.action, where(flow, i, step)
            if isinstance(a, Menu | Ask) and a.remind and a.timeout:
                fit = int((a.timeout.after - 1e-9) // a.remind.after)
                if fit < a.remind.times:
                    said = "no reminder is ever sent" if fit == 0 else f"only {fit} of the {a.remind.times} reminders"
                    yield Problem(f"the timeout (after {a.timeout.written}) comes before the reminders (every "
                                  f"{a.remind.written}, {a.remind.times} times): {said}", step.where.file,
                                  step.where.line, here, "make the timeout longer, or remind sooner or fewer times",
                                  "warning")
            late = (isinstance(a, Wait) and (a.until is not None or (a.seconds or 0) >= DAY)) or (
                isinstance(a, Menu | Ask) and any(t.after >= DAY for t in (a.remind, a.timeout) if t))
            if late and flow.opens_with is None:
                yield Problem("this step's timer may end more than 24 hours after the customer last wrote; WhatsApp "
                              "then accepts only an approved template, and this flow names none, so what the bot "
                              "says then is not sent", step.where.file, step.where.line, here,
                              f"give the flow an approved template: 'opens_with: {{name: ..., language: vi}}' under "
                              f"'{flow.name}:'", "warning")


def _variables(built: Built) -> Iterator[Problem]:
    known = BUILTIN_VARIABLES | built.saved
    seen = set()
    for until, file, line, place in built.waits:
        name = until.split(".")[0].split("[")[0].split("|")[0].strip()
        if name.isidentifier() and name not in known:
            seen.add((name, file, line))
            yield Problem(f"this wait lasts until '{name}', but no step saves or sets it; unless the business API "
                          "starts the flow with it (vars), the flow goes on at once", file, line, place,
                          f"save it first (ask ... save: {name}, expect: date), or check the name", "warning")
    for use in built.texts.uses:
        if use.name in known or (use.name, use.file, use.line) in seen:
            continue
        seen.add((use.name, use.file, use.line))
        hint = suggest(use.name, known)
        yield Problem(f"'{use.name}' is used here, but no step saves or sets it", use.file, use.line, use.where,
                      hint or f"save it first (ask ... save: {use.name}, or set: {{{use.name}: ...}})", "warning")
