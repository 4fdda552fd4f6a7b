"""What the engine takes (events) and asks its caller to do (effects); re-exported by `engine/advance.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from wabot.state import CancelTimers, SetTimer, TimerKind
from wabot.whatsapp import inbound


@dataclass(frozen=True, slots=True)
class Incoming:
    """A customer's message; `fetched`: what the server made of the file it carries (a question wanted it)."""

    message: inbound.Message
    fetched: Fetched | None = None


@dataclass(frozen=True, slots=True)
class MediaRule:
    """What the waiting question takes of a file: MIME types ("image/*"; empty: the settings') and a size cap."""

    types: tuple[str, ...] = ()
    max_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class Fetched:
    """A file the customer sent to a question, downloaded and checked by the server (server/media.py).

    `problem`: "" (kept: `value` is what the flow saves), "too_large", "wrong_type", or "unavailable" (Meta
    no longer has it, or refused the download).
    """

    problem: Literal["", "too_large", "wrong_type", "unavailable"] = ""
    value: dict[str, Any] | None = None


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
    files: tuple[tuple[str, dict[str, Any]], ...] = ()  # multipart: (field, a saved file variable's value)


@dataclass(frozen=True, slots=True)
class HandoffOpened:
    """The customer now waits for a person."""

    reason: str


Effect = HttpCall | HandoffOpened | SetTimer | CancelTimers  # the timers are kept in the turn's own commit
