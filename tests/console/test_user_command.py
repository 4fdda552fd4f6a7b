"""`wabot user add NAME`: the password from standard input, plain-words refusals, a real subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests import DEMO, ROOT
from wabot.db import sql, staff


def run(tmp_path: Path, *args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.yaml"
    config.write_text(f"database: {{path: '{tmp_path / 'wabot.db'}'}}\nbot: {{flows: '{DEMO}'}}\n", encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "wabot", "--config", str(config), "user", *args], cwd=ROOT,
                          input=stdin, capture_output=True, text=True, timeout=60, check=False)


def test_user_add_reads_one_line_and_stores_only_a_hash(tmp_path: Path) -> None:
    done = run(tmp_path, "add", "lan", stdin="mật-khẩu-dài\nignored\n")
    assert done.returncode == 0, done.stderr
    assert "Added agent account 'lan'" in done.stdout and "/console/" in done.stdout
    again = run(tmp_path, "add", "lan", "--role", "admin", stdin="mật-khẩu-mới\n")
    assert again.returncode == 0 and "Updated admin account" in again.stdout
    conn = sql.connect(str(tmp_path / "wabot.db"))
    account = staff.user(conn, "lan")
    conn.close()
    assert account is not None and account[1] == "admin" and "mật" not in account[2]


def test_user_add_refuses_a_short_password_or_an_odd_name_in_plain_words(tmp_path: Path) -> None:
    short = run(tmp_path, "add", "lan", stdin="short\n")
    assert short.returncode == 1 and "at least 8 characters" in short.stderr and "Traceback" not in short.stderr
    odd = run(tmp_path, "add", "lan nguyen", stdin="long-enough\n")
    assert odd.returncode == 1 and "no spaces" in odd.stderr
