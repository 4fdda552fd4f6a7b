"""Backups of the SQLite database through SQLite's online backup API: consistent while the server writes.

Copying wabot.db with `cp` while the server runs can miss what is still in wabot.db-wal, or catch
a page half written; the backup API copies one consistent snapshot, a few pages at a time.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

log = logging.getLogger(__name__)

PAGES_PER_STEP = 1024  # 4 MiB a step at SQLite's default page size; other connections may write between steps


def copy(source: sqlite3.Connection, target: Path) -> None:
    """Write a consistent copy of `source` to `target` (a new file, put in place only when complete)."""
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    dest = sqlite3.connect(partial)
    try:
        source.backup(dest, pages=PAGES_PER_STEP)
        dest.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
    finally:
        dest.close()
    os.replace(partial, target)


def backup(database: Path, target: Path) -> int:
    """`wabot backup`: copy `database` to `target`, which must not exist; the copy's size in bytes."""
    if not database.exists():
        raise FileNotFoundError(f"the database {database} does not exist")
    if target.exists():
        raise FileExistsError(f"{target} already exists; choose a new name (a backup never overwrites a file)")
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        copy(source, target)
    finally:
        source.close()
    return target.stat().st_size


def before_migration(conn: sqlite3.Connection, path: str, version: int) -> Path:
    """The copy taken before migrating the database from `version`: `<database>.v<version>.bak`."""
    target = Path(f"{path}.v{version}.bak")
    if not target.exists():  # an earlier attempt's copy is the one from before any change
        copy(conn, target)
        log.warning("database %s is at version %d; a copy was saved as %s before upgrading it", path, version, target)
    return target
