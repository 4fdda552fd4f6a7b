"""Loading flow files into the Bot model: the demo flows, merging, YAML syntax errors, the model built."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import get_args

import pytest

from tests import FIXTURES, ROOT, load_flows
from wabot.errors import FlowError, Problem
from wabot.flows.load import load_bot_or_raise
from wabot.flows.model import (
    ANY,
    END,
    RETURN,
    Ask,
    Bot,
    ButtonsSpec,
    CtaSpec,
    ExpectKind,
    Goto,
    Handoff,
    Http,
    If,
    Jump,
    ListSpec,
    LocationSpec,
    MediaSpec,
    Menu,
    ReplyRef,
    Route,
    Say,
    Set,
    TextSpec,
)
from wabot.flows.steps import ACTIONS

ENVIRON = {"SHOP_API": "http://127.0.0.1:1"}
SETTINGS = {"start": "main", "default_language": "vi", "session_timeout": 1800.0,  # load_bot_or_raise's own
            "timezone": "Asia/Ho_Chi_Minh", "env": ENVIRON}


def load(*paths: Path) -> tuple[Bot, list[Problem]]:
    return load_flows(*paths, environ=ENVIRON)


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_demo_flows_load_without_problems() -> None:
    bot, problems = load(ROOT / "flows")
    assert problems == []
    assert {"main", "order", "track", "human", "products"} <= set(bot.flows)
    assert bot.start == "main" and bot.default_language == "vi" and bot.env == {"SHOP_API": "http://127.0.0.1:1"}
    assert bot.timezone == "Asia/Ho_Chi_Minh" and bot.session_timeout == 1800.0
    assert bot.flows["main"].steps[0].action == Say((ReplyRef("greeting"),))
    greeting = "Hello {{ contact.name or 'there' }}! 👋 Welcome to Trà Sen."
    assert bot.replies["greeting"]["en"] == TextSpec({ANY: greeting})

    track = bot.flows["track"]
    lookup = track.steps[track.index("lookup")]
    assert isinstance(lookup.action, Http) and lookup.action.on_error == Jump("goto", "track", "lookup_failed")
    assert track.steps[0].where.line == 8 and track.steps[0].key == "#1" and not track.steps[0].has_id


def test_model_is_built_from_every_step_kind() -> None:
    bot, problems = load(FIXTURES / "good")
    assert errors(problems) == []
    steps = {s.key: s.action for s in bot.flows["main"].steps}
    menu = steps["menu"]
    assert isinstance(menu, Menu) and menu.save == "choice"
    assert [o.id for o in menu.options] == ["main.menu.1", "mine", "main.menu.3", "main.menu.4"]
    assert [o.jump for o in menu.options] == [Jump("goto", "main", "ask_qty"), Jump("call", "other"), END,
                                              Jump("goto", "other", "deep")]
    assert menu.button == {"vi": "Mở", "en": "Open"}
    ask = steps["ask_qty"]
    assert isinstance(ask, Ask) and ask.save == "qty" and ask.attempts == 2 and not ask.triggers
    assert (ask.expect.kind, ask.expect.min, ask.expect.max) == ("integer", 1.0, 9.0)
    assert ask.on_fail == Jump("goto", "other")
    choice = steps["pick"]
    assert isinstance(choice, Ask) and [c.id for c in choice.expect.choices] == ["main.pick.1", "big"]
    cond = steps["#5"]
    assert isinstance(cond, If) and cond.then is None and cond.else_ == RETURN
    assert steps["#6"] == Set({"total": "{{ qty * 2 }}", "flag": True, "items": [1, 2]})
    route = steps["route"]
    assert isinstance(route, Route) and route.routes[0].keywords == ("gia", "bao nhieu")
    assert route.routes[1].regex == r"^DH\d{5}$" and route.routes[1].save == "code"
    assert route.else_ == Jump("goto", "main", "menu")
    say = steps["#8"]
    assert isinstance(say, Say)
    buttons, lst, media, loc, cta = say.messages
    assert isinstance(buttons, ButtonsSpec) and [b.id for b in buttons.buttons] == ["main.#8.1", "size_l"]
    assert isinstance(lst, ListSpec) and lst.sections[0].rows[0].id == "pho" and lst.button == {ANY: "Xem"}
    assert isinstance(media, MediaSpec) and (media.kind, media.source) == ("document", "https://x.example/a.pdf")
    assert media.filename == "a.pdf"
    assert isinstance(loc, LocationSpec) and loc.latitude == 10.5
    assert isinstance(cta, CtaSpec) and cta.url == "https://x.example"
    assert isinstance(steps["#9"], Goto) and steps["#9"].jump == Jump("call", "other")
    handoff = steps["#10"]
    assert isinstance(handoff, Handoff) and handoff.reason == "help" and handoff.messages == ()


def test_files_merge_into_one_bot(tmp_path: Path) -> None:
    bot, _ = load(FIXTURES / "good")
    assert set(bot.flows) == {"main", "other"}
    assert [t.words for t in bot.triggers] == [("menu", "bat dau"), ("tro giup",)]
    assert bot.triggers[1].jump == Jump("call", "other") and bot.triggers[1].resume
    assert bot.triggers[0].jump == Jump("goto", "main", "menu") and not bot.triggers[0].resume
    assert bot.fallback.after == 2 and bot.fallback.jump == Jump("goto", "other")
    assert bot.welcome_back == (TextSpec({ANY: "Chào lại!"}),)
    assert bot.replies["hi"]["vi"] == TextSpec({ANY: "Chào"})


def test_duplicates_across_files_are_errors(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "flows:\n  main:\n    steps:\n      - say: a\nreplies:\n  r: x\nfallback:\n  after: 2\n")
    write(tmp_path, "b.yml", "flows:\n  main:\n    steps:\n      - say: b\nreplies:\n  r: y\nfallback:\n  after: 3\n")
    write(tmp_path, "notes.txt", "not a flow file")
    _, problems = load(tmp_path)
    found = [(Path(p.file).name, p.line, p.message) for p in errors(problems)]
    assert ("b.yml", 2, f"the flow 'main' is defined twice (also at {tmp_path / 'a.yaml'}:2)") in found
    assert any(name == "b.yml" and line == 6 and "reply 'r' is defined twice" in m for name, line, m in found)
    assert any(name == "b.yml" and line == 8 and "'fallback' is written twice" in m for name, line, m in found)


@pytest.mark.parametrize(("text", "line", "words"), [
    ("flows:\n  main:\n    steps:\n      - say: Giờ mở cửa: 8h\n", 4, "':' inside a text needs the text in quotes"),
    ("flows:\n  main:\n    steps:\n      - say: a\n     - say: b\n", 5, "indented differently"),
    ("flows:\n  main:\n\tsteps: []\n", 3, "tab"),
    ("flows:\n  main:\n    steps:\n      - say: \"không đóng\n", 5, "never closed"),
    ("flows:\n  main:\n    steps:\n      - say: [a, b\n", 5, "not closed"),
])
def test_yaml_syntax_errors_have_a_line_and_plain_words(tmp_path: Path, text: str, line: int, words: str) -> None:
    bot, problems = load(write(tmp_path, "bad.yaml", text))
    assert len(problems) == 1 and problems[0].line == line and words in problems[0].message
    assert problems[0].fix and bot.flows == {}


def test_missing_and_empty_files(tmp_path: Path) -> None:
    _, problems = load(tmp_path / "nope.yaml", write(tmp_path, "empty.yaml", "# nothing\n"))
    assert sorted(p.message for p in problems) == [f"{tmp_path / 'nope.yaml'} does not exist", "the file is empty"]


def test_yes_no_and_dates_stay_text(tmp_path: Path) -> None:
    bot, problems = load(write(tmp_path, "t.yaml", "flows:\n  main:\n    steps:\n      - say: yes\n"
                                                   "      - say: 2024-01-01\n"))
    assert errors(problems) == []
    assert [s.action for s in bot.flows["main"].steps] == [Say((TextSpec({ANY: "yes"}),)),
                                                           Say((TextSpec({ANY: "2024-01-01"}),))]


def test_load_bot_or_raise(tmp_path: Path) -> None:
    assert load_bot_or_raise([ROOT / "flows"], **SETTINGS).flows  # type: ignore[arg-type]
    bad = write(tmp_path, "bad.yaml", "flows:\n  main:\n    steps:\n      - goto: nowhere\n")
    with pytest.raises(FlowError) as info:
        load_bot_or_raise([bad], **SETTINGS)  # type: ignore[arg-type]
    assert info.value.problems[0].line == 4 and "nowhere" in str(info.value)


def test_two_hundred_files_load_as_one_bot(tmp_path: Path) -> None:
    """Many files, one bot (how long it takes is measured by `python3 -m bench --startup 200`, not here)."""
    for i in range(200):
        text = (ROOT / "flows" / "shop.yaml").read_text(encoding="utf-8")
        for name in ("products", "order"):
            text = text.replace(f"  {name}:", f"  {name}_{i}:").replace(f"goto: {name}", f"goto: {name}_{i}")
        write(tmp_path, f"f{i:03}.yaml", text.replace("order_{i}.quantity", f"order_{i}.quantity"))
    write(tmp_path, "main.yaml", (ROOT / "flows" / "main.yaml").read_text(encoding="utf-8"))
    bot, _ = load(tmp_path)
    assert len(bot.flows) >= 400


def test_a_broken_file_does_not_hide_the_mistakes_in_the_others(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "flows:\n  main:\n    description: Giờ: 8:00\n    steps:\n      - say: hi\n"
                              "  later:\n    steps:\n      - say: ok\n")
    write(tmp_path, "b.yaml", 'flows:\n  other:\n    steps:\n      - say: "Giá {{ price | money "\n'
                              "      - goto: later\n      - goto: nowhere\n")
    _, problems = load(tmp_path)
    found = [(Path(p.file).name, p.line, p.message[:30]) for p in errors(problems)]
    assert found == [  # the YAML mistake, the template mistake and the target no file can define, at once
        ("a.yaml", 3, "a ':' inside a text needs the "),
        ("b.yaml", 4, "the template has a mistake: un"),
        ("b.yaml", 6, "there is no step or flow calle"),
    ]
    # 'later' is written in a.yaml, which cannot be read yet: not reported, and no warnings either
    assert not any("later" in p.message for p in problems)
    assert all(p.severity == "error" for p in problems)


def test_a_schema_mistake_does_not_hide_a_wrong_target_in_the_same_file(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "flows:\n  main:\n    steps:\n      - ask: Mấy cái?\n        sav: qty\n"
                              "      - if: 'qty > 10'\n        then: fre\n      - id: free\n        say: ok\n")
    _, problems = load(tmp_path)
    assert [(p.line, p.message) for p in errors(problems)] == [
        (4, "an 'ask' step needs 'save: <variable name>'"),
        (5, "this 'ask' step has no key 'sav'"),
        (7, "there is no step or flow called 'fre'"),
    ]


@pytest.mark.parametrize("source", [
    "{{ 9 ** 9 ** 8 }}", "{{ ['a' * 100000] * 12000 }}", "{{ 'a' * 100000 * 100000 }}",
    "{{ 'x' | center(1000000000) }}", "{{ (['a'*100000]*3000)|join }}", "{{ -(9 ** 9 ** 8) }}",
])
def test_loading_never_runs_an_expression_unbounded_and_reports_it(tmp_path: Path, source: str) -> None:
    """Issue 16 item 5: `{{ 9 ** 9 ** 8 }}` froze the server for 31 s at load and passed validation."""
    write(tmp_path, "main.yaml", f'flows:\n  main:\n    steps:\n      - say: "{source}"\n')
    started = time.perf_counter()
    _, problems = load(tmp_path)
    assert time.perf_counter() - started < 3.0
    assert [p.severity for p in problems] == ["error"], problems
    assert "too much work" in problems[0].message and problems[0].line == 4


def test_the_schema_and_the_types_name_the_same_expect_and_step_kinds() -> None:
    """flows.schema.json is what authors may write; ExpectKind and StepKind are what the code handles."""
    defs = json.loads((ROOT / "wabot" / "flows" / "flows.schema.json").read_text("utf-8"))["$defs"]
    written = {*defs["expect"]["else"]["enum"], *defs["expect"]["then"]["properties"]}
    handled = {value for part in get_args(ExpectKind) for value in get_args(part)}
    assert written == handled
    assert set(ACTIONS) <= set(defs["step"]["properties"]), "a step kind the schema does not allow"


def test_validate_names_a_flow_reading_an_environment_variable_bot_env_does_not_allow(tmp_path: Path) -> None:
    """Issue 16 item 4: flows see only bot.env; a flow reading another variable is named, with the fix."""
    from wabot.config import BotSettings
    from wabot.flows.load import load_configured

    say = "{{ env.SHOP_API }} {{ env['AWS_SECRET_ACCESS_KEY'] }}"
    write(tmp_path, "main.yaml", f'flows:\n  main:\n    steps:\n      - say: "{say}"\n')
    settings = BotSettings(flows=tmp_path, start_flow="main", default_language="vi", session_timeout=1800.0,
                           timezone="UTC", env=("SHOP_API",))
    bot, problems = load_configured(settings, environ={"SHOP_API": "http://shop", "AWS_SECRET_ACCESS_KEY": "k"})
    assert bot.env == {"SHOP_API": "http://shop"}
    [problem] = problems
    assert problem.severity == "warning" and problem.line == 4
    assert "env.AWS_SECRET_ACCESS_KEY" in problem.message
    assert "bot: env: [SHOP_API, AWS_SECRET_ACCESS_KEY]" in problem.fix
