"""The few exceptions wabot raises; each carries the data a caller needs to act on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


class WabotError(Exception):
    """Root of every wabot error; `str(err)` is a plain sentence meant for a person."""


class ConfigError(WabotError):
    """A setting in config.yaml is missing or wrong."""

    def __init__(self, message: str, *, key: str, file: str) -> None:
        super().__init__(message)
        self.key = key
        self.file = file


class PayloadError(WabotError):
    """A webhook body is not the shape Meta sends; `where` is a JSON path such as `entry[0].changes`."""

    def __init__(self, message: str, *, where: str = "") -> None:
        super().__init__(message)
        self.where = where


class LimitError(WabotError):
    """An outgoing message breaks one of WhatsApp's limits (too many buttons, a title too long, ...)."""

    def __init__(self, message: str, *, field: str, limit: int) -> None:
        super().__init__(message)
        self.field = field
        self.limit = limit


class GraphError(WabotError):
    """The Graph API refused or failed a call. Built in exactly one place: `graph.error_from_response`."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: int | None = None,
        subcode: int | None = None,
        fbtrace_id: str | None = None,
        retryable: bool = False,
        auth: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.subcode = subcode
        self.fbtrace_id = fbtrace_id
        self.retryable = retryable
        self.auth = auth


class FlowError(WabotError):
    """Flow files are invalid; `problems` holds every problem found, each already a full sentence."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a flow file, with where it is and how to fix it."""

    message: str
    file: str
    line: int
    where: str = ""  # "flow/step", e.g. "main/menu" or "track/#2"
    fix: str = ""
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f" {self.where}:" if self.where else ""
        fix = f" — {self.fix}" if self.fix else ""
        tag = "" if self.severity == "error" else f" ({self.severity})"
        return f"{self.file}:{self.line}:{where}{tag} {self.message}{fix}"


class DatabaseError(WabotError):
    """The database cannot be used as it is (unreachable, or its schema is newer than this wabot)."""
