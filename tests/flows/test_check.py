"""The checks on flow files: schema errors in plain words, semantic errors and warnings, each with its line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]

from tests import FIXTURES, ROOT, load_flows
from wabot.errors import Problem
from wabot.flows.check import SCHEMA_PATH, check_document
from wabot.flows.source import parse


def problems_of(path: Path) -> list[Problem]:
    return load_flows(path)[1]


def at(problems: list[Problem], line: int) -> list[str]:
    return [f"{p.message} — {p.fix}" for p in problems if p.line == line]


def steps(*lines: str) -> str:
    return "flows:\n  main:\n    steps:\n" + "".join(f"      {line}\n" for line in lines)


def test_schema_is_valid_and_accepts_the_demo_and_good_files() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    for path in [*sorted((ROOT / "flows").glob("*.yaml")), *sorted((FIXTURES / "good").glob("*.yaml"))]:
        data = parse(path.read_text(encoding="utf-8"), str(path)).data
        assert list(validator.iter_errors(data)) == [], path


def test_demo_files_point_editors_at_the_schema() -> None:
    for path in sorted((ROOT / "flows").glob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=../wabot/flows/flows.schema.json"


def test_schema_errors_are_plain_each_with_its_line_and_all_at_once() -> None:
    problems = problems_of(FIXTURES / "broken.yaml")
    assert all(p.severity == "error" and p.file.endswith("broken.yaml") and p.fix for p in problems)
    assert at(problems, 5) == ["an 'ask' step needs 'save: <variable name>' — add 'save:' to it"]
    assert at(problems, 6) == ["this 'ask' step has no key 'sav' — did you mean 'save'?"]
    assert at(problems, 9) == ["'attempts' must be a whole number, not 'three' — write a whole number"]
    assert at(problems, 10) == [
        "a step can do only one thing, but this one has 'say' and 'goto' — split it into two steps"]
    assert at(problems, 15) == ["'options' has no options — add at least one option"]
    assert at(problems, 16) == ["'sai' is not something a step can do — did you mean 'say'?"]
    assert "at most 3" in at(problems, 21)[0]
    assert at(problems, 24)[0].endswith("not 'nmber' — did you mean 'number'?")
    assert "for example 'bad_name'" in at(problems, 25)[0]
    assert at(problems, 32) == ["this fallback has no key 'aftr' — did you mean 'after'?"]
    assert len(problems) == 10
    assert [p.where for p in problems if p.line in (5, 15, 32)] == ["flow main, step 2 (ask)", "flow main, step 'menu'",
                                                                    "fallback"]


@pytest.mark.parametrize(("text", "line", "expected"), [
    (steps("- ask: x", "  save: a", "  expect: {number: {min: 1}, text: {}}"), 6, "'expect' must have only 1 entry"),
    (steps("- say: {text: hi, vi: chào}"), 4, "this 'text' message has no key 'vi'"),
    (steps("- say: {txt: hi}"), 4, "'txt' is not something a message can do — did you mean 'text'?"),
    (steps("- say: {buttons: [a]}"), 4, "a message needs 'text: \"...\"'"),
    (steps("- say: {image: a.jpg, video: b.mp4}"), 4, "a message can do only one thing, but this one has 'image' and"),
    (steps("- menu:", "    text: hi", "    options:", "      - title: a"), 7,
     "a menu option needs one of: goto, call, end"),
    (steps("- goto: Main Menu"), 4, "'goto' must be a step id, a flow name, flow.step, end or return, not 'Main Menu'"),
    (steps("- say:"), 4, "'say' is empty"),
    (steps("- http: {url: x, method: GTE}"), 4, "did you mean 'GET'?"),
    (steps("- end: false"), 4, "'end' must be true, not false"),
    (steps("- say:", "  - Giờ mở cửa: 7:00 - 21:00"), 5, "a ':' inside a text needs the text in quotes"),
    (steps("- hello"), 4, "item 1 of 'steps' must be a step with one action: say, menu, ask, if, set, route, "
                          "http, goto, call, end, handoff, wait, not 'hello' — start each step"),
    ("flow:\n  main: {}\n", 1, "this flow file has no key 'flow' — did you mean 'flows'?"),
    ("flows:\n  main:\n    description: x\n", 3, "a flow needs 'steps: [...]'"),
])
def test_schema_error_kinds(tmp_path: Path, text: str, line: int, expected: str) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(text, encoding="utf-8")
    found = at(problems_of(path), line)
    assert any(expected in message for message in found), found


def test_semantic_errors_and_warnings() -> None:
    problems = problems_of(FIXTURES / "semantic.yaml")
    errors = {p.line: p for p in problems if p.severity == "error"}
    warnings = {p.line: p for p in problems if p.severity == "warning"}
    assert errors[4].message == "the template has a mistake: unexpected '}'"
    assert (errors[5].message, errors[5].fix) == ("there is no filter 'monney'", "did you mean 'money'?")
    assert (errors[6].message, errors[6].fix) == ("there is no step or flow called 'mian'", "did you mean 'main'?")
    assert errors[12].message.startswith("a button title is 27 characters long; WhatsApp allows at most 20")
    assert errors[13].fix == "did you mean 'confirm'?" and "no step with id 'confirn'" in errors[13].message
    assert errors[15].message == "there is no flow called 'helpp'"
    assert errors[16].fix == "did you mean 'greeting'?"
    assert errors[17].message.startswith("the condition has a mistake")
    assert "regex" in errors[21].message and errors[21].where == "flow main, step 8 (ask)"
    assert "can never run" in warnings[7].message
    assert "'cusotmer' is used here" in warnings[22].message
    assert "also the name of a flow" in warnings[27].message
    assert "never used" in warnings[30].message
    assert len(errors) == 9 and len(warnings) == 4


def test_start_flow_must_exist_and_limits_count_literal_text_only(tmp_path: Path) -> None:
    long = "x" * 30
    path = tmp_path / "f.yaml"
    path.write_text(steps("- menu:", "    text: hi", "    options:", f"      - {{title: '{long}', goto: a}}",
                          "      - {title: '{{ x }}" + long + "', goto: a}", "- id: a", "  set: {x: 1}"),
                    encoding="utf-8")
    problems = load_flows(path, start_flow="mian")[1]
    assert [(p.line, p.message) for p in problems if p.severity == "error"] == [
        (1, "the start flow 'mian' does not exist"),
        (7, "a button title is 30 characters long; WhatsApp allows at most 20"),
    ]


def test_unknown_variable_warning_respects_saves_and_builtins(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(steps("- ask: '{{ contact.name }} {{ lang }} {{ now }}'", "  save: qty",
                          "- http: {url: 'https://x/{{ qty }}', save: order}",
                          "- say: '{{ order.status }} {{ order_error }} {% for i in range(3) %}{{ i }}{% endfor %}'",
                          "- say: '{{ qtyy }}'"), encoding="utf-8")
    warnings = [p for p in problems_of(path) if p.severity == "warning"]
    assert [(p.line, p.message, p.fix) for p in warnings] == [
        (8, "'qtyy' is used here, but no step saves or sets it", "did you mean 'qty'?")]


def test_a_flows_inputs_count_as_saved_and_mark_it_as_started_by_the_api(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text("""flows:
  main:
    steps:
      - say: hi
  order_shipped:
    inputs: [code, carrier]
    steps:
      - end: "Đơn {{ code }} đã giao cho {{ carrier }}, {{ cod }}"
  bad:
    inputs: [mã đơn]
    steps:
      - say: x
""", encoding="utf-8")
    found = [(p.line, p.severity, p.message) for p in problems_of(path)]
    assert found == [(10, "error", "item 1 of 'inputs' must be a variable name (letters, digits, _), not 'mã đơn'")]
    path.write_text(path.read_text("utf-8").replace("    inputs: [mã đơn]\n", ""), encoding="utf-8")
    found = [(p.line, p.severity, p.message) for p in problems_of(path)]  # neither "nothing goes to" nor carrier
    assert found == [(8, "warning", "'cod' is used here, but no step saves or sets it"),
                     (9, "warning", "nothing goes to the flow 'bad'")], found


def test_a_file_sent_by_an_http_step_must_be_saved_first(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(steps("- ask: 'Ảnh hóa đơn?'", "  expect: image", "  save: photo",
                          "- http:", "    url: 'https://shop.example/upload'", "    method: POST",
                          "    files:", "      receipt: photo", "      extra: phot0"), encoding="utf-8")
    warnings = [p for p in problems_of(path) if p.severity == "warning"]
    assert [(p.line, p.message, p.fix) for p in warnings] == [
        (12, "'phot0' is used here, but no step saves or sets it", "did you mean 'photo'?")]


def test_check_document_on_unreadable_file_is_empty() -> None:
    doc = parse("a: [", "x.yaml")
    assert doc.data is None and check_document(doc) == []


def test_a_question_for_a_file_names_a_bad_size_or_type_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "files.yaml"
    path.write_text(steps(
        '- ask: "Gửi ảnh"',
        "  save: photo",
        "  expect: image",
        "  max_size: lots",
        "  accept: [jpeg]",
    ), encoding="utf-8")
    found = problems_of(path)
    assert any("max_size 'lots' is not a size" in m and "5 MB" in m for m in at(found, 7)), found
    assert at(found, 8), found  # 'jpeg' is not a MIME type: the schema says so on its line


def test_a_question_for_a_file_with_its_rules_loads(tmp_path: Path) -> None:
    path = tmp_path / "files.yaml"
    path.write_text(steps(
        '- ask: "Gửi hóa đơn"',
        "  save: bill",
        "  expect: document",
        "  max_size: 2.5 MiB",
        "  accept: [application/pdf, image/*]",
        '  too_large: "Tệp lớn quá."',
    ), encoding="utf-8")
    bot, found = load_flows(path)
    assert found == []
    ask = bot.flows["main"].steps[0].action
    assert ask.accept == ("application/pdf", "image/*") and ask.max_bytes == int(2.5 * 1024 * 1024)  # type: ignore[union-attr]
