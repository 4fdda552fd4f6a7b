"""The flow language's timers: remind/timeout on questions and menus, the wait step, a flow's opens_with template."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import FIXTURES, load_flows
from wabot.dates import parse_duration
from wabot.errors import Problem
from wabot.flows.diagram import mermaid
from wabot.flows.model import END, Ask, Jump, Menu, Remind, TemplateSpec, TextSpec, Timeout, Wait

CLINIC = FIXTURES / "reminders"


def problems(tmp_path: Path, text: str) -> list[Problem]:
    path = tmp_path / "flow.yaml"
    path.write_text(text, encoding="utf-8")
    return load_flows(path)[1]


def lines(found: list[Problem]) -> list[str]:
    return [f"{p.line}: {'(warning) ' if p.severity == 'warning' else ''}{p.message} — {p.fix}" for p in found]


def steps(*written: str, head: str = "") -> str:
    return "flows:\n  main:\n" + head + "    steps:\n" + "".join(f"      {line}\n" for line in written)


@pytest.mark.parametrize(("text", "seconds"), [
    ("45s", 45), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("1w", 604800), ("1h30m", 5400), ("1,5 giờ", 5400),
    ("30 phút", 1800), ("2 tiếng", 7200), ("1 ngày", 86400), ("1 tuần", 604800), ("10 giây", 10),
])
def test_durations_as_authors_write_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["30", "2x", "h2", "", "abc", "2h.", "0m", "-2h"])
def test_not_durations(text: str) -> None:
    assert parse_duration(text) is None


def test_the_clinic_builds_into_timers_and_a_template() -> None:
    bot, found = load_flows(CLINIC)
    assert found == []
    booking = bot.flows["booking"]
    assert booking.steps[0].action == Wait(cancel="booking", written="cancel the waits of booking")  # a new booking
    ask = booking.steps[1].action
    assert isinstance(ask, Ask)
    said = TextSpec({"*": "Bạn còn muốn đặt lịch không? Cứ nhắn ngày giờ bạn muốn nhé."})
    assert ask.remind == Remind(7200.0, (said,), 2, "2h")
    assert ask.timeout is not None and ask.timeout.after == 72000.0 and ask.timeout.jump == END
    wait = booking.steps[4].action
    assert wait == Wait(until="appointment", shift=-86400.0, at="08:00", past=Jump("goto", "booking", "soon"),
                        written="until appointment, before 1d, at 08:00")
    menu = booking.steps[5].action
    assert isinstance(menu, Menu) and menu.timeout == Timeout(14400.0, END, (), "4h") and menu.remind is None
    assert booking.opens_with == TemplateSpec("nhac_lich_kham", "vi", (
        {"type": "body", "parameters": [{"type": "text", "text": "{{ name }}"},
                                        {"type": "text", "text": "{{ appointment }}"}]},))


def test_short_forms_remind_once_with_the_question_and_wait_a_duration(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(steps('- ask: "Tên?"', "  save: name", "  remind: 30 phút", "- wait: 2h", "- say: hi"), "utf-8")
    bot, found = load_flows(path)
    assert found == []
    ask, wait = bot.flows["main"].steps[0].action, bot.flows["main"].steps[1].action
    assert isinstance(ask, Ask) and ask.remind == Remind(1800.0, (), 1, "30 phút")
    assert wait == Wait(seconds=7200.0, written="2h")


@pytest.mark.parametrize(("written", "expected"), [
    (['- say: "Xin chào"', "  remind: 2h"],
     "2: 'remind' works only on an ask or menu step (it is about waiting for the customer's answer), and this is a "
     "'say' step — move it to the question or menu it is about, or use a 'wait' step to pause the flow"),
    (["- goto: main", "  timeout: {after: 1h, goto: end}"],
     "2: 'timeout' works only on an ask or menu step (it is about waiting for the customer's answer), and this is a "
     "'goto' step — move it to the question or menu it is about, or use a 'wait' step to pause the flow"),
    (["- menu:", "    text: Chọn", "    options: [{title: A, goto: end}]", "    remind: 2h"],
     "4: 'remind' goes beside 'menu:', not inside it — indent 'remind:' like 'menu:' (a key of the step)"),
    (['- ask: "Tên?"', "  save: name", "  remind: 2x"],
     "3: 'remind:' '2x' is not a duration — write it like 30m, 2h, 1d, 1h30m or 45s (also 30 phút, 2 giờ, 1 ngày)"),
    (['- ask: "Tên?"', "  save: name", "  remind: {after: 90, times: 2}"],
     "3: 'after:' 90 is not a duration (a number alone has no unit) — write it like 30m, 2h, 1d, 1h30m or 45s "
     "(also 30 phút, 2 giờ, 1 ngày)"),
    (['- ask: "Tên?"', "  save: name", "  remind: {after: 1h, times: 0}"],
     "3: 'times' must be at least 1, not 0 — change the number"),
    (['- ask: "Tên?"', "  save: name", "  timeout: {after: 1h}"],
     "3: a timeout needs 'goto: ...' — add 'goto:' to it"),
    (['- ask: "Tên?"', "  save: name", "  timeout: {after: 1h, goto: nowhere}"],
     "3: there is no step or flow called 'nowhere' — write a step id of this flow, a flow name, flow.step, end or "
     "return"),
    (["- wait: 30"],
     "1: 'wait:' 30 is not a duration (a number alone has no unit) — write it like 30m, 2h, 1d, 1h30m or 45s "
     "(also 30 phút, 2 giờ, 1 ngày)"),
    (["- wait: {until: day, at: '25:00'}", "- say: hi"],
     "1: 'at: 25:00' is not a time of day — write it like \"08:00\" or \"8h\""),
    (["- wait: {until: day, before: 1d, after: 2h}", "- say: hi"],
     "1: a wait can be 'before' or 'after' the moment, not both — keep one of them"),
    (["- wait: {before: 1d}"], "1: a wait needs 'until: ...' (a saved date to wait for), or a duration ('wait: 2h') "
                               "— add 'until:' with the variable holding the date, or write 'cancel: FLOW' to call its "
                               "waits off"),
    (["- wait: {cancel: main, after: 1d}"], "1: a wait that calls waits off ('cancel:') does not pause, so it takes "
                                            "no 'after:' — make the pause a wait step of its own"),
    (["- wait: {cancel: mian}"], "1: there is no flow called 'mian' — did you mean 'main'?"),
])
def test_each_bad_form_is_named_with_its_line(tmp_path: Path, written: list[str], expected: str) -> None:
    found = [p for p in problems(tmp_path, steps(*written)) if p.severity == "error"]
    assert [line.replace(f"{line.split(':')[0]}:", str(int(line.split(':')[0]) - 3) + ":", 1)
            for line in lines(found)] == [expected]


def test_warnings_a_wait_on_a_variable_nobody_saves_reminders_that_cannot_fit_and_the_window(tmp_path: Path) -> None:
    found = problems(tmp_path, steps(
        '- ask: "Ngày?"', "  save: day", "  remind: {after: 2h, times: 3}", "  timeout: {after: 5h, goto: end}",
        "- wait: {until: visit, before: 1d}", "- say: hi",
    ))
    assert lines(found) == [
        "4: (warning) the timeout (after 5h) comes before the reminders (every 2h, 3 times): only 2 of the 3 "
        "reminders — make the timeout longer, or remind sooner or fewer times",
        "8: (warning) this wait lasts until 'visit', but no step saves or sets it; unless the business API starts "
        "the flow with it (vars), the flow goes on at once — save it first (ask ... save: visit, expect: date), or "
        "check the name",
        "8: (warning) this step's timer may end more than 24 hours after the customer last wrote; WhatsApp then "
        "accepts only an approved template, and this flow names none, so what the bot says then is not sent — give "
        "the flow an approved template: 'opens_with: {name: ..., language: vi}' under 'main:'",
    ]
    head = "    opens_with: {name: nhac, parameters: ['{{ visit }}']}\n"
    quiet = problems(tmp_path, steps('- ask: "Ngày?"', "  save: visit", "  expect: date",
                                     "- wait: {until: visit, before: 1d}", "- say: hi", head=head))
    assert quiet == []


def test_opens_with_is_checked(tmp_path: Path) -> None:
    found = problems(tmp_path, steps("- say: hi", head="    opens_with: {language: vi, parameters: [a], "
                                                        "components: []}\n"))
    assert [p.message for p in found] == [
        "an opens_with needs 'name: ...'",
    ]
    found = problems(tmp_path, steps("- say: hi", head="    opens_with: {name: x, parameters: [a], components: []}\n"))
    assert lines(found) == ["3: give the template either 'parameters' (body texts in order) or 'components', not "
                            "both — keep one of them"]


def test_the_diagram_draws_waits_reminders_and_timeouts() -> None:
    bot, _ = load_flows(CLINIC)
    drawn = mermaid(bot)
    assert '[("wait until appointment, before 1d, at 0…")]' in drawn
    assert "ask appointment (datetime) ⏰2h×2: " in drawn
    assert '-->|"no answer in 20h"|' in drawn and '-->|"already past"|' in drawn and '-->|"then"|' in drawn
