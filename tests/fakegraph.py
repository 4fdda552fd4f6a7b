"""FakeGraph: a real aiohttp server on 127.0.0.1 standing in for Meta's Graph API.

It records every request, answers as scripted (default: accepted, with a fresh wamid), and
checks every message body against Meta's published schema (payloads/graph/message.schema.json):
a body that does not match gets Meta's 400 answer and is recorded in `violations`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import jsonschema  # type: ignore[import-untyped,unused-ignore]
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests import PAYLOADS

SCHEMA = json.loads((PAYLOADS / "graph" / "message.schema.json").read_text("utf-8"))
MESSAGE = jsonschema.Draft202012Validator({**SCHEMA, "$ref": "#/$defs/Message"})
# Message is a oneOf of eleven kinds, each requiring its own key (text, template, ...) and, but for templates,
# refusing keys of other kinds: at most one kind can match, so a body valid for the kind its `type` names is
# valid for the oneOf. Checking that kind alone first is ~10x faster (a 10,000-row campaign test, issue 13).
KINDS = {
    ref["$ref"].rsplit("/", 1)[-1].removesuffix("Message").lower(): jsonschema.Draft202012Validator(
        {**SCHEMA, "$ref": ref["$ref"]})
    for ref in SCHEMA["$defs"]["Message"]["oneOf"]
}
VALID: set[str] = set()  # bodies found valid, with `to` blanked: every kind takes any string there
MARK_READ = jsonschema.Draft202012Validator({**SCHEMA, "$ref": "#/$defs/MarkMessageRequestPayload"})


def meta_error(code: int, message: str, *, subcode: int | None = None, details: str = "") -> dict[str, Any]:
    """An error body shaped like Meta's."""
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf"}
    if subcode is not None:
        error["error_subcode"] = subcode
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return {"error": error}


EXPIRED = meta_error(190, "Error validating access token: Session has expired.", subcode=463)
RATE_LIMIT = meta_error(130429, "(#130429) Rate limit hit", details="Cloud API message throughput has been reached.")
# Meta's answer for a media id it does not know (never existed, or expired and deleted)
UNKNOWN_MEDIA = meta_error(100, "Unsupported get request. Object with ID does not exist, cannot be loaded due to "
                           "missing permissions, or does not support this operation.", subcode=33)
WINDOW_CLOSED = meta_error(131047, "(#131047) Re-engagement message", details="More than 24 hours have passed.")


@dataclass(frozen=True, slots=True)
class Answer:
    status: int = 200
    body: Any = None  # JSON; None = Meta's success answer
    text: str | None = None  # a non-JSON answer (an HTML error page)
    delay: float = 0.0
    disconnect: bool = False


@dataclass(slots=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int = 0
    wamid: str | None = None


@dataclass
class FakeGraph:
    phone_number_id: str = "123456"
    version: str = "v25.0"
    token: str = "test-token"
    requests: list[Seen] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    answers: deque[Answer] = field(default_factory=deque)
    server: TestServer | None = None
    ids: itertools.count[int] = field(default_factory=itertools.count)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    # fault injection at chosen points of the traffic: the answer to the Nth POST to /messages (counted from 1),
    # and the POST from which the token in use is refused (the token expires: `new_token` takes its place)
    faults: dict[int, Answer] = field(default_factory=dict)
    expire_at: int | None = None
    new_token: str = "a-new-token"
    expired: asyncio.Event = field(default_factory=asyncio.Event)
    posts: int = 0
    # media customers sent, by media id: (bytes, mime type); GET /{version}/{id} then GET its url gives them
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)

    def script(self, status: int = 200, body: Any = None, *, times: int = 1, text: str | None = None,
               delay: float = 0.0, disconnect: bool = False) -> None:
        """Queue the answers to the next `times` calls (after that: accepted)."""
        self.answers.extend(Answer(status, body, text, delay, disconnect) for _ in range(times))

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    @property
    def sent(self) -> list[dict[str, Any]]:
        """Message bodies Meta accepted, in order (mark-as-read calls excluded)."""
        return [r.body for r in self.requests if r.wamid and isinstance(r.body, dict) and "type" in r.body]

    def texts(self, to: str | None = None) -> list[str]:
        """The visible text of each accepted message (body text, or the message type)."""
        out: list[str] = []
        for body in self.sent:
            if to is not None and body.get("to") != "+" + to:
                continue
            kind, part = body["type"], body[body["type"]]
            if kind == "text":
                out.append(part["body"])
            elif kind == "interactive":
                out.append(part["body"]["text"])
            else:
                out.append(f"[{kind}]")
        return out

    async def wait_sent(self, count: int, within: float = 5.0) -> list[dict[str, Any]]:
        """Wait until at least `count` messages were accepted."""
        async with asyncio.timeout(within):
            while len(self.sent) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.sent

    async def __aenter__(self) -> FakeGraph:
        app = web.Application()
        app.router.add_post(f"/{self.version}/{self.phone_number_id}/messages", self._messages)
        app.router.add_get(f"/{self.version}/{self.phone_number_id}", self._number)
        app.router.add_get(f"/{self.version}/{{media_id}}", self._media_info)
        app.router.add_get("/whatsapp_business/attachments/{media_id}", self._media_bytes)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        await self.server.close()

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        seen = Seen(request.method, request.path, dict(request.headers), body)
        self.requests.append(seen)
        self.posts += 1
        if self.posts == self.expire_at:
            self.token = self.new_token
            self.expired.set()
        try:
            return await self._answer(request, seen, self.faults.pop(self.posts, None))
        finally:
            self.changed.set()

    async def _answer(self, request: web.Request, seen: Seen, fault: Answer | None) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            seen.status = 401
            return web.json_response(EXPIRED, status=401)
        is_read = isinstance(seen.body, dict) and seen.body.get("status") == "read"
        # checked before any scripted answer, so a scripted failure cannot hide a malformed body
        problem = self._problem(request, seen.body, is_read)
        if problem:
            self.violations.append(f"{json.dumps(seen.body, ensure_ascii=False)[:300]}: {problem[:300]}")
            seen.status = 400
            return web.json_response(meta_error(100, "(#100) Invalid parameter", details=problem[:200]), status=400)
        scripted = await self._scripted(request, fault)
        if scripted is not None:
            seen.status = scripted.status
            return scripted
        seen.status = 200
        if is_read:
            return web.json_response({"success": True})
        seen.wamid = f"wamid.fake.{next(self.ids)}"
        to = seen.body.get("to") or seen.body.get("recipient", "")
        return web.json_response({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
                                  "messages": [{"id": seen.wamid}]})

    @staticmethod
    def _problem(request: web.Request, body: Any, is_read: bool) -> str | None:
        """Why Meta would refuse this body, or None."""
        if request.content_type != "application/json":
            return f"Content-Type is {request.content_type!r}, not 'application/json'"
        key = None
        if isinstance(body, dict) and isinstance(body.get("to"), str) and not is_read:
            key = json.dumps({**body, "to": ""}, sort_keys=True)
            if key in VALID:
                return None
        kind = KINDS.get(body.get("type", "")) if isinstance(body, dict) and not is_read else None
        if kind is not None and kind.is_valid(body):
            if key is not None and len(VALID) < 100_000:
                VALID.add(key)
            return None
        errors = list((MARK_READ if is_read else MESSAGE).iter_errors(body))
        return errors[0].message if errors else None

    async def _scripted(self, request: web.Request, fault: Answer | None = None) -> web.StreamResponse | None:
        """`fault`, else the next scripted answer, or None for Meta's normal success."""
        answer = fault or (self.answers.popleft() if self.answers else Answer())
        if answer.delay:
            await asyncio.sleep(answer.delay)
        if answer.disconnect:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if answer.text is not None:
            return web.Response(status=answer.status, text=answer.text, content_type="text/html")
        if answer.status != 200 or answer.body is not None:
            return web.json_response(answer.body, status=answer.status)
        return None

    def _seen_get(self, request: web.Request) -> web.Response | None:
        """Note a GET (no body); Meta's 401 when the bearer token is not the current one."""
        self.requests.append(Seen(request.method, request.path, dict(request.headers), None))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response(EXPIRED, status=401)
        return None

    async def _number(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._seen_get(request)) is not None:
            return refused
        scripted = await self._scripted(request)
        if scripted is not None:
            return scripted
        return web.json_response({"display_phone_number": "+84 28 1234 5678", "verified_name": "Trà Sen",
                                  "quality_rating": "GREEN", "id": self.phone_number_id})

    async def _media_info(self, request: web.Request) -> web.StreamResponse:
        """Meta's media lookup: where the file is for the next minutes, its type and size."""
        if (refused := self._seen_get(request)) is not None:
            return refused
        media_id = request.match_info["media_id"]
        if media_id not in self.media:
            return web.json_response(UNKNOWN_MEDIA, status=400)
        data, mime = self.media[media_id]
        return web.json_response({"messaging_product": "whatsapp", "url": f"{self.url}/whatsapp_business/attachments/"
                                  f"{media_id}", "mime_type": mime, "sha256": "x", "file_size": len(data),
                                  "id": media_id})

    async def _media_bytes(self, request: web.Request) -> web.StreamResponse:
        """The download url: the bytes, with the same bearer token (404 once the file is gone)."""
        if (refused := self._seen_get(request)) is not None:
            return refused
        scripted = await self._scripted(request)
        if scripted is not None:
            return scripted
        found = self.media.get(request.match_info["media_id"])
        if found is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=found[0], content_type=found[1])
