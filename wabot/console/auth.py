"""Sign-in, sessions and the guards every console request passes: an account must exist, a live session,
the same origin, and the session's CSRF token on every POST."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from aiohttp import web

from wabot.console import accounts
from wabot.console.pages import DB, PREFIX, STAFF, Staff, error, render, see_other
from wabot.server.keys import SETTINGS

log = logging.getLogger(__name__)

__all__ = ["COOKIE", "guard", "sign_in", "sign_in_page", "sign_out"]

COOKIE = "wabot_session"
LOCK_AFTER = 5  # wrong passwords in a row for one name...
LOCK_SECONDS = 15 * 60.0  # ...lock that name this long after the last one
OPEN = (f"{PREFIX}/login", f"{PREFIX}/static/")  # reachable without a session

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _same_origin(request: web.Request) -> bool:
    """A browser names the page a POST came from; it must be this console (the scheme may be a proxy's)."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    host = request.headers.get("X-Forwarded-Host", request.host)
    return origin.split("://", 1)[-1] == host


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(PREFIX):
        return await handler(request)
    if request.method not in ("GET", "HEAD") and not _same_origin(request):
        log.warning("console refused a %s from another origin (%s)", request.method, request.headers.get("Origin"))
        return error(request, 403, "origin")
    if request.path.startswith(f"{PREFIX}/static/"):
        return await handler(request)
    store = request.app[DB]
    if await store.console.count_users() == 0:
        return error(request, 503, "no_account")
    if request.path == f"{PREFIX}/login":
        return await handler(request)
    token = request.cookies.get(COOKIE, "")
    found = await store.console.session(_hash(token), now=time.time()) if token else None
    if found is None:
        if request.method == "GET" and "text/event-stream" not in request.headers.get("Accept", ""):
            why = "&expired=1" if token else ""
            raise web.HTTPSeeOther(f"{PREFIX}/login?next={quote(request.path_qs)}{why}")
        return error(request, 401, "expired")
    name, role, csrf = found
    request[STAFF] = Staff(name, role, csrf, _hash(token))
    if request.method == "POST":
        form = await request.post() if request.content_type != "application/json" else {}
        given = request.headers.get("X-CSRF-Token") or str(form.get("csrf", ""))
        if not secrets.compare_digest(given.encode(), csrf.encode()):
            log.warning("console refused a POST without the right CSRF token from %s", name)
            return error(request, 403, "csrf")
    response = await handler(request)
    return response


async def sign_in_page(request: web.Request) -> web.Response:
    return render(request, "login.html", failed=None, expired="expired" in request.query,
                  next=_next(request.query.get("next", "")), name="")


async def sign_in(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
    target = _next(str(form.get("next", "")))
    store, now = request.app[DB], time.time()
    count, latest = await store.console.failures(name, since=now - LOCK_SECONDS)
    if count >= LOCK_AFTER and latest is not None:
        minutes = max(1, round((latest + LOCK_SECONDS - now) / 60))
        log.warning("console sign-in refused: %r is locked after %d wrong passwords", name, count)
        return render(request, "login.html", status=429, failed="locked", minutes=str(minutes), expired=False,
                      next=target, name=name)
    account = await store.console.user(name)
    if not accounts.verify_password(password, account[2] if account else accounts.DUMMY) or account is None:
        await store.console.note_failure(name, now=now)
        log.warning("console sign-in failed for %r from %s", name, request.remote)
        return render(request, "login.html", status=401, failed="wrong", minutes="", expired=False,
                      next=target, name=name)
    await store.console.forget_failures(name)
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    hours = request.app[SETTINGS].console_session_hours
    await store.console.new_session(_hash(token), name, csrf, now=now, expires=now + hours * 3600)
    log.info("console: %s signed in", name)
    response = see_other(target)
    secure = request.secure or request.headers.get("X-Forwarded-Proto", "") == "https"
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=secure, path=PREFIX,
                        max_age=int(hours * 3600))
    return response


async def sign_out(request: web.Request) -> web.StreamResponse:
    await request.app[DB].console.drop_session(request[STAFF].token)
    response = see_other(f"{PREFIX}/login")
    response.del_cookie(COOKIE, path=PREFIX)
    return response


def _next(target: str) -> str:
    """Where to go after signing in: a console page only (never another site)."""
    return target if target.startswith(PREFIX + "/") and not target.startswith("//") else f"{PREFIX}/"
