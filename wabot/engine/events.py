"""What the engine takes (events) and asks its caller to do (effects); re-exported by `engine/advance.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wabot.state import CancelTimers, SetTimer, TimerKind
from wabot.whatsapp import inbound


@dataclass(frozen=True, slots=True)
class Incoming:
    """A customer's message."""

    message: inbound.Message


@dataclass(frozen=True, slots=True)
class HttpResult:
    """The answer to an `HttpCall` effect: `ok` False on timeout, connection error or non-2xx."""

    ok: bool
    status: int = 0
    data: Any = None
    error: str = ""


@dataclass(frozen=True, slots=True)
class Resume:
    """A person gave the conversation back to the bot (end of a handoff)."""


@dataclass(frozen=True, slots=True)
class Answered:
    """A person answered the customer during a handoff: the handoff's clock starts again."""


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed without a message (the server's periodic sweep): a handoff may have expired."""


@dataclass(frozen=True, slots=True)
class StartFlow:
    """The business starts `flow` for the customer (the business API), with `vars` saved first."""

    flow: str
    vars: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TakeOver:
    """A person takes the conversation from the bot, wherever it is (the bot stays silent until `Resume`)."""

    reason: str


@dataclass(frozen=True, slots=True)
class TimerFired:
    """A timer a turn set (`SetTimer`) is due: remind, give up waiting, or go on after a wait step.

    `window_open`: whether WhatsApp's 24-hour window is open now; when it is not, what the bot would say goes
    as the flow's `opens_with` template, or not at all.
    """

    id: int
    kind: TimerKind
    flow: str
    step: str
    n: int = 1
    data: dict[str, Any] | None = None
    window_open: bool = True


Event = Incoming | HttpResult | Resume | StartFlow | Answered | Tick | TakeOver | TimerFired


@dataclass(frozen=True, slots=True)
class HttpCall:
    """Perform this request, then call `advance` with an HttpResult."""

    method: str
    url: str
    headers: dict[str, str]
    body: Any
    timeout: float
    follow_redirects: bool = False  # within the same host only


@dataclass(frozen=True, slots=True)
class HandoffOpened:
    """The customer now waits for a person."""

    reason: str


Effect = HttpCall | HandoffOpened | SetTimer | CancelTimers  # the timers are kept in the turn's own commit
