"""Flow diagrams: the loaded Bot drawn as a Mermaid flowchart (default) or Graphviz DOT."""

from __future__ import annotations

from dataclasses import dataclass, field

from wabot.flows.lint import exits
from wabot.flows.model import (
    ANY,
    Ask,
    Bot,
    ButtonsSpec,
    ContactsSpec,
    CtaSpec,
    End,
    Flow,
    Goto,
    Handoff,
    Http,
    If,
    Jump,
    ListSpec,
    Localized,
    LocationSpec,
    MediaSpec,
    Menu,
    MessageSpec,
    ReplyRef,
    Route,
    Say,
    Set,
    Step,
    TemplateSpec,
    TextSpec,
    Wait,
)

LABEL_WIDTH = 40

# Mermaid node shapes by step kind: (open, close)
_MERMAID_SHAPES = {
    "say": ('["', '"]'),
    "menu": ('{{"', '"}}'),
    "ask": ('[/"', '"/]'),
    "if": ('{"', '"}'),
    "route": ('{"', '"}'),
    "set": ('["', '"]'),
    "http": ('[["', '"]]'),
    "goto": ('("', '")'),
    "end": ('(["', '"])'),
    "handoff": ('>"', '"]'),
    "wait": ('[("', '")]'),
    "terminal": ('(("', '"))'),
    "flow": ('[["', '"]]'),
}
_DOT_SHAPES = {
    "say": "box", "menu": "hexagon", "ask": "parallelogram", "if": "diamond", "route": "diamond",
    "set": "box", "http": "box3d", "goto": "ellipse", "end": "doublecircle", "handoff": "house",
    "wait": "cylinder", "terminal": "circle", "flow": "component",
}


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    kind: str
    label: str


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    label: str = ""
    dashed: bool = False


@dataclass(slots=True)
class Graph:
    """Nodes grouped by flow (`clusters`), nodes outside any flow, and the edges between them."""

    clusters: dict[str, list[Node]] = field(default_factory=dict)
    loose: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)


def build(bot: Bot, *, flow: str | None = None) -> Graph:
    """The graph of every flow, or of `flow` alone (other flows it jumps to become single nodes)."""
    return _Builder(bot, flow).build()


def mermaid(bot: Bot, *, flow: str | None = None) -> str:
    """A Mermaid `flowchart TD` of the flows."""
    graph = build(bot, flow=flow)
    lines = ["flowchart TD"]
    for n, (name, nodes) in enumerate(graph.clusters.items()):
        lines.append(f'  subgraph g{n} ["{_mermaid_text(_flow_title(bot, name))}"]')
        lines.extend(f"    {_mermaid_node(node)}" for node in nodes)
        lines.append("  end")
    lines.extend(f"  {_mermaid_node(node)}" for node in graph.loose)
    for e in graph.edges:
        arrow = "-.->" if e.dashed else "-->"
        label = f'|"{_mermaid_text(e.label)}"|' if e.label else ""
        lines.append(f"  {e.source} {arrow}{label} {e.target}")
    return "\n".join(lines) + "\n"


def dot(bot: Bot, *, flow: str | None = None) -> str:
    """A Graphviz `digraph` of the flows."""
    graph = build(bot, flow=flow)
    lines = ["digraph wabot {", "  rankdir=TB;", '  node [fontname="Helvetica", fontsize=11];',
             '  edge [fontname="Helvetica", fontsize=10];']
    for n, (name, nodes) in enumerate(graph.clusters.items()):
        lines.append(f"  subgraph cluster_{n} {{")
        lines.append(f"    label={_dot_text(_flow_title(bot, name))};")
        lines.extend(f"    {_dot_node(node)}" for node in nodes)
        lines.append("  }")
    lines.extend(f"  {_dot_node(node)}" for node in graph.loose)
    for e in graph.edges:
        attrs = [f"label={_dot_text(e.label)}"] if e.label else []
        if e.dashed:
            attrs.append("style=dashed")
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"  {e.source} -> {e.target}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


class _Builder:
    def __init__(self, bot: Bot, only: str | None) -> None:
        self.bot = bot
        self.only = only
        self.graph = Graph()
        self.ids: dict[tuple[str, str], str] = {}  # (flow, step key or special) -> node id

    def build(self) -> Graph:
        shown = [f for name, f in self.bot.flows.items() if self.only in (None, name)]
        for flow in shown:
            self.graph.clusters[flow.name] = [self._step_node(flow, step) for step in flow.steps]
        if self.only is None:
            self._triggers()
        for flow in shown:
            for i, step in enumerate(flow.steps):
                self._step_edges(flow, i, step)
        return self.graph

    def _new_id(self, key: tuple[str, str]) -> str:
        node_id = self.ids[key] = f"n{len(self.ids)}"
        return node_id

    def _step_node(self, flow: Flow, step: Step) -> Node:
        kind, text = _describe(step, self.bot)
        prefix = f"{step.key}: " if step.has_id else ""
        return Node(self._new_id((flow.name, step.key)), kind, f"{prefix}{text}")

    def _special(self, key: str, kind: str, label: str) -> str:
        if ("", key) not in self.ids:
            self.graph.loose.append(Node(self._new_id(("", key)), kind, label))
        return self.ids[("", key)]

    def _target(self, jump: Jump) -> str | None:
        """The node a jump lands on (None when the flow it names does not exist)."""
        if jump.kind == "end":
            return self._special("end", "terminal", "end")
        if jump.kind == "return":
            return self._special("return", "terminal", "return")
        target = self.bot.flows.get(jump.flow)
        if target is None or not target.steps:
            return None
        key = jump.step or target.steps[0].key
        if (target.name, key) in self.ids:
            return self.ids[(target.name, key)]
        return self._special(f"flow:{jump}", "flow", f"{jump.flow}.{jump.step}" if jump.step else jump.flow)

    def _edge(self, source: str, jump: Jump | None, label: str = "") -> None:
        if jump is None:
            return
        target = self._target(jump)
        if target is not None:
            if jump.kind == "call":
                label = f"call {label}".strip()
            self.graph.edges.append(Edge(source, target, _short(label), dashed=jump.kind == "call"))

    def _next(self, source: str, flow: Flow, i: int, label: str = "") -> None:
        """The edge to the step after step i, or to the end when the flow runs out."""
        if i + 1 < len(flow.steps):
            self.graph.edges.append(Edge(source, self.ids[(flow.name, flow.steps[i + 1].key)], _short(label)))
        else:
            self.graph.edges.append(Edge(source, self._special("end", "terminal", "end"), _short(label)))

    def _step_edges(self, flow: Flow, i: int, step: Step) -> None:
        me = self.ids[(flow.name, step.key)]
        a = step.action
        lang = self.bot.default_language
        if isinstance(a, Menu):
            # options that go to the same place share one arrow: a 13-row menu of slots is one arrow, not 13
            same: dict[Jump, list[str]] = {}
            for option in a.options:
                title = _pick(option.title, lang)
                shown = f"{title} (from {option.data.source})" if option.data else title
                same.setdefault(option.jump, []).append(shown)
            for jump, titles in same.items():
                more = f" (+{len(titles) - 3})" if len(titles) > 3 else ""
                self._edge(me, jump, ", ".join(titles[:3]) + more)
        elif isinstance(a, Ask):
            self._next(me, flow, i, "answer")
        elif isinstance(a, Wait):
            self._next(me, flow, i, "then")
        elif isinstance(a, If):
            if a.then is None:
                self._next(me, flow, i, "yes")
        elif isinstance(a, Http):
            self._next(me, flow, i, "ok" if a.on_error else "")
        for exit in () if isinstance(a, Menu) else exits(step):  # a menu's exits are grouped above
            self._edge(me, exit.jump, exit.when if isinstance(exit.when, str) else _pick(exit.when, lang))
        if isinstance(a, If) and a.else_ is None:
            self._next(me, flow, i, "no")
        elif isinstance(a, Goto) and a.jump.kind == "call":
            self._next(me, flow, i, "back")
        elif isinstance(a, End):
            self.graph.edges.append(Edge(me, self._special("end", "terminal", "end")))
        elif isinstance(a, Handoff):
            self._next(me, flow, i, "a person hands back")
        elif not isinstance(a, Menu | Ask | If | Route | Http | Goto | Wait):
            self._next(me, flow, i)  # say, set: on to the next step

    def _triggers(self) -> None:
        for trigger in self.bot.triggers:
            words = " / ".join(dict.fromkeys(trigger.written or trigger.words))
            source = self._special(f"trigger:{trigger.where}", "terminal", _short(words))
            target = self._target(trigger.jump)
            if target is not None:
                label = "call" if trigger.jump.kind == "call" else "word"
                self.graph.edges.append(Edge(source, target, label, dashed=True))


def _describe(step: Step, bot: Bot) -> tuple[str, str]:
    """(kind, short text) of a step."""
    a = step.action
    lang = bot.default_language
    if isinstance(a, Say):
        return "say", _short("say: " + " / ".join(_message(m, bot) for m in a.messages))
    if isinstance(a, Menu):
        return "menu", _short(f"menu{_timed(a)}: " + _pick(a.text, lang))
    if isinstance(a, Ask):
        prompt = " / ".join(_message(m, bot) for m in a.prompt)
        return "ask", _short(f"ask {a.save} ({a.expect.kind}){_timed(a)}: {prompt}")
    if isinstance(a, Wait):
        return "wait", _short(f"wait {a.written}")
    if isinstance(a, If):
        return "if", _short(f"if {a.condition}")
    if isinstance(a, Set):
        return "set", _short("set " + ", ".join(a.values))
    if isinstance(a, Route):
        return "route", _short("route: " + " / ".join(_message(m, bot) for m in a.prompt)) if a.prompt else "route"
    if isinstance(a, Http):
        return "http", _short(f"http {a.method} {a.url}")
    if isinstance(a, Goto):
        return "goto", f"{a.jump.kind} {a.jump}"
    if isinstance(a, End):
        return "end", _short("end: " + " / ".join(_message(m, bot) for m in a.messages)) if a.messages else "end"
    return "handoff", _short("handoff: " + (a.reason or " / ".join(_message(m, bot) for m in a.messages)))


def _timed(a: Menu | Ask) -> str:
    """" ⏰2h×2" when the question reminds (2 times, after 2 hours of silence); its timeout is an arrow."""
    if a.remind is None:
        return ""
    return f" ⏰{a.remind.written}" + (f"×{a.remind.times}" if a.remind.times > 1 else "")


def _message(spec: MessageSpec, bot: Bot) -> str:
    lang = bot.default_language
    if isinstance(spec, TextSpec | ButtonsSpec | ListSpec | CtaSpec):
        return _pick(spec.text, lang)
    if isinstance(spec, MediaSpec):
        return f"[{spec.kind}]"
    if isinstance(spec, LocationSpec):
        return "[location]"
    if isinstance(spec, ContactsSpec):
        return "[contacts]"
    if isinstance(spec, TemplateSpec):
        return f"[template {spec.name}]"
    if isinstance(spec, ReplyRef):
        variants = bot.replies.get(spec.name, {})
        chosen = variants.get(lang) or variants.get(ANY) or next(iter(variants.values()), None)
        return _message(chosen, bot) if chosen is not None and not isinstance(chosen, ReplyRef) else spec.name
    return ""


def _pick(text: Localized | None, lang: str) -> str:
    if not text:
        return ""
    return text.get(lang) or text.get(ANY) or next(iter(text.values()))


def _flow_title(bot: Bot, name: str) -> str:
    return f"flow {name}" + (" (start)" if name == bot.start else "")


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= LABEL_WIDTH else text[: LABEL_WIDTH - 1] + "…"


def _mermaid_text(text: str) -> str:
    # Inside a quoted Mermaid label only `"` is special, but `#...;` is an entity and `<`/`>`
    # are read as HTML, so those are written as entity codes too.
    return (
        text.replace("#", "#35;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
        .replace("`", "'")
    )


def _mermaid_node(node: Node) -> str:
    open_, close = _MERMAID_SHAPES[node.kind]
    return f"{node.id}{open_}{_mermaid_text(node.label)}{close}"


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dot_node(node: Node) -> str:
    return f"{node.id} [label={_dot_text(node.label)}, shape={_DOT_SHAPES[node.kind]}];"
