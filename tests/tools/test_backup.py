"""`wabot backup PATH` while the server runs makes a file that `wabot history` reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tests import DEMO
from tests.apptools import envelope, post, settle, text
from wabot.config import load_settings
from wabot.flows.load import load_bot_or_raise
from wabot.server.app import create_app


def wabot(folder: Path, *args: str, db: Path) -> subprocess.CompletedProcess[str]:
    config = folder / "config.yaml"
    config.write_text(f"database: {{path: '{db}'}}\nbot: {{flows: '{DEMO}'}}\n", encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "wabot", "--config", str(config), *args], cwd=folder,
                          capture_output=True, text=True, timeout=60)


async def test_backup_of_a_running_server_is_readable_by_history(aiohttp_client: Any, tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    config = tmp_path / "config.yaml"
    config.write_text(f"database: {{path: '{db}'}}\nbot: {{flows: '{DEMO}'}}\nadmin: {{port: 0}}\n", encoding="utf-8")
    settings = load_settings(config, {})  # the admin listener on a free port, never 8081 (another may hold it)
    b = settings.bot
    bot = load_bot_or_raise([b.flows], start=b.start_flow, default_language=b.default_language,
                            session_timeout=b.session_timeout, timezone=b.timezone, env={})
    client = await aiohttp_client(create_app(settings, bot))
    await post(client, envelope(text("84912345678", "hi")), secret=None)
    await settle(client)
    copy = tmp_path / "backups" / "copy.db"
    copy.parent.mkdir()
    done = wabot(tmp_path, "backup", str(copy), db=db)  # the server still holds the database open
    assert done.returncode == 0, done.stderr
    assert f"copied to {copy}" in done.stdout
    read = wabot(tmp_path, "history", "+84 912 345 678", db=copy)
    assert read.returncode == 0 and "customer  hi" in read.stdout, read.stdout + read.stderr
    again = wabot(tmp_path, "backup", str(copy), db=db)
    assert again.returncode == 1 and "never overwrites" in again.stderr and "Traceback" not in again.stderr
    missing = wabot(tmp_path, "backup", str(tmp_path / "x.db"), db=tmp_path / "none.db")
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_backup_of_postgresql_points_to_pg_dump(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"database: {{url: 'postgresql://wabot@127.0.0.1:1/wabot'}}\nbot: {{flows: '{DEMO}'}}\n",
                      encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "wabot", "--config", str(config), "backup", str(tmp_path / "x")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "pg_dump" in done.stderr and "Traceback" not in done.stderr
