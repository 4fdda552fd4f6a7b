"""Media a customer sent, for signed-in staff: only files named in this shop's stored inbox; the copy wabot kept
when a question saved the file, else fetched from Meta."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncGenerator, Iterable
from dataclasses import replace
from urllib.parse import quote

from aiohttp import web

from wabot.console.pages import DB, PREFIX, error, refusal
from wabot.db import codec
from wabot.errors import GraphError, LimitError
from wabot.logs import mask
from wabot.server.keys import SENDER
from wabot.server.media import MEDIA_FILES
from wabot.whatsapp import inbound, media

__all__ = ["LIMIT", "add_routes", "path"]

log = logging.getLogger(__name__)

LIMIT = 16 * 1024 * 1024  # WhatsApp's own cap for video and audio; bigger documents are refused in plain words
MEDIA_ID = re.compile(r"[0-9A-Za-z_.-]{1,128}")
MIME = re.compile(r"[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*")
# shown in the browser; anything else (html, svg, documents) is downloaded, never rendered on our origin
INLINE = ("image/jpeg", "image/png", "image/webp", "image/gif", "video/", "audio/")


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{PREFIX}/media/{{media_id}}", fetch)


def path(media_id: str) -> str:
    return f"{PREFIX}/media/{quote(media_id, safe='')}"


def stored(messages: Iterable[str], media_id: str) -> inbound.Media | None:
    """The media part of the stored inbox message (JSON text) carrying `media_id`, or None."""
    for text in messages:
        try:
            content = codec.load_message(text).content
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(content, inbound.Media) and content.id == media_id:
            return content
    return None


async def fetch(request: web.Request) -> web.StreamResponse:
    """Stream the file with its type; plain words when it is unknown, gone, too large or wabot has no token."""
    media_id = request.match_info["media_id"]
    found = stored(await request.app[DB].console.media(media_id), media_id) if MEDIA_ID.fullmatch(media_id) else None
    if found is None:
        return error(request, 404, "media_unknown", id=media_id)
    files = request.app.get(MEDIA_FILES)
    if files is not None and (kept := await asyncio.to_thread(files.kept, media_id)) is not None:
        path, meta = kept  # a question saved it: the copy wabot keeps, which outlives Meta's (about 30 days)
        sniffed = replace(found, mime_type=meta.get("mime") or found.mime_type)  # what its bytes showed
        return web.FileResponse(path, headers=_headers(sniffed, ""))
    graph = request.app[SENDER].graph
    if graph is None:
        return error(request, 503, "media_dry_run")
    body: AsyncGenerator[bytes, None] | None = None
    try:
        try:
            info = await media.lookup(graph, media_id, limit=LIMIT)
            body = media.chunks(graph, info, limit=LIMIT)
            first = await anext(body, b"")
        except LimitError as err:
            return error(request, 413, "media_too_large", why=str(err))
        except GraphError as err:
            if media.gone(err):
                return error(request, 410, "media_gone")
            log.warning("console: media %s could not be fetched: %s", mask(media_id), err)
            return refusal(request, 502, str(err))
        response = web.StreamResponse(headers=_headers(found, info.mime_type))
        await response.prepare(request)
        await response.write(first)
        try:
            async for chunk in body:
                await response.write(chunk)
        except (GraphError, LimitError) as err:  # after the first bytes no page can be shown: cut the file short
            log.warning("console: media %s stopped halfway: %s", mask(media_id), err)
            if request.transport is not None:
                request.transport.close()
        return response
    finally:
        if body is not None:
            await body.aclose()


def _headers(found: inbound.Media, meta_type: str) -> dict[str, str]:
    kind = (found.mime_type or meta_type).split(";")[0].strip().lower()
    kind = kind if MIME.fullmatch(kind) else "application/octet-stream"
    shown = found.kind != "document" and kind.startswith(INLINE)
    name = found.filename or f"{found.kind}-{found.id}"
    return {
        "Content-Type": kind,
        "Content-Disposition": f"{'inline' if shown else 'attachment'}; filename*=UTF-8''{quote(name, safe='')}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; img-src 'self'; media-src 'self'; sandbox",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "private, no-store",
    }
