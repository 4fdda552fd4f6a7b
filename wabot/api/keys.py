"""API keys: made once by `wabot apikey create NAME`, shown once, kept only as a SHA-256 hash.

A key is 32 random bytes, so a plain hash is as good as a slow one (no dictionary to try) and lets each request
be checked with one indexed lookup.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from wabot.api.problems import Problem
from wabot.db.base import Database
from wabot.server.keys import STORE

log = logging.getLogger(__name__)

__all__ = ["API_KEY", "PREFIX", "digest", "new_key", "require_key", "store"]

PREFIX = "wbk_"  # so a leaked key is recognisable in logs and secret scanners
API_KEY = web.RequestKey("api_key", str)  # request[API_KEY]: the name of the key that made the request

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def store(request: web.Request) -> Database:
    """The database (SQLite or PostgreSQL)."""
    return request.app[STORE]


async def require_key(request: web.Request) -> str:
    """The name of the live key in `Authorization: Bearer <key>`; Problem 401 when there is none."""
    given = request.headers.get("Authorization", "")
    key = given[7:].strip() if given.startswith("Bearer ") else ""
    name = await store(request).api.key_name(digest(key)) if key else None
    if name is None:
        log.warning("business API refused a request without a valid key (from %s)", request.remote)
        raise Problem(401, "unauthorized", "This needs an API key: send 'Authorization: Bearer <key>' with a key "
                      "made by `wabot apikey create NAME`.")
    return name
