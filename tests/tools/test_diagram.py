"""wabot.tools.diagram: Mermaid and DOT drawings of flows."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests import DEMO, demo_bot
from wabot.flows import diagram
from wabot.flows.load import load_bot_or_raise
from wabot.flows.model import (
    ANY,
    END,
    Ask,
    Bot,
    End,
    Flow,
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
    Step,
    TextSpec,
    Trigger,
    Where,
)

FLOWS = DEMO
EDGE = r'^\s+(n\d+) (?:-->|-\.->)(?:\|"(.*?)"\|)? (n\d+)$'


def _t(text: str) -> dict[str, str]:
    return {ANY: text}


def _step(key: str, action: object, *, has_id: bool = True) -> Step:
    return Step(key, action, Where("f.yaml", 1), has_id=has_id)  # type: ignore[arg-type]


def small_bot() -> Bot:
    main = Flow("main", (
        _step("#1", Say((TextSpec(_t('Chào "bạn" [VIP] <b> #1 `x`')),)), has_id=False),
        _step("menu", Menu(_t("Bạn cần gì?"), (
            Option("o1", _t("Hỏi đáp"), Jump("goto", "faq")),
            Option("o2", _t("Thôi"), END),
        ))),
        _step("qty", Ask((TextSpec(_t("Mấy cái?")),), "qty", attempts=2, on_fail=Jump("goto", "main", "menu"))),
        _step("check", If("qty > 3", then=Jump("goto", "main", "big"))),
        _step("look", Http("GET", "http://x/{{ qty }}", on_error=Jump("goto", "faq"))),
        _step("#6", Goto(Jump("call", "faq")), has_id=False),
        _step("big", Set({"big": True})),
        _step("bye", End((TextSpec(_t("Tạm biệt")),))),
    ), Where("f.yaml", 1))
    faq = Flow("faq", (
        _step("ask", Route((RouteRule(Jump("goto", "main", "qty"), keywords=("gia", "bao nhieu")),
                            RouteRule(Jump("return"), regex=r"^DH\d+$")), else_=Jump("goto", "faq", "human"))),
        _step("human", Handoff(reason="cần người")),
    ), Where("f.yaml", 20))
    return Bot(flows={"main": main, "faq": faq}, replies={},
               triggers=(Trigger(("menu",), Jump("goto", "main", "menu"), Where("f.yaml", 30)),))


def _node_ids(text: str) -> dict[str, str]:
    """node id -> label, from the node lines of a Mermaid chart."""
    return {m[1]: _plain(m[2]) for m in re.finditer(r'^\s+(n\d+)[\[\(\{>/]+"(.*?)"[\]\)\}/]+$', text, re.M)}


def _plain(label: str) -> str:
    return label.replace("#quot;", '"').replace("#lt;", "<").replace("#gt;", ">").replace("#35;", "#")


def test_mermaid_has_a_node_per_step_and_labelled_edges() -> None:
    text = diagram.mermaid(small_bot())
    assert text.startswith("flowchart TD\n")
    nodes = _node_ids(text)
    labels = list(nodes.values())
    for want in ("menu: menu: Bạn cần gì?", "qty: ask qty (text): Mấy cái?", "check: if qty > 3",
                 "look: http GET http://x/{{ qty }}", "call faq", "big: set big", "bye: end: Tạm biệt",
                 "ask: route", "human: handoff: cần người", "end", "return", "menu"):
        assert want in labels, want
    by_label = {v: k for k, v in nodes.items()}
    edges = {(a, _plain(b), c) for a, b, c in re.findall(EDGE, text, re.M)}
    menu, faq_first = by_label["menu: menu: Bạn cần gì?"], by_label["ask: route"]
    assert (menu, "Hỏi đáp", faq_first) in edges
    assert (menu, "Thôi", by_label["end"]) in edges
    assert (by_label["qty: ask qty (text): Mấy cái?"], "fails 2 times", menu) in edges
    assert (by_label["check: if qty > 3"], "yes", by_label["big: set big"]) in edges
    assert (by_label["check: if qty > 3"], "no", by_label["look: http GET http://x/{{ qty }}"]) in edges
    assert (by_label["look: http GET http://x/{{ qty }}"], "error", faq_first) in edges
    assert (by_label["call faq"], "call", faq_first) in edges
    assert (faq_first, "gia, bao nhieu", by_label["qty: ask qty (text): Mấy cái?"]) in edges
    assert (faq_first, r"matches ^DH\d+$", by_label["return"]) in edges
    assert (faq_first, "anything else", by_label["human: handoff: cần người"]) in edges
    assert (by_label["menu"], "word", menu) in edges
    assert 'subgraph g0 ["flow main (start)"]' in text and 'subgraph g1 ["flow faq"]' in text


def test_mermaid_escapes_quotes_brackets_and_html() -> None:
    text = diagram.mermaid(small_bot())
    line = next(x for x in text.splitlines() if "Chào" in x)
    assert line.strip() == 'n0["say: Chào #quot;bạn#quot; [VIP] #lt;b#gt; #35;1 \'x\'"]'
    for x in text.splitlines()[1:]:
        inner = re.findall(r'"(.*?)"', x)
        assert all('"' not in part for part in inner)
        assert x.count('"') % 2 == 0, x


def test_one_flow_shows_other_flows_as_single_nodes() -> None:
    text = diagram.mermaid(small_bot(), flow="faq")
    labels = list(_node_ids(text).values())
    assert "main.qty" in labels
    assert not any(label.startswith("menu:") for label in labels)
    assert "subgraph g0 [\"flow faq\"]" in text and "g1" not in text


def _dot_ok(text: str) -> None:
    """A basic syntax check of the DOT we write: one statement per line, balanced braces, quoted strings closed."""
    assert text.startswith("digraph wabot {\n") and text.rstrip().endswith("}")
    depth = 0
    string = r'"(?:[^"\\]|\\.)*"'
    attrs = rf"\[(?:\w+=(?:{string}|\w+)(?:, )?)+\]"
    for line in text.splitlines()[1:]:
        s = line.strip()
        if s.startswith("subgraph cluster_") and s.endswith("{"):
            depth += 1
        elif s == "}":
            depth -= 1
        else:
            statement = rf"rankdir=TB|label={string}|(node|edge) {attrs}|n\d+ {attrs}|n\d+ -> n\d+( {attrs})?"
            assert re.fullmatch(rf"({statement});", s), s
    assert depth == -1


def test_dot_is_well_formed() -> None:
    text = diagram.dot(small_bot())
    _dot_ok(text)
    assert 'label="say: Chào \\"bạn\\" [VIP] <b> #1 `x`"' in text
    assert "style=dashed" in text


@pytest.fixture(scope="module")
def demo() -> Bot:
    return demo_bot()


def test_demo_chart_has_every_flow_step_and_option(demo: Bot) -> None:
    text = diagram.mermaid(demo)
    nodes = _node_ids(text)
    edges = re.findall(EDGE, text, re.M)
    for name in demo.flows:
        assert f'"flow {name}' in text
    steps = sum(len(f.steps) for f in demo.flows.values())
    assert len([v for v in nodes.values() if v not in ("end", "return")]) >= steps
    labels = {_plain(label) for _, label, _ in edges}
    for flow in demo.flows.values():
        for step in flow.steps:
            if step.has_id:
                assert any(v.startswith(f"{step.key}: ") for v in nodes.values()), (flow.name, step.key)
            action = step.action
            if isinstance(action, Menu):
                for option in action.options:  # options going to one place share an arrow, up to 3 titles shown
                    title = _plain(diagram._mermaid_text(option.title.get("vi") or option.title.get(ANY) or ""))
                    together = [o for o in action.options if o.jump == option.jump]
                    shown = together.index(option) < 3
                    assert any(title in label for label in labels) or not shown, title
    _dot_ok(diagram.dot(demo))


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graphviz_accepts_the_dot(demo: Bot) -> None:
    for text in (diagram.dot(demo), diagram.dot(small_bot())):
        done = subprocess.run(["dot", "-Tsvg"], input=text, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        assert "<svg" in done.stdout


def test_a_menu_from_data_is_one_arrow_and_trigger_words_keep_their_accents(tmp_path: Path) -> None:
    (tmp_path / "f.yaml").write_text("""\
flows:
  main:
    steps:
      - set: {slots: [8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]}
      - menu:
          text: "Chọn giờ"
          options:
            - {from: slots, title: "{{ item }}h", goto: done}
      - id: done
        end: "Xong"
triggers:
  - words: ["hủy lịch", "Đặt lại"]
    goto: main
""", encoding="utf-8")
    bot = load_bot_or_raise([tmp_path], start="main", default_language="vi", session_timeout=1800,
                            timezone="Asia/Ho_Chi_Minh", env={})
    text = diagram.mermaid(bot)
    assert text.count("from slots") == 1
    assert "hủy lịch / Đặt lại" in text
