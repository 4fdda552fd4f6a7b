"""Building one step of each kind (say, menu, ask, if, set, route, http, goto, call, end, handoff, wait)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

from wabot.dates import bound, parse_time
from wabot.flows.messages import Ctx, plain, synonyms
from wabot.flows.model import (
    END,
    Action,
    Ask,
    End,
    Expect,
    ExpectKind,
    Goto,
    Handoff,
    Http,
    If,
    Jump,
    Menu,
    Option,
    Route,
    RouteRule,
    Say,
    Set,
    Where,
)
from wabot.flows.texts import Use, line_of
from wabot.flows.timing import remind_of, timeout_of, wait_of
from wabot.text import fold
from wabot.whatsapp.outbound import (
    BUTTON_TITLE,
    FOOTER,
    HEADER,
    INTERACTIVE_BODY,
    LIST_BUTTON,
    MAX_BUTTONS,
    ROW_DESCRIPTION,
    ROW_TITLE,
)

if TYPE_CHECKING:
    from wabot.flows.build import Builder

StepKind = Literal["say", "menu", "ask", "if", "set", "route", "http", "goto", "call", "end", "handoff", "wait"]
ACTIONS: tuple[StepKind, ...] = get_args(StepKind)


def step_kind(raw: Any) -> StepKind | Literal[""]:
    """The action key of a step mapping ('' if it has none)."""
    return next((k for k in ACTIONS if k in raw), "") if isinstance(raw, dict) else ""


def step_where(flow: str, n: int, raw: Any) -> str:
    """`flow main, step 'menu'` or `flow main, step 3 (say)` (n is 1-based)."""
    if isinstance(raw, dict) and isinstance(raw.get("id"), str):
        return f"flow {flow}, step '{raw['id']}'"
    kind = step_kind(raw)
    return f"flow {flow}, step {n}" + (f" ({kind})" if kind else "")


def action(b: Builder, flow: str, key: str, raw: Any, at: Where, place: str) -> Action:
    """The action of one (schema-checked) step mapping."""
    kind = step_kind(raw)
    file = at.file
    ctx = Ctx(file, place, f"{flow}.{key}")

    def line(k: str) -> int:
        return line_of(raw, k, at.line)

    def where(k: str) -> Where:
        return Where(file, line(k))

    def jump(k: str) -> Jump | None:
        return b.target(raw[k], flow, where(k), place) if k in raw else None

    def messages(k: str) -> tuple[Any, ...]:
        return b.msg.many(raw[k], line(k), ctx) if k in raw and raw[k] is not True else ()

    def save(k: str = "save") -> str | None:
        name = raw.get(k)
        if name is not None:
            b.out.saved.add(str(name))
        return None if name is None else str(name)

    remind = remind_of(b, raw["remind"], where("remind"), place, ctx) if "remind" in raw else None
    timeout = timeout_of(b, raw["timeout"], flow, where("timeout"), place, ctx) if "timeout" in raw else None
    if kind == "say":
        return Say(messages("say"))
    if kind == "menu":
        return replace(_menu(b, flow, raw["menu"], line("menu"), ctx), remind=remind, timeout=timeout)
    if kind == "ask":
        if isinstance(raw.get("expect"), dict) and "choice" in raw["expect"] and raw.get("save") is not None:
            b.out.saved.update(choice_variables(str(raw["save"])))
        return Ask(
            messages("ask"), save() or "",
            expect_of(b, raw["expect"], where("expect"), place, ctx.prefix) if "expect" in raw else Expect(),
            messages("retry"), None if raw.get("attempts") is None else int(raw["attempts"]),
            jump("on_fail"), bool(raw.get("triggers", True)), remind, timeout,
            tuple(str(t).lower() for t in raw.get("accept") or ()),
            size_of(b, raw["max_size"], where("max_size"), place) if "max_size" in raw else None,
            messages("too_large"), messages("wrong_type"),
        )
    if kind == "wait":
        return wait_of(b, raw["wait"], flow, where("wait"), place)
    if kind == "if":
        condition = b.out.texts.template(str(raw["if"]), file, line("if"), place, expression=True)
        if "then" not in raw and "else" not in raw:
            b.problem("an 'if' step needs 'then: <target>' or 'else: <target>'", at, place,
                      "say where to go when the condition is true (then) or false (else)")
        return If(condition, jump("then"), jump("else"))
    if kind == "set":
        values = raw["set"]
        for name, value in values.items():
            b.out.saved.add(str(name))
            _templates(b, value, file, line_of(values, name, line("set")), place)
        return Set({str(k): plain(v) for k, v in values.items()})
    if kind == "route":
        rules = raw["route"]
        built = []
        for i, rule in enumerate(rules):
            rl = line_of(rules, i, line("route"))
            if "keywords" not in rule and "regex" not in rule:
                b.problem("a route rule needs 'keywords: [...]' or 'regex: ...'", Where(file, rl), place,
                          "say which messages this rule catches")
            rule_save = rule.get("save")
            if rule_save is not None:
                b.out.saved.add(str(rule_save))
            built.append(RouteRule(
                b.jump_of(rule, flow, rl, file, place),
                tuple(w for w in (fold(str(k)) for k in rule.get("keywords", ())) if w),
                None if rule.get("regex") is None else regex(b, rule["regex"], Where(file, line_of(rule, "regex", rl)),
                                                             place),
                None if rule_save is None else str(rule_save),
            ))
        return Route(tuple(built), messages("prompt"), jump("else"), bool(raw.get("triggers", True)))
    if kind == "http":
        http = raw["http"]
        hl = line("http")
        for k in ("url", "headers", "body"):
            if k in http:
                _templates(b, http[k], file, line_of(http, k, hl), place)
        files = http.get("files") or {}
        fl = line_of(http, "files", hl)  # each file sent is a variable read, like one in a template
        b.out.texts.uses.extend(Use(str(var), file, line_of(files, k, fl), place) for k, var in files.items())
        name = http.get("save")
        if name is not None:
            b.out.saved.update((str(name), f"{name}_error", f"{name}_status", f"{name}_body"))
        return Http(
            str(http.get("method", "GET")).upper(), str(http["url"]),
            {str(k): str(v) for k, v in (http.get("headers") or {}).items()}, plain(http.get("body")),
            float(http.get("timeout", 10.0)), None if name is None else str(name),
            b.target(http["on_error"], flow, Where(file, line_of(http, "on_error", hl)), place)
            if "on_error" in http else None,
            bool(http.get("follow_redirects", False)),
            {str(k): str(v) for k, v in files.items()},
        )
    if kind == "goto":
        return Goto(jump("goto") or END)
    if kind == "call":
        return Goto(b.call(raw["call"], where("call"), place))
    if kind == "end":
        return End(messages("end"))
    back = tuple(w for w in (fold(str(word)) for word in raw.get("back") or ()) if w)
    return Handoff(messages("handoff"), str(raw.get("reason", "")), back, messages("expired"))


def choice_variables(save: str) -> tuple[str, ...]:
    """What a menu's or a choice question's `save: x` sets: the title, the option's id, a data option's item."""
    return save, f"{save}_id", f"{save}_item"


def _menu(b: Builder, flow: str, raw: Any, at: int, ctx: Ctx) -> Menu:
    t, file, place = b.out.texts, ctx.file, ctx.where
    options = raw["options"]
    ol = line_of(raw, "options", at)
    as_list = len(options) > 3
    built: list[Option] = []
    seen: dict[str, int] = {}
    for i, option in enumerate(options):
        line = line_of(options, i, ol)
        title = t.text(option["title"], file, line_of(option, "title", line), place,
                       limit=ROW_TITLE if as_list else BUTTON_TITLE,
                       what="a list row title" if as_list else "a button title")
        for value in title.values():
            folded = fold(value)
            if folded in seen and seen[folded] != i:
                t.problem(f"options {seen[folded] + 1} and {i + 1} have the same title '{value}'", file, line,
                          place, "give every option a different title")
            seen.setdefault(folded, i)
        desc = option.get("description")
        data = b.msg.data(option, line, ctx)
        built.append(Option(
            f"{ctx.prefix}.{i + 1}" if data else str(option.get("id") or f"{ctx.prefix}.{i + 1}"), title,
            b.jump_of(option, flow, line, file, place),
            None if desc is None else t.text(desc, file, line_of(option, "description", line), place,
                                             limit=ROW_DESCRIPTION, what="an option description"),
            synonyms(option), data,
        ))
    save = raw.get("save")
    if save is not None:
        b.out.saved.update(choice_variables(str(save)))

    def text(k: str, limit: int, what: str) -> Any:
        return t.text(raw[k], file, line_of(raw, k, at), place, limit=limit, what=what) if k in raw else None

    menu = Menu(text("text", INTERACTIVE_BODY, "the menu text"), tuple(built), text("header", HEADER, "the header"),
                text("footer", FOOTER, "the footer"), save=None if save is None else str(save),
                triggers=bool(raw.get("triggers", True)))
    button, more = text("button", LIST_BUTTON, "the list button"), text("more", ROW_TITLE, "the 'more' label")
    if button is not None:
        menu = replace(menu, button=button)
    if more is not None:
        menu = replace(menu, more=more)
    return menu


def _templates(b: Builder, value: Any, file: str, line: int, place: str) -> None:
    """Check every string inside a value (set values, http url/headers/body) as a template."""
    if isinstance(value, str):
        b.out.texts.template(value, file, line, place)
    elif isinstance(value, dict):
        for k, v in value.items():
            _templates(b, v, file, line_of(value, k, line), place)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _templates(b, v, file, line_of(value, i, line), place)


def expect_of(b: Builder, raw: Any, at: Where, place: str, prefix: str) -> Expect:
    """`expect:` -> Expect (a kind name, or {number|integer|text: {min, max}}, {regex}, {choice})."""
    if not isinstance(raw, dict):
        return Expect(cast(ExpectKind, str(raw)))  # the schema allows only these names (tests/flows/test_load.py)
    kind, value = next(iter(raw.items()))
    if kind == "regex":
        return Expect("regex", pattern=regex(b, value, Where(at.file, line_of(raw, kind, at.line)), place))
    if kind == "choice":
        line = line_of(raw, "choice", at.line)
        ctx = Ctx(at.file, place, prefix)
        limit = BUTTON_TITLE if len(value) <= MAX_BUTTONS else ROW_TITLE
        return Expect("choice", choices=tuple(
            b.msg.choice(c, line_of(value, i, line), ctx, f"{prefix}.{i + 1}", title_limit=limit)
            for i, c in enumerate(value)))
    bounds = value or {}
    low, high = bounds.get("min"), bounds.get("max")
    if kind in ("date", "time", "datetime"):
        return _moment_bounds(b, kind, bounds, Where(at.file, line_of(raw, kind, at.line)), place)
    if low is not None and high is not None and low > high:
        b.problem(f"'min' ({low}) is bigger than 'max' ({high})", Where(at.file, line_of(raw, kind, at.line)),
                  place, "swap them")
    return Expect(kind, min=None if low is None else float(low), max=None if high is None else float(high))


def _moment_bounds(b: Builder, kind: str, bounds: dict[str, Any], at: Where, place: str) -> Expect:
    """`{date: {min: today, max: "+60d"}}` or `{time: {min: "08:00", max: "20:00"}}`, checked now."""
    found: dict[str, str | None] = {"min": None, "max": None}
    for key in found:
        if bounds.get(key) is None:
            continue
        written = str(bounds[key]).strip()
        try:
            if kind == "time":
                shown = parse_time(written)
                if shown is None:
                    raise ValueError(written)
                found[key] = shown
            else:
                bound(written, today=date(2000, 1, 1))
                found[key] = written
        except ValueError:
            example = '"08:00"' if kind == "time" else 'today, tomorrow, "+60d" (60 days ahead) or "2026-12-31"'
            b.problem(f"'{key}: {written}' is not a {'time' if kind == 'time' else 'date'} bound", at, place,
                      f"write {example}")
    return Expect(cast(ExpectKind, kind), earliest=found["min"], latest=found["max"])


def regex(b: Builder, raw: Any, at: Where, place: str) -> str:
    """A regular expression, checked now so a typo shows at start-up, not when a customer writes."""
    pattern = str(raw)
    try:
        re.compile(pattern)
    except re.error as err:
        b.problem(f"the regex '{pattern}' is not valid: {err.msg}", at, place,
                  "write it in single quotes and check its brackets and backslashes")
    return pattern


SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|kib|mib)?\s*", re.IGNORECASE)
UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000 * 1000, "kib": 1024, "mib": 1024 * 1024}


def size_of(b: Any, raw: Any, at: Where, place: str) -> int | None:
    """`max_size: 5 MB` (or bytes, KB, KiB, MiB) as bytes; a problem named with its line when unreadable."""
    found = SIZE.fullmatch(str(raw))
    if found is None or float(found[1]) <= 0:
        b.problem(f"max_size {raw!r} is not a size", at, place, "write it like 5 MB, 500 KB or 2 MiB")
        return None
    return int(float(found[1]) * UNITS[(found[2] or "").lower()])
