"""The Graph API client: send a message, mark one read, check the token and number.

Every failure becomes a GraphError built by `error_from_response`, the one place that
knows Meta's error codes. Error messages never contain the access token.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp

from wabot.errors import GraphError
from wabot.whatsapp import outbound

log = logging.getLogger(__name__)

TOKEN_CODES = frozenset({0, 190})  # the access token itself is invalid, expired or revoked
# 102 is Graph's "API session" error: without a subcode the token is expired or revoked [S14].
AUTH_CODES = frozenset({*TOKEN_CODES, 102})
# Meta's codes worth retrying with backoff: rate limits, throughput, temporary downtime.
RETRY_CODES = frozenset({1, 2, 4, 17, 341, 80007, 130429, 131000, 131016, 131056, 131057, 133004})
PERMISSION_CODES = frozenset({3, 10, 131005, *range(200, 300)})
INVALID_PARAMETER = 100  # with subcode UNKNOWN_OBJECT: an id (e.g. the phone number id) that does not exist
UNKNOWN_OBJECT = 33
WINDOW_CLOSED = 131047  # more than 24 hours since the customer last wrote; only templates go through

ADVICE = {
    190: "The access token is expired or invalid: create a new one (Meta Business Settings > System users > "
    "Generate token, with whatsapp_business_messaging), put it in WHATSAPP_TOKEN and restart wabot, "
    "or write it to the WHATSAPP_TOKEN_FILE file and send wabot SIGHUP.",
    0: "Meta could not authenticate the access token: create a new one, put it in WHATSAPP_TOKEN and restart.",
    131047: "The customer last wrote more than 24 hours ago: only an approved template can reach them now.",
    131026: "The message could not be delivered to this number (not on WhatsApp, or an old app).",
    131030: "The number is not in the test number's allowed list: add it under WhatsApp > API Setup > To.",
    130429: "Meta's send rate for this number was reached; wabot slows down and retries.",
    131056: "Too many messages to the same customer in a short time; wabot waits and retries.",
    100: "Meta refused a parameter of the request (a bug or a value too long); check the log line above.",
}


def error_from_response(status: int, body: object, *, secret: str = "") -> GraphError:
    """Turn a failed Graph call into a GraphError.

    `body` is Meta's decoded JSON or the text of a non-JSON answer; status 0 means no answer
    came, and `body` then says why (an exception or a sentence). `secret` (the token) is cut
    out of the message wherever Meta or a proxy echoed it.
    """
    err = _classify(status, body)
    if secret and secret in str(err):
        err = GraphError(str(err).replace(secret, "[token]"), status=err.status, code=err.code,
                         subcode=err.subcode, fbtrace_id=err.fbtrace_id, retryable=err.retryable, auth=err.auth)
    return err


def _classify(status: int, body: object) -> GraphError:
    if status == 0:
        why = str(body)
        if isinstance(body, BaseException):
            why = f"{type(body).__name__}: {why}" if why else type(body).__name__
        return GraphError(f"no answer from the Graph API ({_snippet(why)})",
                          status=0, retryable=True)
    error = body.get("error") if isinstance(body, dict) else None
    if status < 400 and not isinstance(error, dict):
        # Meta took the call but its answer lacks the message id; retrying could send the message twice.
        return GraphError(f"the Graph API answered HTTP {status} without the message id: {_snippet(_text(body))}",
                          status=status)
    if not isinstance(error, dict):
        text = _text(body)
        retryable = status == 429 or status >= 500
        return GraphError(
            f"the Graph API answered HTTP {status} without a WhatsApp error"
            + (f": {_snippet(text)}" if text else ""),
            status=status, retryable=retryable, auth=status == 401,
        )
    code = error.get("code") if isinstance(error.get("code"), int) else None
    subcode = error.get("error_subcode") if isinstance(error.get("error_subcode"), int) else None
    trace = error.get("fbtrace_id") if isinstance(error.get("fbtrace_id"), str) else None
    data = error.get("error_data")
    details = data.get("details") if isinstance(data, dict) else None
    meta_message = str(error.get("message") or error.get("error_user_msg") or "no message")
    auth = code in AUTH_CODES or (status == 401 and code not in RETRY_CODES)
    transient = code in RETRY_CODES or status == 429 or status >= 500 or error.get("is_transient") is True
    retryable = not auth and transient
    parts = [f"Graph API error {code if code is not None else '?'}: {meta_message}"]
    if details and details != meta_message:
        parts.append(f"({details})")
    advice = ADVICE.get(code or -1)
    if advice is None and code in PERMISSION_CODES:
        advice = ("The token lacks a permission: give the system user whatsapp_business_messaging and "
                  "whatsapp_business_management for this WhatsApp account, then make a new token.")
    if advice:
        parts.append("— " + advice)
    if trace:
        parts.append(f"[fbtrace_id {trace}]")
    return GraphError(
        " ".join(parts), status=status, code=code, subcode=subcode, fbtrace_id=trace, retryable=retryable, auth=auth
    )


def _text(body: object) -> str:
    return body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)[:200] if body is not None else ""


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= 160 else flat[:157] + "..."


class GraphClient:
    """Calls the WhatsApp Cloud API for one business phone number."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        version: str,
        phone_number_id: str,
        token: str,
        timeout: float,
    ) -> None:
        self.session = session
        self.base = f"{base_url.rstrip('/')}/{version}"
        self.phone_number_id = phone_number_id
        self.messages_url = f"{self.base}/{phone_number_id}/messages"
        self.token = token
        self.headers = {"Authorization": f"Bearer {token}"}
        self.json_headers = {**self.headers, "Content-Type": "application/json"}
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def send(self, recipient: outbound.Recipient, message: outbound.Outgoing) -> str:
        """Send one message; return its wamid."""
        outbound.check_limits(message)
        return await self.send_body(outbound.to_body(recipient, message))

    async def send_body(self, body: dict[str, Any] | str) -> str:
        """POST a ready message body (a mapping, or its JSON text); return the wamid Meta gave it."""
        data = await self._call("POST", self.messages_url, body)
        try:
            return str(data["messages"][0]["id"])
        except (KeyError, IndexError, TypeError):
            raise error_from_response(200, data, secret=self.token) from None

    async def mark_read(self, mark: outbound.MarkRead) -> None:
        """Mark an inbound message read (and show the typing indicator if asked)."""
        await self._call("POST", self.messages_url, outbound.mark_read_body(mark))

    async def check(self) -> dict[str, Any]:
        """The business number as Meta knows it (proves the token and the phone number id work)."""
        url = f"{self.base}/{self.phone_number_id}?fields=display_phone_number,verified_name,quality_rating"
        data = await self._call("GET", url, None)
        return data if isinstance(data, dict) else {}

    async def get(self, path: str) -> Any:
        """GET a Graph object by its path under the version (a media id, for one) as decoded JSON."""
        return await self._call("GET", f"{self.base}/{path}", None)

    async def _call(self, method: str, url: str, body: dict[str, Any] | str | None) -> Any:
        if isinstance(body, str):
            kwargs: dict[str, Any] = {"data": body.encode(), "headers": self.json_headers}
        else:
            kwargs = {"json": body, "headers": self.headers}
        try:
            async with self.session.request(method, url, timeout=self.timeout, **kwargs) as resp:
                text = await resp.text()
                status = resp.status
        except TimeoutError:
            raise error_from_response(
                0, f"{self.base} did not answer within {self.timeout.total:g} seconds", secret=self.token
            ) from None
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
            raise error_from_response(0, exc, secret=self.token) from None
        try:
            data: Any = json.loads(text) if text else None
        except ValueError:
            data = text
        if status >= 400 or (isinstance(data, dict) and "error" in data):
            raise error_from_response(status, data, secret=self.token)
        return data
