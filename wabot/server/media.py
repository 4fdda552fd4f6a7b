"""Files customers send to a question: fetched from Meta, checked, kept in `media.folder`, shared by signed links.

The engine says which question wants a file (`advance.wanted_media`); the dispatcher calls `MediaFiles.fetch`
before the turn, and the engine gets the verdict as a value (`advance.Fetched`). A file is taken only when its
bytes say it is one of the accepted types (the name and Meta's declared type are not believed) and it is within
the size cap. Kept as `<folder>/<token>` with `<token>.json` beside it (who sent it, its type, size and name):
the database holds only that metadata, in the flow's variable. With `media.download: link` only Meta's answer
about the file is checked at once; the bytes come when the file is first needed (a link opened, an http step).

The shop's systems fetch a file at `GET /media/<token>?expires=<unix time>&sig=<hex>` on the admin listener:
HMAC-SHA256 of "<token>.<expires>" with the link secret, compared in constant time; 403 for a bad or expired
signature, 404 for a token never issued. Only files in the folder are served: never a proxy to anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from wabot.config import Media
from wabot.engine.advance import Fetched, MediaRule
from wabot.errors import GraphError, LimitError
from wabot.logs import mask
from wabot.whatsapp import inbound, media
from wabot.whatsapp.graph import GraphClient

log = logging.getLogger(__name__)

__all__ = ["MEDIA_FILES", "MediaFiles", "allowed", "serve", "sniff"]

TOKEN = re.compile(r"[0-9a-f]{32}")
MEDIA_ID = re.compile(r"[0-9A-Za-z_.-]{1,128}")  # Meta's media ids are digits; nothing else becomes a file name
SECRET_FILE = ".link-secret"
BY_ID = ".by-id"  # <folder>/.by-id/<Meta's media id>: the token it was kept as (the console shows the kept copy)

# What a file's first bytes say it is (offset, magic, MIME type): the formats customers send to a shop.
MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"OggS", "audio/ogg"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"PK\x03\x04", "application/zip"),  # also .docx, .xlsx: told apart by their name below
    (4, b"ftyp", "video/mp4"),
)
OFFICE = {".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
          ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
          ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation"}
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp",
              "application/pdf": ".pdf", "audio/ogg": ".ogg", "audio/mpeg": ".mp3", "video/mp4": ".mp4"}


def sniff(head: bytes, filename: str | None = None) -> str:
    """The MIME type the bytes show ("application/octet-stream" when unknown)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    for offset, magic, mime in MAGIC:
        if head[offset:offset + len(magic)] == magic:
            if mime == "application/zip" and filename:
                return OFFICE.get(Path(filename).suffix.lower(), mime)
            return mime
    return "application/octet-stream"


def allowed(mime: str, patterns: tuple[str, ...]) -> bool:
    """Whether `mime` is one of `patterns` ("image/*" takes every image)."""
    mime = mime.split(";")[0].strip().lower()
    return any(p == mime or (p.endswith("/*") and mime.startswith(p[:-1])) for p in patterns)


class MediaFiles:
    """The folder of customers' files and their signed links."""

    def __init__(self, settings: Media, *, base_url: str, graph: Callable[[], GraphClient | None],
                 clock: Callable[[], float] = time.time) -> None:
        self.settings, self.graph, self.clock = settings, graph, clock
        self.folder = settings.folder
        self.base_url = (settings.base_url or base_url).rstrip("/")
        self.secret = settings.secret.encode() or self._secret()

    def _secret(self) -> bytes:
        """A random link secret kept in the folder, so links outlive a restart (mode 0600)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / SECRET_FILE
        with contextlib.suppress(FileNotFoundError):
            return path.read_bytes().strip()
        path.write_text(secrets.token_hex(32), "ascii")
        path.chmod(0o600)
        return path.read_bytes().strip()

    async def fetch(self, found: inbound.Media, rule: MediaRule, *, customer: str) -> Fetched | None:
        """Download (or, in link mode, look up) the file and check it against the question's rule.

        None in dry-run (no token to download with): the question saves Meta's id and type, unchecked.
        """
        limit = min(rule.max_bytes or self.settings.max_bytes, self.settings.max_bytes)
        types = rule.types or self.settings.types
        graph = self.graph()
        if graph is None:
            log.info("DRY RUN: a file from %s was not downloaded (no token); saved as Meta's id", mask(customer))
            return None
        data = b""
        try:
            info = await media.lookup(graph, found.id, limit=limit)
            if self.settings.download == "answer":
                data = b"".join([chunk async for chunk in media.chunks(graph, info, limit=limit)])
        except LimitError:
            log.info("a file from %s was refused: larger than %d bytes", mask(customer), limit)
            return Fetched("too_large")
        except GraphError as err:
            why = "Meta no longer has it (expired or deleted)" if media.gone(err) else str(err)
            log.warning("a file from %s could not be downloaded (media %s): %s", mask(customer), found.id, why)
            return Fetched("unavailable")
        mime = sniff(data[:64], found.filename) if data else info.mime_type.split(";")[0].strip().lower()
        if not allowed(mime, types):
            log.info("a file from %s was refused: it is %s (declared %s), the question takes %s", mask(customer),
                     mime, found.mime_type or info.mime_type, ", ".join(types))
            return Fetched("wrong_type")
        token = secrets.token_hex(16)
        size = len(data) if data else (info.file_size or 0)
        name = _safe_name(found.filename) or f"{found.kind}-{token[:8]}{EXTENSIONS.get(mime, '')}"
        meta = {"customer": customer, "kind": found.kind, "media_id": found.id, "mime": mime, "size": size,
                "filename": name, "created": self.clock(), "types": list(types), "limit": limit}
        await asyncio.to_thread(self._keep, token, data, meta)
        value: dict[str, Any] = {
            "kind": found.kind, "id": found.id, "file": token, "url": self.link(token), "mime": mime, "size": size,
            "filename": name, "caption": found.caption, "mime_type": found.mime_type or info.mime_type,
        }
        if data:
            value["sha256"] = hashlib.sha256(data).hexdigest()
        return Fetched("", value)

    def link(self, token: str) -> str:
        expires = int(self.clock() + self.settings.link_hours * 3600)
        return f"{self.base_url}/media/{token}?expires={expires}&sig={self._sign(token, expires)}"

    def relinked(self, data: dict[str, Any]) -> dict[str, Any]:
        """A wait's saved variables with a fresh link in each file a question saved: a wait may outlast
        `media.link_hours`, and the flow goes on to hand the link to the shop's systems (an http step)."""
        saved = data.get("vars")
        if not isinstance(saved, dict):
            return data
        fresh = {name: {**value, "url": self.link(value["file"])} if _kept_file(value) else value
                 for name, value in saved.items()}
        return {**data, "vars": fresh}

    def _sign(self, token: str, expires: int) -> str:
        return hmac.new(self.secret, f"{token}.{expires}".encode(), hashlib.sha256).hexdigest()

    def signed(self, token: str, expires: str, sig: str) -> bool:
        """The link's signature is right (constant-time) and it has not expired."""
        if not expires.isdigit() or len(expires) > 12:
            return False
        good = hmac.compare_digest(self._sign(token, int(expires)).encode(),
                                   sig.lower().encode("utf-8", "surrogateescape"))
        return good and int(expires) >= self.clock()

    async def open(self, token: str) -> tuple[Path, dict[str, Any]] | None:
        """The file and its metadata; in link mode downloaded (and checked) on first need. None: unknown or gone."""
        if not TOKEN.fullmatch(token):
            return None
        try:
            meta: dict[str, Any] = json.loads((self.folder / f"{token}.json").read_text("utf-8"))
        except (OSError, ValueError):
            return None
        path = self.folder / token
        if path.exists():
            return path, meta
        graph = self.graph()
        if graph is None:
            return None
        try:
            info = await media.lookup(graph, meta["media_id"], limit=meta["limit"])
            data = b"".join([chunk async for chunk in media.chunks(graph, info, limit=meta["limit"])])
        except (GraphError, LimitError) as err:
            log.warning("file %s (media %s) could not be downloaded: %s", token, meta["media_id"], err)
            return None
        mime = sniff(data[:64], meta.get("filename"))
        if not allowed(mime, tuple(meta["types"])):
            log.warning("file %s is %s by its bytes, not a type its question takes; not served", token, mime)
            return None
        meta.update(mime=mime, size=len(data))
        await asyncio.to_thread(self._keep, token, data, meta)
        return path, meta

    def _keep(self, token: str, data: bytes, meta: dict[str, Any]) -> None:
        """Write the file (when downloaded) and its metadata: off the loop, a file may be megabytes."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if data:
            (self.folder / token).write_bytes(data)
        (self.folder / f"{token}.json").write_text(json.dumps(meta, ensure_ascii=False), "utf-8")
        if MEDIA_ID.fullmatch(media_id := str(meta.get("media_id", ""))):
            (self.folder / BY_ID).mkdir(exist_ok=True)
            (self.folder / BY_ID / media_id).write_text(token, "ascii")

    def kept(self, media_id: str) -> tuple[Path, dict[str, Any]] | None:
        """The copy kept of the file Meta knows as `media_id` (downloaded, not purged), with its metadata; or None.
        Blocking (reads two small files): call it off the loop."""
        if not MEDIA_ID.fullmatch(media_id):
            return None
        try:
            token = (self.folder / BY_ID / media_id).read_text("ascii").strip()
            meta: dict[str, Any] = json.loads((self.folder / f"{token}.json").read_text("utf-8"))
        except (OSError, ValueError):
            return None
        path = self.folder / token
        return (path, meta) if TOKEN.fullmatch(token) and path.exists() else None

    def purge(self, *, before: float) -> int:
        """Delete the files received before `before` (history.retention_days); how many were removed."""
        removed = 0
        for meta_path in self.folder.glob("*.json") if self.folder.exists() else ():
            try:
                meta = json.loads(meta_path.read_text("utf-8"))
                created = float(meta["created"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if created < before:
                (self.folder / meta_path.stem).unlink(missing_ok=True)
                if MEDIA_ID.fullmatch(media_id := str(meta.get("media_id", ""))):
                    (self.folder / BY_ID / media_id).unlink(missing_ok=True)
                meta_path.unlink(missing_ok=True)
                removed += 1
        return removed


MEDIA_FILES = web.AppKey("media_files", MediaFiles)


async def serve(request: web.Request) -> web.StreamResponse:
    """GET /media/{token}: a customer's file for whoever holds a valid signed link."""
    files = request.app[MEDIA_FILES]
    token = request.match_info["token"]
    if not files.signed(token, request.query.get("expires", ""), request.query.get("sig", "")):
        return web.json_response({"error": "forbidden", "message": "This link is not valid or has expired; ask "
                                  "wabot for a new one."}, status=403)
    found = await files.open(token)
    if found is None:
        return web.json_response({"error": "not_found", "message": "There is no such file (unknown, purged by "
                                  "history.retention_days, or Meta no longer has it)."}, status=404)
    path, meta = found
    name = quote(str(meta.get("filename") or token), safe="")
    return web.FileResponse(path, headers={
        "Content-Type": str(meta["mime"]), "Content-Disposition": f"attachment; filename*=UTF-8''{name}",
        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store",
    })


def _kept_file(value: Any) -> bool:
    """A variable's value is a file a question saved (MediaFiles.fetch), with a link."""
    return isinstance(value, dict) and "url" in value and TOKEN.fullmatch(str(value.get("file", ""))) is not None


def _safe_name(name: str | None) -> str:
    """The customer's file name without any path or control characters (it is only ever shown, never a path)."""
    base = re.split(r"[\\/]", name or "")[-1]
    return "".join(c for c in base if c.isprintable() and c not in '"<>|:*?')[:120].strip(". ")
