"""Staff accounts: passwords hashed with scrypt (memory-hard, in the standard library), and `wabot user add`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from pathlib import Path
from typing import Literal, get_args

from wabot.db.base import open_database

__all__ = ["ROLES", "Role", "add_user", "hash_password", "problem", "verify_password"]

Role = Literal["admin", "agent"]
ROLES: tuple[Role, ...] = get_args(Role)

# scrypt's cost: 16 MiB of memory and ~50 ms a guess on one core (OWASP's minimum is N=2^17 with r=8 for
# bcrypt-equivalent strength; 2^14 keeps sign-in quick on a small shop server, and the lock-out bounds guessing)
_N, _R, _P = 2**14, 8, 1
MIN_PASSWORD = 8


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=64 * 1024 * 1024, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        given = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                               maxmem=64 * 1024 * 1024, dklen=32)
    except ValueError:
        return False
    return hmac.compare_digest(given, base64.b64decode(digest))


# checked against when the name is unknown, so that a wrong name takes as long as a wrong password
DUMMY = f"scrypt${_N}${_R}${_P}${'A' * 22}==${'A' * 43}="


async def add_user(database: Path | str, name: str, password: str, role: Role) -> bool:
    """Create the account (or reset its password and role) in the bot's database (an SQLite file or a
    postgresql:// URL); True when it is new."""
    store = await open_database(database)
    try:
        return await store.console.add_user(name, role, hash_password(password), now=time.time())
    finally:
        await store.close()


def problem(name: str, password: str) -> str | None:
    """What is wrong with a new account's name or password, in plain words; None when nothing is."""
    if not name or len(name) > 64 or not all(c.isalnum() or c in "._-@" for c in name):
        return "The name must be 1 to 64 letters, digits or . _ - @ (no spaces), like lan or lan.nguyen."
    if len(password) < MIN_PASSWORD:
        return f"The password must have at least {MIN_PASSWORD} characters."
    return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()

