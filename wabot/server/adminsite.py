"""The admin listener: the handoff desk API, /metrics and, from the layers above, the console and the
business API — on `admin.host`/`admin.port` (127.0.0.1:8081 by default), never on the public webhook port.

It is a second aiohttp application served from inside the public one's lifecycle: it starts once the
database, sender and dispatcher are up (and shares them), and stops before they close.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence

from aiohttp import web

from wabot.config import Settings
from wabot.server import admin, media, metrics
from wabot.server.keys import DISPATCHER, HUB, SENDER, SETTINGS, STORE

log = logging.getLogger(__name__)

__all__ = ["ADMIN_APP", "ADMIN_URL", "Extension", "admin_app", "serving"]

Extension = Callable[[web.Application], None]  # adds routes (and middlewares) to the admin application

ADMIN_APP = web.AppKey("admin_app", web.Application)
ADMIN_URL = web.AppKey("admin_url", str)  # where the admin listener really listens, e.g. http://127.0.0.1:8081


def admin_app(settings: Settings, extensions: Sequence[Extension] = ()) -> web.Application:
    """The admin application: /metrics and health always; the desk API when an admin token is set."""
    app = web.Application(client_max_size=1024 * 1024)
    app[SETTINGS] = settings
    app.router.add_get("/metrics", metrics.handler)
    app.router.add_get("/media/{token}", media.serve)  # a customer's file, by a signed link (server/media.py)
    if settings.admin_token:
        app.middlewares.append(admin.require_token)
        admin.add_routes(app)
    for extend in extensions:
        extend(app)
    return app


async def serving(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context of the public app (after its resources): serve the admin app beside it."""
    inner = app[ADMIN_APP]
    inner[STORE], inner[SENDER], inner[DISPATCHER] = app[STORE], app[SENDER], app[DISPATCHER]
    inner[metrics.METRICS], inner[HUB] = app[metrics.METRICS], app[HUB]
    inner[media.MEDIA_FILES] = files = app[media.MEDIA_FILES]
    settings = app[SETTINGS]
    runner = web.AppRunner(inner, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.admin_host, settings.admin_port)
    try:
        await site.start()
    except OSError as err:
        await runner.cleanup()
        raise OSError(
            err.errno,
            f"cannot listen on {settings.admin_host}:{settings.admin_port} for the admin listener "
            f"({err.strerror or err}); set admin.port (WABOT_ADMIN_PORT) to a free port",
            "admin.port",
        ) from None
    host, port = runner.addresses[0][:2]
    app[ADMIN_URL] = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    files.base_url = (settings.media.base_url or app[ADMIN_URL]).rstrip("/")  # where the signed links point
    log.info("admin listener on http://%s:%d (metrics%s)", settings.admin_host, port,
             ", handoff desk" if settings.admin_token else "")
    try:
        yield
    finally:
        await runner.cleanup()
