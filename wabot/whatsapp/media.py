"""Media a customer sent: ask the Graph API where its file is, then fetch the bytes with the same token.

`GET /{version}/{media-id}` answers `{url, mime_type, sha256, file_size, id}`; the url lives 5 minutes and
needs the bearer token too [reference S12]. Meta keeps a customer's media for a limited time (7 days from
the webhook per S12; ~30 days for uploads), after which the id is unknown.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import aiohttp

from wabot.errors import GraphError, LimitError
from wabot.whatsapp.graph import INVALID_PARAMETER, UNKNOWN_OBJECT, GraphClient, error_from_response

__all__ = ["CHUNK", "MediaInfo", "chunks", "gone", "lookup"]

CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """Where Meta keeps one media file for the next few minutes."""

    id: str
    url: str
    mime_type: str
    file_size: int | None


def gone(err: GraphError) -> bool:
    """Meta no longer knows the media id (expired or deleted) or its download url."""
    return err.status in (404, 410) or (err.code == INVALID_PARAMETER and err.subcode == UNKNOWN_OBJECT)


async def lookup(graph: GraphClient, media_id: str, *, limit: int) -> MediaInfo:
    """The file's url, type and size; a LimitError when Meta says it is bigger than `limit` bytes."""
    data = await graph.get(media_id)
    if not isinstance(data, dict) or not isinstance(data.get("url"), str):
        raise error_from_response(200, data, secret=graph.token)
    size = data.get("file_size")
    info = MediaInfo(media_id, data["url"], str(data.get("mime_type") or "application/octet-stream"),
                     int(size) if isinstance(size, int | str) and str(size).isdigit() else None)
    if info.file_size is not None and info.file_size > limit:
        raise _too_large(info.file_size, limit)
    return info


async def chunks(graph: GraphClient, info: MediaInfo, *, limit: int) -> AsyncGenerator[bytes, None]:
    """The file's bytes, a chunk at a time; GraphError when Meta refuses, LimitError past `limit` bytes."""
    try:
        async with graph.session.get(info.url, headers=graph.headers, timeout=graph.timeout) as resp:
            if resp.status >= 400:
                text = await resp.text(errors="replace")
                try:
                    body: object = json.loads(text) if text else None
                except ValueError:
                    body = text
                raise error_from_response(resp.status, body, secret=graph.token)
            if resp.content_length is not None and resp.content_length > limit:
                raise _too_large(resp.content_length, limit)
            seen = 0
            async for chunk in resp.content.iter_chunked(CHUNK):
                seen += len(chunk)
                if seen > limit:  # Meta's size was missing or wrong: stop at the cap all the same
                    raise _too_large(seen, limit)
                yield chunk
    except TimeoutError:
        raise error_from_response(0, f"the media download did not finish within {graph.timeout.total:g} seconds",
                                  secret=graph.token) from None
    except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
        raise error_from_response(0, exc, secret=graph.token) from None


def _too_large(size: int, limit: int) -> LimitError:
    return LimitError(f"the file is {size / 1048576:.1f} MiB; files are taken up to "
                      f"{limit / 1048576:g} MiB", field="file_size", limit=limit)
