"""Logging set-up: readable text for people, or one JSON object per line for log collectors."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

_masking = True  # set once by `setup` from logging.mask_numbers
_hidden: tuple[str, ...] = ()  # secret values never written to a log, whatever a flow or a library puts there


def mask(customer: str) -> str:
    """84912345678 -> 8491****678: enough to tell customers apart in a log, not to call them.

    With logging.mask_numbers off (`setup(mask_numbers=False)`), the number as it is.
    """
    if not _masking:
        return customer
    if len(customer) <= 6:
        return "*" * len(customer)
    return customer[:4] + "*" * (len(customer) - 7) + customer[-3:]


_NUMBER = re.compile(r"(?<!\d)\d{8,15}(?!\d)")  # a phone number written inside a text (E.164 has at most 15)


def mask_text(text: str) -> str:
    """`text` with every phone-number-like run of digits masked, as `mask` does (a reply naming a customer)."""
    return _NUMBER.sub(lambda m: mask(m.group(0)), text) if _masking else text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Readable lines whose times carry their zone (2026-11-25 13:18:12.345+07:00), as `wabot history` shows."""

    second = -1
    date_zone = ("", "")  # "2026-11-25 13:18:12", "+07:00" of `second`: worked out once a second, not per line

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self.second:
            text = datetime.fromtimestamp(second).astimezone().isoformat(sep=" ", timespec="seconds")
            self.second, self.date_zone = second, (text[:19], text[19:])
        date, zone = self.date_zone
        return f"{date}.{int(record.msecs):03d}{zone}"

    def format(self, record: logging.LogRecord) -> str:
        """"%(asctime)s %(levelname)-7s %(name)s: %(message)s" and any traceback, as logging.Formatter writes it,
        without its %-style machinery (two such lines a message at INFO: issue 14 item 5)."""
        record.message = record.getMessage()
        record.asctime = self.formatTime(record)
        line = f"{record.asctime} {record.levelname:<7} {record.name}: {record.message}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        for extra in (record.exc_text, record.stack_info and self.formatStack(record.stack_info)):
            if extra:
                line = f"{line}\n{extra}" if line[-1:] != "\n" else line + extra
        return line


class Repeats(logging.Filter):
    """One line per cause per interval: a flood (slow clients, a full file table) must not fill the disk.

    A cause is the logger and the message's format; when it comes back after the interval, the line says
    how many were left out.
    """

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self.seen: dict[tuple[str, str], tuple[float, int]] = {}  # cause -> (when last shown, left out since)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        cause = (record.name, str(record.msg))
        now = self.clock()
        shown, left_out = self.seen.get(cause, (now - self.interval, 0))
        if now - shown < self.interval:
            self.seen[cause] = (shown, left_out + 1)
            return False
        if len(self.seen) > 1000:
            self.seen.clear()
        self.seen[cause] = (now, 0)
        if left_out:
            record.msg = f"{record.msg} ({left_out} more like this in the last {now - shown:.0f} s)"
        return True


def hide_secrets(record: logging.LogRecord) -> bool:
    """Replace every secret value in the line with ***: a flow may put an allowed token into a reply."""
    if _hidden:
        message = record.getMessage()
        for secret in _hidden:
            if secret in message:
                message = message.replace(secret, "***")
        record.msg, record.args = message, None  # formatted once: the formatter does not format it again
    return True


def one_line_bad_requests(record: logging.LogRecord) -> bool:
    """aiohttp logs a malformed request (anyone can send one) at ERROR with a traceback: make it one WARNING line."""
    exc = record.exc_info[1] if record.exc_info else None
    if record.name == "aiohttp.server" and exc is not None and type(exc).__name__ in _BAD_HTTP:
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.msg, record.args = "malformed HTTP request refused: %s", (str(exc).splitlines()[0][:200],)
        record.exc_info = record.exc_text = None
    return True


_BAD_HTTP = frozenset({"BadHttpMessage", "BadStatusLine", "LineTooLong", "InvalidHeader", "BadHttpMethod",
                       "TransferEncodingError", "ContentLengthError", "InvalidURLError"})


class Lines(logging.StreamHandler):  # type: ignore[type-arg]  # generic only in the stubs
    """One line a record on a stream, through wabot's filters; at INFO a message writes two lines, so the
    filters, the format and the write run in one call instead of the logging module's chain (issue 14 item 5)."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.repeats = Repeats()

    def handle(self, record: logging.LogRecord) -> bool:
        if not (one_line_bad_requests(record) and hide_secrets(record) and self.repeats.filter(record)):
            return False
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return True
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            try:
                self.stream.write(line)
                if not getattr(self.stream, "line_buffering", False):  # stderr is: the newline flushed it
                    self.stream.flush()
            except Exception:
                self.handleError(record)
        return True


def setup(
    level: str = "INFO", fmt: str = "text", *, mask_numbers: bool = True, secrets: Iterable[str] = ()
) -> None:
    """Log to stderr; `secrets` are values (tokens, passwords) that never appear in a line, whoever logs them."""
    global _masking, _hidden
    _masking = mask_numbers
    _hidden = tuple(sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True))  # longest first
    handler = Lines(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    # no line shows the caller's file, line, thread or process: do not look them up for every record
    # (the logging module's documented switches; findCaller walks the stack each time)
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    if sys.version_info >= (3, 12):  # nor the asyncio task (asyncio.current_task() for every record)
        logging.logAsyncioTasks = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
