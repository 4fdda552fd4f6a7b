"""The outgoing message row both stores hand to the sender."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["OutRow"]


@dataclass(frozen=True, slots=True)
class OutRow:
    """One queued outgoing message."""

    id: int
    customer: str
    body: dict[str, Any]
    attempts: int = 0
    payload: str = ""  # `body` as the JSON text stored (sent as is: no second encoding)
    once: bool = False  # a campaign's message: never sent again after a crash caught it mid-send
