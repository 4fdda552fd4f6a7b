"""The command line: `wabot validate` exit codes and problem lines, `wabot graph` output."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests import DEMO
from wabot.cli import main


@pytest.fixture
def flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the demo flows in an empty folder without config.yaml (the defaults apply)."""
    folder = tmp_path / "flows"
    folder.mkdir()
    for file in DEMO.glob("*.yaml"):
        shutil.copy(file, folder / file.name)
    monkeypatch.chdir(tmp_path)
    return folder


DESK_CONFIG = "admin: {token: desk-secret-token-16}\nbot: {flows: flows, env: [SHOP_API, SHOP_TOKEN]}\n"


def _edit(file: Path, old: str, new: str) -> int:
    """Replace `old` (which must be there) and return the 1-based line it was on."""
    text = file.read_text(encoding="utf-8")
    assert old in text, old
    file.write_text(text.replace(old, new, 1), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def test_clean_flows_pass(flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (flows.parent / "config.yaml").write_text(DESK_CONFIG, encoding="utf-8")
    assert main(["validate"]) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(r"OK: \d+ flows, 0 warning\(s\)\.\n", out), out


def test_a_handoff_without_a_desk_is_warned_about(flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _edit(flows / "support.yaml", "- handoff:", "- handoff:")
    assert main(["validate"]) == 0  # no config.yaml: no admin token, so no desk
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"flows/support.yaml:{line}: ") and "(warning)" in out[0]
    assert "the handoff desk is off, so nobody can answer" in out[0] and "WABOT_ADMIN_TOKEN" in out[0]
    assert re.fullmatch(r"OK: \d+ flows, 1 warning\(s\)\.", out[-1]), out[-1]


def test_each_break_is_named_with_its_line(flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = _edit(flows / "shop.yaml", "goto: order.quantity", "goto: order.quantty")
    fail = _edit(flows / "shop.yaml", "on_fail: human", "on_fail: humann")
    title = _edit(flows / "main.yaml", 'title: "Tiếng Việt"', 'title: "Tiếng Việt (ngôn ngữ mặc định)"')
    assert main(["validate", "flows"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "3 error(s), 0 warning(s)."
    problems = lines[:-1]
    assert len(problems) == 3
    assert any(p.startswith(f"flows/shop.yaml:{target}: ") and "'quantty'" in p and " — " in p for p in problems)
    assert any(p.startswith(f"flows/shop.yaml:{fail}: ") and "'humann'" in p and "'human'" in p for p in problems)
    assert any(p.startswith(f"flows/main.yaml:{title}: ") and "20" in p for p in problems)
    for p in problems:
        assert re.match(r"flows/\w+\.yaml:\d+: flow \w+, step .+?: .+ — .+", p), p


def test_a_yaml_mistake_is_named_with_its_line(flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _edit(flows / "support.yaml", 'save: order_code', 'save: "order_code')
    assert main(["validate"]) == 1
    out = capsys.readouterr().out
    found = re.search(r"^flows/support\.yaml:(\d+): .+ — .+$", out, re.M)
    assert found is not None, out
    assert abs(int(found[1]) - line) <= 2  # YAML notices an unclosed quote where the text runs on


def test_warnings_fail_only_when_strict(flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _edit(flows / "main.yaml", "      - goto: main.menu\n\n  language:",
                 '      - goto: main.menu\n      - say: "Không bao giờ tới đây"\n\n  language:') + 1
    (flows.parent / "config.yaml").write_text(DESK_CONFIG, encoding="utf-8")
    assert main(["validate"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"flows/main.yaml:{line}: ") and "(warning)" in out[0]
    assert re.fullmatch(r"OK: \d+ flows, 1 warning\(s\)\.", out[-1]), out[-1]
    assert main(["validate", "--strict"]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "0 error(s), 1 warning(s)."


def test_missing_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "nowhere"]) == 1
    assert "nowhere does not exist" in capsys.readouterr().out


def test_missing_config_named_explicitly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["--config", "nope.yaml", "validate"]) == 2
    assert "nope.yaml does not exist" in capsys.readouterr().err


def test_graph_prints_mermaid_or_dot(flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph"]) == 0
    assert capsys.readouterr().out.startswith("flowchart TD\n")
    assert main(["graph", "track", "--format", "dot"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("digraph wabot {") and "flow track" in out and "flow shop" not in out
    assert main(["graph", "nosuch"]) == 1
    assert "no flow named 'nosuch'" in capsys.readouterr().err


def test_graph_refuses_broken_flows(flows: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(flows / "shop.yaml", "goto: order.quantity", "goto: order.quantty")
    assert main(["graph"]) == 1
    assert "quantty" in capsys.readouterr().err
