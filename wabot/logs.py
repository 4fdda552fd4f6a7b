"""Logging set-up: readable text for people, or one JSON object per line for log collectors."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable

_masking = True  # set once by `setup` from logging.mask_numbers


def mask(customer: str) -> str:
    """84912345678 -> 8491****678: enough to tell customers apart in a log, not to call them.

    With logging.mask_numbers off (`setup(mask_numbers=False)`), the number as it is.
    """
    if not _masking:
        return customer
    if len(customer) <= 6:
        return "*" * len(customer)
    return customer[:4] + "*" * (len(customer) - 7) + customer[-3:]


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


def setup(level: str = "INFO", fmt: str = "text", *, mask_numbers: bool = True) -> None:
    global _masking
    _masking = mask_numbers
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(Repeats())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
