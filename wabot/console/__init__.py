"""The web console for the people behind the bot, served on the admin listener at /console/.

`setup(admin_app)` is the extension `wabot.server.app.create_app(admin=[...])` takes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from wabot.console import auth, authoring, customers, inbox, live, media, numbers, recorder
from wabot.console.pages import DB, PREFIX, see_other
from wabot.server.keys import STORE

__all__ = ["setup"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"


@web.middleware
async def _headers(request: web.Request, handler: auth.Handler) -> web.StreamResponse:
    """No framing by other sites, no scripts but ours (customers' words are data, never code)."""
    response = await handler(request)
    if request.path.startswith(PREFIX):
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data: https:; style-src 'self' 'unsafe-inline'; "
            "frame-ancestors 'none'; form-action 'self'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.path.startswith(f"{PREFIX}/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
    return response


def setup(app: web.Application) -> None:
    """Add the console's pages, guards and recorder to the admin application."""
    app.middlewares.append(_headers)
    app.middlewares.append(auth.guard)
    app.router.add_get(PREFIX, _to_inbox)
    app.router.add_get(f"{PREFIX}/login", auth.sign_in_page)
    app.router.add_post(f"{PREFIX}/login", auth.sign_in)
    app.router.add_post(f"{PREFIX}/logout", auth.sign_out)
    app.router.add_get(f"{PREFIX}/lang/{{lang}}", _switch)
    app.router.add_static(f"{PREFIX}/static", STATIC)
    inbox.add_routes(app)
    customers.add_routes(app)
    authoring.add_routes(app)
    numbers.add_routes(app)
    live.add_routes(app)
    media.add_routes(app)
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(recorder.recording)


async def _database(app: web.Application) -> AsyncIterator[None]:
    """The server's database, SQLite or PostgreSQL (db/areas.py ConsoleData)."""
    app[DB] = app[STORE]
    yield


async def _to_inbox(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther(f"{PREFIX}/")


async def _switch(request: web.Request) -> web.StreamResponse:
    """Vietnamese or English, remembered in a cookie; back to the page the switch was pressed on."""
    chosen = request.match_info["lang"] if request.match_info["lang"] in ("vi", "en") else "vi"
    back = request.query.get("back", f"{PREFIX}/")
    response = see_other(back if back.startswith(PREFIX + "/") else f"{PREFIX}/")
    response.set_cookie("lang", chosen, path=PREFIX, max_age=365 * 86400, samesite="Strict")
    return response
