"""The business API's errors: JSON with a code a program can test and a sentence a person can read."""

from __future__ import annotations

import json
from typing import Any, Literal

from aiohttp import web

__all__ = ["Code", "Problem", "answer", "dumps"]

Code = Literal[
    "unauthorized",  # 401: no key, or not a live one
    "bad_request",  # 400: the body is not what the endpoint takes
    "not_found",  # 404
    "window_closed",  # 409: free-form outside the 24-hour window, and no template to fall back on
    "opted_out",  # 409: the customer asked not to get messages the business starts
    "in_handoff",  # 409: a person has the conversation
    "campaign_finished",  # 409: a finished or cancelled campaign cannot change
    "idempotency_key_reused",  # 422: the same Idempotency-Key with a different request
    "too_large",  # 413
    "method_not_allowed",  # 405
    "internal",  # 500
]


class Problem(Exception):
    """Raised by a handler; the middleware turns it into the JSON answer."""

    def __init__(self, status: int, code: Code, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def answer(status: int, code: Code, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, **extra}}, status=status, dumps=dumps)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
