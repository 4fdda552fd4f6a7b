"""Checked YAML documents -> the Bot model; problems for targets, names and texts, each with its line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from wabot.flows.messages import Ctx, MessageBuilder, is_language_map
from wabot.flows.model import ANY, END, RETURN, Action, Fallback, Flow, Jump, MessageSpec, Step, Trigger, Where
from wabot.flows.source import Document, LineDict
from wabot.flows.steps import action, step_where
from wabot.flows.texts import Texts, line_of, suggest
from wabot.flows.timing import opens_with_of
from wabot.text import fold


@dataclass(slots=True)
class Built:
    """The pieces of a Bot, plus what the bot-wide checks need to know."""

    flows: dict[str, Flow] = field(default_factory=dict)
    replies: dict[str, dict[str, MessageSpec]] = field(default_factory=dict)
    reply_lines: dict[str, Where] = field(default_factory=dict)
    triggers: list[Trigger] = field(default_factory=list)
    fallback: Fallback = field(default_factory=Fallback)
    welcome_back: tuple[MessageSpec, ...] = ()
    saved: set[str] = field(default_factory=set)  # variables some step saves or sets
    waits: list[tuple[str, str, int, str]] = field(default_factory=list)  # wait steps' `until`: file, line, place
    texts: Texts = field(default_factory=Texts)


class Builder:
    """Builds every document into one `Built`, resolving targets against all flows of all files."""

    def __init__(self, docs: Sequence[Document]) -> None:
        self.docs = docs
        self.out = Built()
        self.msg = MessageBuilder(self.out.texts)
        self.steps: dict[str, dict[str, int]] = {}  # flow -> step id -> position
        self.flow_where: dict[str, Where] = {}
        self.fallback_where: Where | None = None
        self.welcome_where: Where | None = None

    def problem(self, message: str, where: Where, place: str, fix: str = "") -> None:
        self.out.texts.problem(message, where.file, where.line, place, fix)

    def build(self) -> Built:
        for doc in self.docs:
            self._index(doc)
        for doc in self.docs:
            if doc.data is not None:
                self._document(doc.file, doc.data)
        return self.out

    def _index(self, doc: Document) -> None:
        flows = doc.data.get("flows") if doc.data is not None else None
        for name, raw in (flows or {}).items():
            at = Where(doc.file, flows.key_lines.get(name, 1) if isinstance(flows, LineDict) else 1)
            if name in self.flow_where:
                self.problem(f"the flow '{name}' is defined twice (also at {self.flow_where[name]})", at,
                             f"flow {name}", "rename one of them: flow names must be unique across all files")
                continue
            self.flow_where[name] = at
            ids: dict[str, int] = {}
            for i, step in enumerate(raw.get("steps") or []):
                sid = step.get("id") if isinstance(step, dict) else None
                if not isinstance(sid, str):
                    continue
                if sid in ids:
                    self.problem(f"two steps have the id '{sid}' (steps {ids[sid] + 1} and {i + 1})",
                                 Where(doc.file, line_of(step, "id")), f"flow {name}",
                                 "give each step of a flow its own id")
                    continue
                ids[sid] = i
            self.steps[name] = ids

    def _document(self, file: str, data: LineDict) -> None:
        for name, raw in (data.get("flows") or {}).items():
            if self.flow_where[name].file == file and self.flow_where[name].line == data["flows"].key_lines[name]:
                self.out.flows[name] = self._flow(name, raw, self.flow_where[name])
        replies = data.get("replies") or {}
        for name, raw in replies.items():
            self._reply(file, name, raw, line_of(replies, name))
        triggers = data.get("triggers") or []
        for i, raw in enumerate(triggers):
            self._trigger(file, raw, line_of(triggers, i), i + 1)
        if "fallback" in data:
            self._fallback(file, data["fallback"], line_of(data, "fallback"))
        if "welcome_back" in data:
            at = Where(file, line_of(data, "welcome_back"))
            if self.welcome_where is not None:
                self.problem(f"'welcome_back' is written twice (also at {self.welcome_where})", at,
                             "welcome_back", "keep one welcome_back in all the flow files")
            self.welcome_where = at
            self.out.welcome_back = self.msg.many(data["welcome_back"], at.line,
                                                  Ctx(file, "welcome_back", "welcome_back"))

    # --- targets ---------------------------------------------------------------------------------

    def target(self, raw: Any, flow: str | None, at: Where, place: str) -> Jump:
        """Resolve `step`, `flow`, `flow.step`, `end` or `return` (seen from `flow`)."""
        name = str(raw)
        if name == "end":
            return END
        if name == "return":
            return RETURN
        if "." in name:
            f, s = name.split(".", 1)
            if f not in self.steps:
                self._unknown_flow(f, at, place)
            elif s not in self.steps[f]:
                hint = suggest(s, self.steps[f])
                self.problem(f"the flow '{f}' has no step with id '{s}'", at, place,
                             hint or f"give a step in flow '{f}' the line 'id: {s}', or jump to '{f}'")
            return Jump("goto", f, s)
        if flow is not None and name in self.steps.get(flow, {}):
            return Jump("goto", flow, name)
        if name in self.steps:
            return Jump("goto", name)
        known = [*self.steps.get(flow, {}), *self.steps] if flow else list(self.steps)
        hint = suggest(name, known)
        self.problem(f"there is no step or flow called '{name}'", at, place,
                     hint or "write a step id of this flow, a flow name, flow.step, end or return")
        return END

    def call(self, raw: Any, at: Where, place: str) -> Jump:
        return Jump("call", self.flow_name(raw, at, place))

    def flow_name(self, raw: Any, at: Where, place: str) -> str:
        """A flow's name, checked: a problem (with the closest name) when no flow has it."""
        name = str(raw)
        if name not in self.steps:
            self._unknown_flow(name, at, place)
        return name

    def _unknown_flow(self, name: str, at: Where, place: str) -> None:
        self.problem(f"there is no flow called '{name}'", at, place,
                     suggest(name, self.steps) or "add the flow under 'flows:' or fix the name")

    def jump_of(self, raw: Any, flow: str | None, at: int, file: str, place: str) -> Jump:
        """The jump of something with goto/call/end keys (a menu option, a route rule, a trigger)."""
        if "call" in raw:
            return self.call(raw["call"], Where(file, line_of(raw, "call", at)), place)
        if "goto" in raw:
            return self.target(raw["goto"], flow, Where(file, line_of(raw, "goto", at)), place)
        return END

    # --- flows and steps ---------------------------------------------------------------------------

    def _flow(self, name: str, raw: Any, where: Where) -> Flow:
        steps = []
        raw_steps = raw["steps"]
        for i, step in enumerate(raw_steps):
            at = Where(where.file, line_of(raw_steps, i, where.line))
            sid = step.get("id")
            key = sid if isinstance(sid, str) else f"#{i + 1}"
            action = self._action(name, key, step, at, step_where(name, i + 1, step))
            steps.append(Step(key, action, at, has_id=isinstance(sid, str)))
        opening = raw.get("opens_with")
        inputs = tuple(str(v) for v in raw.get("inputs") or ())
        self.out.saved.update(inputs)  # saved before the first step, by the business API's start
        return Flow(name, tuple(steps), where, None if opening is None else opens_with_of(
            self, opening, Where(where.file, line_of(raw, "opens_with", where.line)), f"flow {name}"), inputs)

    def _action(self, flow: str, key: str, raw: Any, at: Where, place: str) -> Action:
        return action(self, flow, key, raw, at, place)

    # --- bot-wide sections -------------------------------------------------------------------------

    def _reply(self, file: str, name: str, raw: Any, line: int) -> None:
        at = Where(file, line)
        if name in self.out.reply_lines:
            self.problem(f"the reply '{name}' is defined twice (also at {self.out.reply_lines[name]})", at,
                         f"reply {name}", "rename one of them: reply names must be unique across all files")
            return
        self.out.reply_lines[name] = at
        ctx = Ctx(file, f"reply {name}", f"reply.{name}")
        if is_language_map(raw):
            self.out.replies[name] = {lang: self.msg.one(value, line_of(raw, lang, line), ctx)
                                      for lang, value in raw.items()}
        else:
            self.out.replies[name] = {ANY: self.msg.one(raw, line, ctx)}

    def _trigger(self, file: str, raw: Any, line: int, n: int) -> None:
        place = f"trigger {n}"
        words = tuple(w for w in (fold(str(word)) for word in raw["words"]) if w)
        if not words:
            self.problem("this trigger has no usable words", Where(file, line), place,
                         "write words with letters or digits")
        jump = self.jump_of(raw, None, line, file, place)
        written = tuple(str(word) for word in raw["words"] if fold(str(word)))
        self.out.triggers.append(Trigger(words, jump, Where(file, line), resume=jump.kind == "call", written=written))

    def _fallback(self, file: str, raw: Any, line: int) -> None:
        at = Where(file, line)
        if self.fallback_where is not None:
            self.problem(f"'fallback' is written twice (also at {self.fallback_where})", at, "fallback",
                         "keep one fallback in all the flow files")
        self.fallback_where = at
        default = Fallback()
        messages = (self.msg.many(raw["say"], line_of(raw, "say", line), Ctx(file, "fallback", "fallback"))
                    if "say" in raw else default.messages)
        jump = self.target(raw["goto"], None, Where(file, line_of(raw, "goto", line)), "fallback") \
            if "goto" in raw else None
        self.out.fallback = Fallback(messages, int(raw.get("after", default.after)), jump)

