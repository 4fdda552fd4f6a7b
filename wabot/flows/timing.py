"""Building the flow language's timers: `remind` and `timeout` on a question or menu, the `wait` step, and a
flow's `opens_with` template (what opens it when WhatsApp's 24-hour window is closed).

Each mistake is a problem with its line, in plain words; `lint.py` adds the warnings that need the whole bot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wabot.dates import parse_duration, parse_time
from wabot.flows.messages import Ctx, plain
from wabot.flows.model import Remind, TemplateSpec, Timeout, Wait, Where
from wabot.flows.texts import line_of

if TYPE_CHECKING:
    from wabot.flows.build import Builder

DURATION_EXAMPLES = "30m, 2h, 1d, 1h30m or 45s (also 30 phút, 2 giờ, 1 ngày)"


def duration(b: Builder, raw: Any, at: Where, place: str, what: str) -> float:
    """Seconds of a duration as written ("2h"); a problem (and 60 s, to go on checking) when it is not one."""
    seconds = None if isinstance(raw, bool) or not isinstance(raw, str) else parse_duration(raw)
    if seconds is None:
        shown = repr(raw) if isinstance(raw, str) else str(raw).lower()
        extra = " (a number alone has no unit)" if isinstance(raw, int | float) and not isinstance(raw, bool) else ""
        b.problem(f"{what} {shown} is not a duration{extra}", at, place, f"write it like {DURATION_EXAMPLES}")
        return 60.0
    return seconds


def remind_of(b: Builder, raw: Any, at: Where, place: str, ctx: Ctx) -> Remind:
    """`remind: {after: 2h, say: ..., times: 2}` (or `remind: 2h`: the question again, once)."""
    if not isinstance(raw, dict):
        return Remind(duration(b, raw, at, place, "'remind:'"), written=str(raw))
    line = at.line
    after = duration(b, raw.get("after"), Where(at.file, line_of(raw, "after", line)), place, "'after:'")
    messages = b.msg.many(raw["say"], line_of(raw, "say", line), ctx) if "say" in raw else ()
    return Remind(after, messages, int(raw.get("times", 1)), str(raw.get("after")))


def timeout_of(b: Builder, raw: Any, flow: str, at: Where, place: str, ctx: Ctx) -> Timeout:
    """`timeout: {after: 1d, goto: main, say: ...}`."""
    line = at.line
    after = duration(b, raw.get("after"), Where(at.file, line_of(raw, "after", line)), place, "'after:'")
    jump = b.target(raw["goto"], flow, Where(at.file, line_of(raw, "goto", line)), place)
    messages = b.msg.many(raw["say"], line_of(raw, "say", line), ctx) if "say" in raw else ()
    return Timeout(after, jump, messages, str(raw.get("after")))


def wait_of(b: Builder, raw: Any, flow: str, at: Where, place: str) -> Wait:
    """`wait: 2h`, `wait: {until: appointment, before: 1d, at: "08:00", past: too_late}`, or `wait: {cancel: flow}`."""
    if not isinstance(raw, dict):
        return Wait(seconds=duration(b, raw, at, place, "'wait:'"), written=str(raw))
    line = at.line

    def where(key: str) -> Where:
        return Where(at.file, line_of(raw, key, line))

    if "cancel" in raw:
        if others := [k for k in raw if k != "cancel"]:
            b.problem(f"a wait that calls waits off ('cancel:') does not pause, so it takes no '{others[0]}:'",
                      where(others[0]), place, "make the pause a wait step of its own")
        name = b.flow_name(raw["cancel"], where("cancel"), place)
        return Wait(cancel=name, written=f"cancel the waits of {name}")
    if "until" not in raw:
        b.problem("a wait needs 'until: ...' (a saved date to wait for), or a duration ('wait: 2h')", at, place,
                  "add 'until:' with the variable holding the date, or write 'cancel: FLOW' to call its waits off")
        return Wait(seconds=60.0, written="?")

    until = str(raw["until"]).strip()
    if until.startswith("{{") and until.endswith("}}"):
        until = until[2:-2].strip()
    b.out.texts.template(until, at.file, where("until").line, place, expression=True)
    b.out.waits.append((until, at.file, where("until").line, place))
    if "before" in raw and "after" in raw:
        b.problem("a wait can be 'before' or 'after' the moment, not both", where("after"), place,
                  "keep one of them")
    shift = 0.0
    if "before" in raw:
        shift = -duration(b, raw["before"], where("before"), place, "'before:'")
    elif "after" in raw:
        shift = duration(b, raw["after"], where("after"), place, "'after:'")
    at_time = None
    if "at" in raw:
        at_time = parse_time(str(raw["at"]))
        if at_time is None:
            b.problem(f"'at: {raw['at']}' is not a time of day", where("at"), place, 'write it like "08:00" or "8h"')
    past = b.target(raw["past"], flow, where("past"), place) if "past" in raw else None
    parts = [f"until {until}", *(f"{k} {raw[k]}" for k in ("before", "after", "at") if k in raw)]
    return Wait(until=until, shift=shift, at=at_time, past=past, written=", ".join(parts))


def opens_with_of(b: Builder, raw: Any, at: Where, place: str) -> TemplateSpec:
    """A flow's `opens_with: {name, language, parameters | components}` (body parameters may use variables)."""
    line = at.line
    params, components = raw.get("parameters"), raw.get("components")
    if params is not None and components is not None:
        b.problem("give the template either 'parameters' (body texts in order) or 'components', not both",
                  Where(at.file, line_of(raw, "components", line)), place, "keep one of them")
    if params is not None:
        pl = line_of(raw, "parameters", line)
        texts = [str(p) for p in params]
        for i, text in enumerate(texts):
            b.out.texts.template(text, at.file, line_of(params, i, pl), place)
        body = [{"type": "text", "text": text} for text in texts]
        built: tuple[dict[str, Any], ...] = ({"type": "body", "parameters": body},) if body else ()
    else:
        built = tuple(plain(c) for c in components or ())
        _strings(b, built, at.file, line_of(raw, "components", line), place)
    language = raw.get("language")
    return TemplateSpec(str(raw["name"]), None if language is None else str(language), built)


def _strings(b: Builder, value: Any, file: str, line: int, place: str) -> None:
    """Check every text inside template components as a Jinja template (so its variables are known)."""
    if isinstance(value, str):
        b.out.texts.template(value, file, line, place)
    elif isinstance(value, dict):
        for v in value.values():
            _strings(b, v, file, line, place)
    elif isinstance(value, list | tuple):
        for v in value:
            _strings(b, v, file, line, place)
