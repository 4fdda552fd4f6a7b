"""`wabot apikey create NAME | list | revoke NAME`: the business API's keys, straight in the database.

A new key is printed once, alone on the last line (so `wabot apikey create erp | tail -1` captures it);
only its hash is kept, so a lost key cannot be shown again: revoke it and make another.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from datetime import datetime
from typing import TextIO

from wabot.api.keys import digest, new_key
from wabot.config import Settings
from wabot.db import pgsql
from wabot.db.base import DB_ERRORS, open_database
from wabot.errors import DatabaseError

__all__ = ["apikey"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def apikey(settings: Settings, action: str, name: str | None, *, out: TextIO = sys.stdout) -> int:
    """0 when done, 1 when refused (a taken or unknown name), 2 when the command is wrong or the database fails."""
    if action != "list" and (not name or not _NAME.fullmatch(name)):
        print(f"wabot: 'apikey {action}' needs a name for the key: letters, digits, '.', '_' or '-', like erp or "
              "shop-website.", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_apikey(settings, action, name or "", out))
    except DatabaseError as exc:
        print(f"wabot: {exc}", file=sys.stderr)
        return 2
    except DB_ERRORS as exc:
        print(f"wabot: the database {pgsql.shown(settings.database_target)} cannot be used: {exc}.", file=sys.stderr)
        return 2


async def _apikey(settings: Settings, action: str, name: str, out: TextIO) -> int:
    store = await open_database(settings.database_target, synchronous=settings.synchronous)
    try:
        if action == "create":
            key = new_key()
            if not await store.api.add_key(name, digest(key), now=time.time()):
                print(f"wabot: there is already a key named {name!r}; choose another name, or revoke it first "
                      f"(wabot apikey revoke {name}).", file=sys.stderr)
                return 1
            print(f"API key {name!r} created. It is shown only this once: keep it in the shop system's secrets.\n"
                  "Send it as the header 'Authorization: Bearer <key>'.", file=out)
            print(key, file=out)
            return 0
        if action == "revoke":
            if not await store.api.revoke_key(name, now=time.time()):
                print(f"wabot: there is no live key named {name!r} (wabot apikey list shows them).", file=sys.stderr)
                return 1
            print(f"API key {name!r} revoked: requests with it are refused from now on.", file=out)
            return 0
        listed = await store.api.keys()
        if not listed:
            print("No API keys yet; make one with: wabot apikey create NAME", file=out)
        for key_name, created, revoked in listed:
            state = f"revoked {_day(revoked)}" if revoked else "live"
            print(f"{key_name}\tcreated {_day(created)}\t{state}", file=out)
        return 0
    finally:
        await store.close()


def _day(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M")
