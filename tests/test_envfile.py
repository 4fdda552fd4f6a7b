import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import ROOT
from wabot import envfile
from wabot.errors import ConfigError


def test_parse_the_common_forms() -> None:
    text = (
        "# a comment\n\nWHATSAPP_TOKEN=EAAG123\nexport WABOT_PORT = 9000\nA='x # not a comment'\n"
        'B="two words"\nC=plain # a comment\nD=\n'
    )
    assert envfile.parse(text, file=".env") == {
        "WHATSAPP_TOKEN": "EAAG123", "WABOT_PORT": "9000", "A": "x # not a comment", "B": "two words",
        "C": "plain", "D": "",
    }


@pytest.mark.parametrize(("text", "words"), [("just words\n", "Line 1 of .env is not KEY=value"),
                                              ("A=1\nB='open\n", "Line 2 of .env opens a ' quote")])
def test_bad_lines_are_named(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        envfile.parse(text, file=".env")


def test_load_keeps_what_the_environment_already_has(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("A=from-file\nB=from-file\n", encoding="utf-8")
    env = {"A": "from-env"}
    assert envfile.load(tmp_path / ".env", env) == ["B"]
    assert env == {"A": "from-env", "B": "from-file"}
    assert envfile.load(tmp_path / "missing.env", env) == []


def test_wabot_reads_the_env_file_beside_its_config(tmp_path: Path) -> None:
    """A real `python -m wabot`: a port from .env reaches the settings, a broken .env is named."""
    (tmp_path / "config.yaml").write_text("server: {port: '${WABOT_PORT}'}\nbot: {flows: '%s'}\n"
                                          "whatsapp: {verify_token: '${WHATSAPP_VERIFY_TOKEN}'}\n"
                                          % (ROOT / "flows"), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WABOT_", "WHATSAPP_"))}
    (tmp_path / ".env").write_text("WABOT_PORT=1\nWHATSAPP_VERIFY_TOKEN=v\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "wabot", "doctor"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert "settings read from config.yaml" in done.stdout, done.stdout + done.stderr
    assert "port 1" in done.stdout
    (tmp_path / ".env").write_text("WABOT_PORT 1\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "wabot", "doctor"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Line 1 of .env is not KEY=value" in done.stderr
    assert "Traceback" not in done.stderr
