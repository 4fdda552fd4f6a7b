"""/api/v1/campaigns: one template to many customers, its report, pause, resume and cancel."""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web

from wabot.api import compose
from wabot.api.keys import API_KEY, store
from wabot.api.problems import Problem, dumps
from wabot.server.keys import DISPATCHER
from wabot.whatsapp import numbers

log = logging.getLogger(__name__)

__all__ = ["add_routes"]

MAX_RECIPIENTS = 100_000  # in one request; the request body limit is the admin app's (1 MiB by default)
ACTIONS = {"pause": "paused", "resume": "running", "cancel": "cancelled"}


def add_routes(app: web.Application, base: str) -> None:
    app.router.add_post(f"{base}/campaigns", create)
    app.router.add_get(f"{base}/campaigns/{{id}}", report)
    app.router.add_post(f"{base}/campaigns/{{id}}/{{action:pause|resume|cancel}}", switch)


async def create(request: web.Request) -> web.Response:
    """{"template": {"name", "language"}, "recipients": [{"to", "parameters": [...]}], "name"?} -> 202 {"id"}."""
    try:
        data = await request.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise Problem(400, "bad_request", 'The body must be a JSON object with "template" and "recipients".')
    template = compose.template(data.get("template"), language=request.app[DISPATCHER].bot.default_language)
    if template.components:
        raise Problem(400, "bad_request", "A campaign's template takes each recipient's own \"parameters\"; "
                      "leave them out of \"template\".")
    listed = data.get("recipients")
    if not isinstance(listed, list) or not listed or len(listed) > MAX_RECIPIENTS:
        raise Problem(400, "bad_request", f'"recipients" must be a list of 1 to {MAX_RECIPIENTS:,} objects like '
                      '{"to": "84912345678", "parameters": ["Lan", "20%"]}.')
    recipients: list[tuple[str, list[str]]] = []
    invalid: list[tuple[int, str]] = []
    for n, item in enumerate(listed, start=1):
        to = item.get("to") if isinstance(item, dict) else None
        params: Any = item.get("parameters", []) if isinstance(item, dict) else None
        number = numbers.normalise(to) if isinstance(to, str) else None
        if number is None or not isinstance(params, list):
            invalid.append((n, "invalid number" if number is None else "invalid parameters"))
            continue
        recipients.append((number, [str(p) for p in params]))
    name = data.get("name") if isinstance(data.get("name"), str) else ""
    cid, duplicates = await store(request).campaigns.add(
        name=name or template.name, template=template.name, language=template.language, recipients=recipients,
        invalid=invalid, now=time.time())
    log.info("business API (%s) created campaign %d: %d recipients", request[API_KEY], cid, len(recipients))
    return web.json_response({"id": str(cid), "status": "running", "recipients": len(recipients) - duplicates,
                              "skipped": len(invalid) + duplicates}, status=202, dumps=dumps)


async def report(request: web.Request) -> web.Response:
    """Sent, delivered, read, failed by Meta's code, skipped by reason, replies received."""
    found = await store(request).campaigns.report(_id(request))
    if found is None:
        raise Problem(404, "not_found", f"There is no campaign {request.match_info['id']}.")
    return web.json_response({**found, "id": str(found["id"])}, dumps=dumps)


async def switch(request: web.Request) -> web.Response:
    status = ACTIONS[request.match_info["action"]]
    before = await store(request).campaigns.set_status(_id(request), status, now=time.time())
    if before is None:
        raise Problem(404, "not_found", f"There is no campaign {request.match_info['id']}.")
    if before not in ("running", "paused"):
        raise Problem(409, "campaign_finished", f"Campaign {request.match_info['id']} is {before}; it can no "
                      "longer be paused, resumed or cancelled.")
    return web.json_response({"id": request.match_info["id"], "status": status}, dumps=dumps)


def _id(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        return -1
