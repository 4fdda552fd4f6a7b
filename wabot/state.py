"""Per-customer conversation state: a value the engine takes and returns, the store keeps as JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

Status = Literal["idle", "waiting", "http", "handoff"]
IDLE: Final = "idle"  # no conversation running: the next message starts the start flow
WAITING: Final = "waiting"  # waiting for the customer's answer at `step`
HTTP: Final = "http"  # waiting for the result of the http step at `step`
HANDOFF: Final = "handoff"  # a person has the conversation; the bot stays silent

TimerKind = Literal["remind", "timeout", "wait"]
TIMER_KINDS: tuple[TimerKind, ...] = ("remind", "timeout", "wait")


@dataclass(frozen=True, slots=True)
class Frame:
    """A return address: where a called sub-flow comes back to."""

    flow: str
    step: str  # step key to resume at
    again: bool = False  # True: re-run that step (a waiting step interrupted by a trigger)
    interrupted: bool = False  # a conversation a wait that ended cut into: the flow comes back here when it waits


@dataclass(frozen=True, slots=True)
class State:
    flow: str = ""
    step: str = ""  # step key (id or "#N")
    status: Status = IDLE
    vars: Mapping[str, Any] = field(default_factory=dict)
    stack: tuple[Frame, ...] = ()
    attempts: int = 0  # failed answers at the current ask
    misses: int = 0  # consecutive replies that matched nothing (for the fallback)
    page: int = 0  # menu page shown (menus with more than 10 options)
    last_seen: float = 0.0  # unix time of the customer's last message
    handoff_at: float = 0.0  # unix time the handoff opened or a person last answered (status HANDOFF)

    def with_(self, **changes: Any) -> State:
        return replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(
            {
                "flow": self.flow,
                "step": self.step,
                "status": self.status,
                "vars": dict(self.vars),
                "stack": [[f.flow, f.step, f.again, *([True] if f.interrupted else [])] for f in self.stack],
                "attempts": self.attempts,
                "misses": self.misses,
                "page": self.page,
                "last_seen": self.last_seen,
                "handoff_at": self.handoff_at,
            },
            ensure_ascii=False,
            default=str,
        )

    @classmethod
    def from_json(cls, text: str) -> State:
        d = json.loads(text)
        return cls(
            flow=d["flow"],
            step=d["step"],
            status=d["status"],
            vars=d["vars"],
            stack=tuple(Frame(f[0], f[1], bool(f[2]), len(f) > 3 and bool(f[3])) for f in d["stack"]),
            attempts=d["attempts"],
            misses=d["misses"],
            page=d["page"],
            last_seen=d["last_seen"],
            handoff_at=d.get("handoff_at", 0.0),  # absent in states saved before handoffs could expire
        )


# --- timers (flows' remind, timeout and wait): set and cancelled by the engine, kept by the database -------------


@dataclass(frozen=True, slots=True)
class SetTimer:
    """Fire a timer at `due` (unix time) for the step `flow`/`step`.

    kind "remind": say the step's reminder (`n` is which one); "timeout": give up waiting at the step;
    "wait": go on after the wait step, with `data` holding the variables and return stack saved there.
    """

    kind: TimerKind
    due: float
    flow: str
    step: str
    n: int = 1
    data: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class CancelTimers:
    """Cancel the customer's pending timers of these kinds (the customer answered, left the step, opted out, a
    flow called its waits off); `flow`: only that flow's timers."""

    kinds: tuple[TimerKind, ...]
    reason: str
    flow: str | None = None


TimerChange = SetTimer | CancelTimers
