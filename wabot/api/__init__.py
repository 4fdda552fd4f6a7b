"""The business API: the shop's systems send messages, start flows and read statuses under /api/v1.

Served on the admin listener (server/adminsite.py), never on the public webhook port. `setup` is the
extension `create_app(admin=[...])` takes. Every path but the OpenAPI description needs an API key.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from importlib import resources

from aiohttp import web

from wabot.api import keys, routes
from wabot.api.problems import Problem, answer, dumps

log = logging.getLogger(__name__)

__all__ = ["OPENAPI", "openapi", "setup"]

OPENAPI = "openapi.json"  # shipped in this package; served at /api/v1/openapi.json

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def setup(app: web.Application) -> None:
    """Add the business API to the admin application."""
    app.middlewares.append(_guard)
    app.router.add_get(f"{routes.BASE}/{OPENAPI}", _openapi)
    routes.add_routes(app)


def openapi() -> dict[str, object]:
    """The OpenAPI 3.1 description of the business API."""
    data: dict[str, object] = json.loads(resources.files(__package__).joinpath(OPENAPI).read_text("utf-8"))
    return data


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi(), dumps=dumps)


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """/api/v1: the key, then JSON errors (a code and a sentence) for everything that goes wrong."""
    if not request.path.startswith(routes.BASE + "/"):
        return await handler(request)
    try:
        if request.path != f"{routes.BASE}/{OPENAPI}":
            request[keys.API_KEY] = await keys.require_key(request)
        return await handler(request)
    except Problem as p:
        return answer(p.status, p.code, p.message, **p.extra)
    except web.HTTPNotFound:
        return answer(404, "not_found", f"There is no {request.path} in the business API; see {routes.BASE}/"
                      f"{OPENAPI}.")
    except web.HTTPMethodNotAllowed as exc:
        return answer(405, "method_not_allowed", f"{request.path} does not take {request.method}; it takes "
                      f"{', '.join(sorted(exc.allowed_methods))}.")
    except web.HTTPRequestEntityTooLarge:
        return answer(413, "too_large", "The body is too large (at most 1 MiB).")
    except Exception:  # a bug: the caller gets a sentence, the log gets the traceback
        log.exception("business API: unexpected error on %s %s", request.method, request.path)
        return answer(500, "internal", "Something went wrong inside wabot; the error is in its log. Try again; "
                      "with an Idempotency-Key a retry never sends twice.")
