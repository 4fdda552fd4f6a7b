"""`wabot test`: conversation tests in YAML, run on the real engine with stand-in http answers."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests import DEMO, FIXTURES
from wabot.cli import main
from wabot.tools.scenarios import read_cases


@pytest.fixture
def flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the demo flows (with their tests) in a folder without config.yaml."""
    folder = tmp_path / "flows"
    shutil.copytree(DEMO, folder)
    monkeypatch.chdir(tmp_path)
    return folder


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _line_of(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, start=1) if needle in line)


def test_every_demo_test_passes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # no config.yaml: the defaults, with the flows named below
    assert main(["test", str(DEMO / "tests"), "--flows", str(DEMO)]) == 0
    out = capsys.readouterr().out
    assert "✗" not in out
    total = sum(len(read_cases(f)[0]) for f in sorted((DEMO / "tests").glob("*.yaml")))
    assert total >= 30
    assert out.splitlines()[-1] == f"{total} passed, 0 failed."


def test_default_path_is_the_tests_folder_next_to_the_flows(flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test"]) == 0
    assert "flows/tests/support.yaml: tra cứu đơn hàng" in capsys.readouterr().out


def test_a_changed_reply_fails_with_expected_and_actual(flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main_yaml = flows / "main.yaml"
    text = main_yaml.read_text(encoding="utf-8")
    main_yaml.write_text(text.replace('"Bạn cần gì hôm nay?"', '"Hôm nay bạn cần gì?"'), encoding="utf-8")
    assert main(["test", "flows/tests/main.yaml"]) == 1
    out = capsys.readouterr().out
    first = _line_of(flows / "tests" / "main.yaml", 'text: ["Xin chào Lan! 👋')
    assert f'✗ flows/tests/main.yaml:{first}: test "lời chào và menu chính": step 1: expected the text:' in out
    assert "  | Xin chào Lan! 👋 Chào mừng đến với Trà Sen.\n  | Bạn cần gì hôm nay?\nbut the bot answered:\n" in out
    assert "  | Hôm nay bạn cần gì?\n" in out
    assert re.search(r"^\d+ passed, [1-9]\d* failed\.$", out, re.M)


TESTS = """\
tests:
  - name: passes
    contact: {name: Lan}
    steps:
      - send: "hi"
        expect: {contains: "Xin chào Lan", list: ["Xem sản phẩm", "Đặt hàng", "Tra cứu đơn hàng",
                 "Cửa hàng ở đâu?", "Hỏi đáp", "Gặp nhân viên", "English / Tiếng Việt"]}
      - tap: 2
        expect: {at: order}
      - send: {image: "media-1", caption: "cái này"}
        expect: {contains: "Xin lỗi, mình chưa hiểu"}
  - name: wrong buttons
    steps:
      - send: "hi"
      - tap: "Tiếng Anh"
  - name: wrong saved value
    steps:
      - send: "hi"
      - tap: "Đặt hàng"
      - tap: "Trà sen"
        expect:
          at: order.quantity
          saved: {product: "Trà đào"}
  - name: request without a stand-in
    steps:
      - send: "hi"
      - tap: "Tra cứu đơn hàng"
      - send: "DH00001"
  - name: sends a location
    steps:
      - send: "hi"
      - tap: "Tra cứu đơn hàng"
      - send: {location: [10.77, 106.70]}
        expect: {text: "Mã đơn có dạng DH và 5 chữ số, bạn thử lại nhé.", buttons: ["A"]}
"""


def test_failures_name_the_step_and_what_differs(flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = _write(flows.parent / "cases.yaml", TESTS)
    assert main(["test", "cases.yaml"]) == 1
    out = capsys.readouterr().out
    assert "✓ cases.yaml: passes" in out
    tap = _line_of(file, 'tap: "Tiếng Anh"')
    assert (f'✗ cases.yaml:{tap}: test "wrong buttons": step 2: cannot tap "Tiếng Anh": the bot offered '
            '"Xem sản phẩm", "Đặt hàng"') in out
    saved = _line_of(file, 'saved: {product: "Trà đào"}')
    assert (f"✗ cases.yaml:{saved}: test \"wrong saved value\": step 3: expected the variable product = 'Trà đào', "
            "but it is 'Trà sen'") in out
    request = _line_of(file, 'send: "DH00001"')
    assert (f'✗ cases.yaml:{request}: test "request without a stand-in": step 3: the flow called '
            "GET http://127.0.0.1:8099/orders/DH00001, but the test has no stand-in answer for it") in out
    buttons = _line_of(file, 'buttons: ["A"]')
    assert f'✗ cases.yaml:{buttons}: test "sends a location": step 3: expected buttons: A\n' in out
    assert "          actual: no buttons\n" in out
    assert out.splitlines()[-1] == "1 passed, 4 failed."


def test_a_malformed_test_file_is_reported_with_lines(flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = _write(flows.parent / "bad.yaml", """\
tests:
  - name: two actions
    steps:
      - send: "hi"
        tap: "Đặt hàng"
      - wait: "a while"
      - send: "hi"
        expect: {contain: "x"}
""")
    assert main(["test", "bad.yaml"]) == 1
    out = capsys.readouterr().out
    send = _line_of(file, 'send: "hi"')
    assert f"bad.yaml:{send}: a step needs exactly one of send, tap, resume, wait or start" in out
    assert f"bad.yaml:{_line_of(file, 'wait:')}: wait: 'a while' is not a duration — write it like 90s" in out
    assert f"bad.yaml:{_line_of(file, 'contain:')}: unknown check 'contain' in expect" in out
    assert "✓" not in out and "bad.yaml: two actions: not run — fix the problems in the file first" in out


def test_a_start_is_refused_as_the_business_api_would_refuse_it(flows: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    _write(flows.parent / "starts.yaml", """\
tests:
  - name: no carrier
    steps:
      - start: {flow: order_shipped, vars: {code: A1}}
  - name: no such flow
    steps:
      - start: order_shiped
""")
    assert main(["test", "starts.yaml"]) == 1
    out = capsys.readouterr().out
    assert ("step 1: the business API would refuse this start: the flow 'order_shipped' needs carrier in vars (its "
            "inputs)") in out
    assert "step 1: there is no flow named 'order_shiped' to start; the flows are: " in out
    bad = _write(flows.parent / "bad.yaml",
                 "tests:\n  - name: not a flow\n    steps:\n      - start: {vars: {code: A1}}\n")
    assert main(["test", "bad.yaml"]) == 1
    assert f"bad.yaml:{_line_of(bad, 'start:')}: start: takes a flow's name, or {{flow: NAME, vars:" in \
        capsys.readouterr().out


def test_no_test_files(flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (flows.parent / "empty").mkdir()
    assert main(["test", "empty"]) == 1
    assert "no test files in empty" in capsys.readouterr().err


def test_now_fixes_the_clock(flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(flows / "clock.yaml", """\
flows:
  clock:
    steps:
      - say: "Hôm nay là {{ now | date }}, {{ now | time }}."
triggers:
  - words: ["giờ"]
    goto: clock
""")
    _write(flows.parent / "clock_test.yaml", """\
tests:
  - name: the clock
    now: "2026-11-25 09:30"
    steps:
      - send: "giờ"
        expect: {text: "Hôm nay là 25/11/2026, 09:30."}
      - wait: 2h
      - send: "giờ"
        expect: {text: "Hôm nay là 25/11/2026, 11:30."}
""")
    assert main(["test", "clock_test.yaml"]) == 0, capsys.readouterr().out


def test_a_reply_the_server_would_not_send_fails_the_test(flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(flows / "link.yaml", """\
flows:
  link:
    steps:
      - set: {page: "dat-ban"}
      - say:
          text: "Đặt lịch ở đây:"
          link: {button: "Đặt lịch", url: "{{ page }}"}
triggers:
  - words: ["lịch"]
    goto: link
""")
    _write(flows.parent / "link_test.yaml", """\
tests:
  - name: the link
    steps:
      - send: "lịch"
        expect: {contains: "Đặt lịch ở đây:"}
""")
    assert main(["test", "link_test.yaml"]) == 1
    out = capsys.readouterr().out
    assert ("the server would not send a reply, so the customer would not see it: "
            "the link must start with https://") in out


def test_a_top_level_now_is_the_clock_of_every_test_in_the_file(
    flows: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(flows / "clock.yaml", """\
flows:
  clock:
    steps:
      - say: "Hôm nay là {{ now | date }}, {{ now | weekday }}."
triggers:
  - words: ["giờ"]
    goto: clock
""")
    _write(flows.parent / "clock_test.yaml", """\
now: "2026-12-25 09:30"
tests:
  - name: the file's clock
    steps:
      - send: "giờ"
        expect: {text: "Hôm nay là 25/12/2026, Thứ Sáu."}
  - name: its own clock
    now: "2026-12-20 09:30"
    steps:
      - send: "giờ"
        expect: {text: "Hôm nay là 20/12/2026, Chủ nhật."}
""")
    assert main(["test", "clock_test.yaml"]) == 0, capsys.readouterr().out


def test_the_dental_clinic_of_issue_11_works_as_a_new_user_wrote_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["test", str(FIXTURES / "dental_tests"), "--flows", str(FIXTURES / "dental")]) == 0, \
        capsys.readouterr().out


def test_wait_in_a_conversation_test_fires_the_flows_timers_in_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reminders at most N times, then the timeout; a wait until the day before at 8:00 that opens with a template."""
    monkeypatch.chdir(tmp_path)
    assert main(["test", str(FIXTURES / "reminders_tests"), "--flows", str(FIXTURES / "reminders")]) == 0, \
        capsys.readouterr().out
    broken = tmp_path / "late.yaml"  # the second reminder is 2 hours after the first, not 1
    broken.write_text((FIXTURES / "reminders_tests" / "clinic.yaml").read_text("utf-8").replace(
        "      - wait: 1h\n        expect: {silent: true}\n      - wait: 1h\n",
        "      - wait: 1h\n        expect: {silent: true}\n      - wait: 30m\n", 1), "utf-8")
    assert main(["test", str(broken), "--flows", str(FIXTURES / "reminders")]) == 1
    assert "step 4: expected the text:" in capsys.readouterr().out
