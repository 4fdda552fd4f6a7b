"""What the console's handlers share: the signed-in person, the page renderer, the language, answers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from wabot.console.i18n import Lang, words
from wabot.db.base import Database
from wabot.server.keys import SETTINGS

__all__ = ["DB", "PREFIX", "STAFF", "Staff", "error", "lang", "refusal", "render", "see_other", "staff", "when"]

PREFIX = "/console"

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("wabot.console", "templates"),
    autoescape=True,  # every value is escaped: a customer named <script> is shown, never run
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)


@dataclass(frozen=True, slots=True)
class Staff:
    """The person signed in to this request."""

    name: str
    role: str
    csrf: str
    token: str  # the session's token hash


STAFF = web.RequestKey("staff", Staff)
DB = web.AppKey("console_db", Database)  # the database (SQLite or PostgreSQL); its own data is `.console`


def staff(request: web.Request) -> Staff:
    return request[STAFF]


def lang(request: web.Request) -> Lang:
    chosen = request.cookies.get("lang", "vi")
    return "en" if chosen == "en" else "vi"


def when(request: web.Request, at: float | None) -> str:
    """A moment as the staff read it: the bot's time zone, to the minute."""
    if at is None:
        return ""
    return datetime.fromtimestamp(at, ZoneInfo(request.app[SETTINGS].bot.timezone)).strftime("%Y-%m-%d %H:%M")


def render(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    """A page (or a fragment) of the console, in the person's language."""
    chosen = lang(request)
    who = request.get(STAFF)
    context.setdefault("page", "")
    html = _env.get_template(template).render(
        t=words(chosen), lang=chosen, me=who, prefix=PREFIX, path=request.path_qs,
        when=lambda at: when(request, at), **context
    )
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def error(request: web.Request, status: int, key: str, **fill: str) -> web.Response:
    """A refusal in plain words: a small page for a browser, JSON for a script."""
    return refusal(request, status, words(lang(request))[key].format(**fill))


def refusal(request: web.Request, status: int, text: str) -> web.Response:
    """A refusal whose sentence comes from elsewhere (WhatsApp's limits, the flows)."""
    if "application/json" in request.headers.get("Accept", "") or request.path.endswith(".json"):
        return web.Response(text=json.dumps({"error": text}, ensure_ascii=False), status=status,
                            content_type="application/json")
    return render(request, "message.html", status=status, message=text)


def see_other(location: str) -> web.Response:
    """Go to `location` after a form (303: the browser follows with a GET)."""
    return web.Response(status=303, headers={"Location": location})
