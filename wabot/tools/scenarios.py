"""Conversation tests written by flow authors (flows/tests/*.yaml): reading them, with lines.

The format is described in docs/testing.md; `testrun.py` runs what this module reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from wabot.errors import Problem
from wabot.flows.source import LineDict, LineList, parse
from wabot.templates import DEFAULT_TIMEZONE
from wabot.whatsapp import inbound
from wabot.whatsapp.inbound import MEDIA_KINDS

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|seconds?|m|min|minutes?|h|hours?|d|days?)?\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class StandIn:
    """The answer an http step gets instead of a real request."""

    status: int = 200
    data: Any = None
    error: str = ""  # set: the request "failed" (timeout, no connection) with this text


@dataclass(frozen=True, slots=True)
class Expect:
    """What the bot must have done after a step; None/empty = not checked. `lines` says where each check is."""

    text: tuple[str, ...] | None = None  # one text: some reply says exactly it; several: the replies, in order
    contains: tuple[str, ...] = ()
    not_contains: tuple[str, ...] = ()
    buttons: tuple[str, ...] | None = None
    list: tuple[str, ...] | None = None
    saved: Mapping[str, Any] = field(default_factory=dict)
    at: str | None = None  # "flow" or "flow.step"
    handoff: bool | None = None
    silent: bool = False
    called: tuple[str, ...] | None = None  # "GET http://..." for each http request made, in order
    lines: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Step:
    """One thing the customer (or time, a person, the shop's system) does. kind: send | tap | resume | wait | start."""

    kind: str
    line: int
    content: inbound.Content | None = None  # send
    tap: str | int = ""  # tap: a title, or the 1-based number of the choice
    seconds: float = 0.0  # wait
    flow: str = ""  # start: the flow the business API starts, with `variables`
    variables: Mapping[str, Any] = field(default_factory=dict)
    http: Mapping[str, StandIn] = field(default_factory=dict)
    expect: Expect = field(default_factory=Expect)


@dataclass(frozen=True, slots=True)
class Case:
    """One named conversation test."""

    file: str
    line: int
    name: str
    customer: inbound.Customer
    steps: tuple[Step, ...]
    http: Mapping[str, StandIn] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    now: datetime | None = None


def test_files(path: Path) -> list[Path]:
    """A test file as given, or every *.yaml / *.yml in a folder (not its sub-folders), sorted."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return [path]


def read_cases(file: Path, *, timezone: str = DEFAULT_TIMEZONE) -> tuple[list[Case], list[Problem]]:
    """Every test in one file, and every problem with the file's shape (each with its line)."""
    name = str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        return [], [Problem(f"the test file cannot be read ({err})", name, 1)]
    doc = parse(text, name)
    if doc.data is None:
        return [], list(doc.problems)
    reader = _Reader(name, ZoneInfo(timezone))
    reader.problems.extend(doc.problems)
    cases = reader.document(doc.data)
    return cases, reader.problems


class _Reader:
    def __init__(self, file: str, zone: ZoneInfo) -> None:
        self.file = file
        self.zone = zone
        self.problems: list[Problem] = []
        self.now: datetime | None = None  # a top-level now: in the file

    def fail(self, line: int, message: str, fix: str = "") -> None:
        self.problems.append(Problem(message, self.file, line, fix=fix))

    def document(self, data: LineDict) -> list[Case]:
        tests = data.get("tests")
        env = data.get("env") or {}
        unknown = [k for k in data if k not in ("tests", "env", "http", "now")]
        for key in unknown:
            self.fail(data.key_lines[key], f"unknown key '{key}' in a test file", "use tests:, env:, http: or now:")
        # a top-level now: is the clock of every test in the file that does not set its own
        self.now = self.moment(data.get("now"), data.key_lines.get("now", 1)) if "now" in data else None
        if not isinstance(tests, LineList) or not tests:
            self.fail(data.key_lines.get("tests", 1), "a test file needs a list 'tests:'",
                      "write tests: and under it one '- name: ...' per test")
            return []
        shared = self.stand_ins(data.get("http"), data.key_lines.get("http", 1))
        cases = []
        for raw, line in zip(tests, tests.item_lines, strict=True):
            case = self.case(raw, line, shared, env)
            if case is not None:
                cases.append(case)
        return cases

    def case(self, raw: Any, line: int, shared: dict[str, StandIn], env: Any) -> Case | None:
        if not isinstance(raw, LineDict):
            self.fail(line, "each test must be a mapping with name: and steps:")
            return None
        for key in raw:
            if key not in ("name", "contact", "http", "steps", "env", "now"):
                self.fail(raw.key_lines[key], f"unknown key '{key}' in a test",
                          "a test has name, steps and optionally contact, http, env, now")
        name = str(raw.get("name") or f"test on line {line}")
        contact = raw.get("contact") or {}
        if not isinstance(contact, dict):
            self.fail(raw.key_lines["contact"], "contact must be a mapping like {name: Lan, wa_id: \"84901234567\"}")
            contact = {}
        customer = inbound.Customer(
            wa_id=str(contact.get("wa_id", "84900000000")), user_id=contact.get("user_id"),
            name=None if contact.get("name") is None else str(contact["name"]),
        )
        steps_raw = raw.get("steps")
        if not isinstance(steps_raw, LineList) or not steps_raw:
            self.fail(raw.key_lines.get("steps", line), f"the test '{name}' has no steps",
                      "add steps: with '- send: ...' items")
            return None
        steps = [self.step(s, n) for s, n in zip(steps_raw, steps_raw.item_lines, strict=True)]
        own_env = raw.get("env") or {}
        if not isinstance(own_env, dict):
            self.fail(raw.key_lines["env"], "env: must map names to values, e.g. {SHOP_API: \"https://…\"}")
            own_env = {}
        merged_env = {**(env if isinstance(env, dict) else {}), **own_env}
        http = {**shared, **self.stand_ins(raw.get("http"), raw.key_lines.get("http", line))}
        now = self.moment(raw.get("now"), raw.key_lines.get("now", line)) if "now" in raw else self.now
        return Case(self.file, line, name, customer, tuple(s for s in steps if s is not None), http,
                    {str(k): str(v) for k, v in merged_env.items()}, now)

    def step(self, raw: Any, line: int) -> Step | None:
        if not isinstance(raw, LineDict):
            self.fail(line, "each step must be a mapping such as send: \"hi\" or tap: \"Đặt hàng\"")
            return None
        kinds = [k for k in ("send", "tap", "resume", "wait", "start") if k in raw]
        for key in raw:
            if key not in ("send", "tap", "resume", "wait", "start", "expect", "http"):
                self.fail(raw.key_lines[key], f"unknown key '{key}' in a step",
                          "a step is one of send, tap, resume, wait, start, with optional expect and http")
        if len(kinds) != 1:
            self.fail(line, "a step needs exactly one of send, tap, resume, wait or start",
                      "split it into several steps")
            return None
        kind = kinds[0]
        at = raw.key_lines[kind]
        expect = self.expect(raw.get("expect"), raw.key_lines.get("expect", line))
        http = self.stand_ins(raw.get("http"), raw.key_lines.get("http", line))
        value = raw[kind]
        if kind == "send":
            content = self.content(value, at)
            return None if content is None else Step(kind, line, content=content, http=http, expect=expect)
        if kind == "tap":
            if not isinstance(value, str | int) or isinstance(value, bool):
                self.fail(at, "tap: takes the title of a button or list row, or its number")
                return None
            return Step(kind, line, tap=value, http=http, expect=expect)
        if kind == "wait":
            seconds = self.duration(value, at)
            return None if seconds is None else Step(kind, line, seconds=seconds, http=http, expect=expect)
        if kind == "start":  # `start: order_shipped` or `start: {flow: order_shipped, vars: {code: A123}}`
            flow, variables = (value.get("flow"), value.get("vars") or {}) if isinstance(value, dict) else (value, {})
            if not isinstance(flow, str) or not flow or not isinstance(variables, dict):
                self.fail(at, "start: takes a flow's name, or {flow: NAME, vars: {name: value, ...}}")
                return None
            return Step(kind, line, flow=flow, variables=dict(variables), http=http, expect=expect)
        return Step(kind, line, http=http, expect=expect)

    def content(self, value: Any, line: int) -> inbound.Content | None:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return inbound.Text(str(value))
        if isinstance(value, dict):
            kind = next((k for k in (*MEDIA_KINDS, "location", "text") if k in value), None)
            if kind == "text":
                return inbound.Text(str(value["text"]))
            if kind == "location":
                return self.location(value["location"], line)
            if kind in MEDIA_KINDS:
                caption = value.get("caption")
                return inbound.Media(kind, str(value[kind]), caption=None if caption is None else str(caption),
                                     filename=value.get("filename"))
        self.fail(line, "send: takes a text, {image: <id>, caption: ...} (or video, audio, document, sticker), "
                        "or {location: [latitude, longitude]}")
        return None

    def location(self, raw: Any, line: int) -> inbound.Location | None:
        try:
            if isinstance(raw, list) and len(raw) == 2:
                return inbound.Location(float(raw[0]), float(raw[1]))
            if isinstance(raw, dict):
                return inbound.Location(float(raw["latitude"]), float(raw["longitude"]),
                                        name=raw.get("name"), address=raw.get("address"))
        except (KeyError, TypeError, ValueError):
            pass
        self.fail(line, "a location is [latitude, longitude] or {latitude: ..., longitude: ..., name: ...}")
        return None

    def duration(self, raw: Any, line: int) -> float | None:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return float(raw)
        seconds = duration(str(raw))
        if seconds is None:
            self.fail(line, f"wait: {raw!r} is not a duration", "write it like 90s, 31m, 2h or 1d")
        return seconds

    def moment(self, raw: Any, line: int) -> datetime | None:
        try:
            moment = datetime.fromisoformat(str(raw))
        except ValueError:
            self.fail(line, f"now: {raw!r} is not a date and time", 'write it like "2026-11-25 09:30"')
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=self.zone)

    def stand_ins(self, raw: Any, line: int) -> dict[str, StandIn]:
        if raw is None:
            return {}
        if not isinstance(raw, LineDict):
            self.fail(line, "http: must map a request to its answer, e.g. \"GET https://…\": {status: 200, json: {}}")
            return {}
        out: dict[str, StandIn] = {}
        for key, answer in raw.items():
            at = raw.key_lines[key]
            if not isinstance(answer, dict) or not set(answer) <= {"status", "json", "text", "error"}:
                self.fail(at, f"the answer to {key} must be a mapping with status and json (or text, or error)")
                continue
            status = answer.get("status", 0 if "error" in answer else 200)
            if not isinstance(status, int) or isinstance(status, bool):
                self.fail(at, f"the status of the answer to {key} must be a number such as 200 or 404")
                continue
            data = answer.get("json", answer.get("text"))
            out[request_key(str(key))] = StandIn(status, data, str(answer.get("error") or ""))
        return out

    def expect(self, raw: Any, line: int) -> Expect:
        if raw is None:
            return Expect()
        if not isinstance(raw, LineDict):
            self.fail(line, "expect: must be a mapping such as {contains: \"Xin chào\"}")
            return Expect()
        allowed = ("text", "contains", "not_contains", "buttons", "list", "saved", "at", "handoff", "silent",
                   "called")
        for key in raw:
            if key not in allowed:
                self.fail(raw.key_lines[key], f"unknown check '{key}' in expect", f"use one of {', '.join(allowed)}")
        saved = raw.get("saved") or {}
        if not isinstance(saved, dict):
            self.fail(raw.key_lines["saved"], "saved: must map variable names to values, e.g. {quantity: 2}")
            saved = {}
        called = raw.get("called")
        return Expect(
            text=None if raw.get("text") is None else _texts(raw["text"]),
            contains=_texts(raw.get("contains")),
            not_contains=_texts(raw.get("not_contains")),
            buttons=None if raw.get("buttons") is None else _texts(raw["buttons"]),
            list=None if raw.get("list") is None else _texts(raw["list"]),
            saved=dict(saved),
            at=None if raw.get("at") is None else str(raw["at"]),
            handoff=None if raw.get("handoff") is None else bool(raw["handoff"]),
            silent=bool(raw.get("silent")),
            called=None if called is None else tuple(request_key(c) for c in _texts(called)),
            lines=dict(raw.key_lines),
        )


def duration(text: str) -> float | None:
    """Seconds in "90s", "31m", "2h", "1d" (a bare number is seconds); None if it is not a duration."""
    m = _DURATION.match(text.strip())
    return None if m is None else float(m[1]) * _SECONDS[(m[2] or "s")[0]]


def request_key(text: str) -> str:
    """`"GET http://x"` (method optional, GET by default) -> `"GET http://x"`."""
    parts = text.split(None, 1)
    if len(parts) == 2 and parts[0].upper() in METHODS:
        return f"{parts[0].upper()} {parts[1].strip()}"
    return f"GET {text.strip()}"


def _texts(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, list):
        return tuple(str(x) for x in raw)
    return (str(raw),)
