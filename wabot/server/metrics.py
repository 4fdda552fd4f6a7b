"""Prometheus metrics: a typed facade over one registry per app, and the GET /metrics handler.

The rest of wabot calls `Metrics` methods and never touches prometheus objects. Gauges that
describe the database (conversations, handoffs, the outbox's oldest message) are read when
/metrics is scraped, so the hot path only bumps counters.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from wabot.db.base import DB_ERRORS, Database
from wabot.db.store import OutRow
from wabot.state import HANDOFF, HTTP, WAITING
from wabot.whatsapp import inbound
from wabot.whatsapp.graph import ADVICE, AUTH_CODES, INVALID_PARAMETER, PERMISSION_CODES, RETRY_CODES, WINDOW_CLOSED
from wabot.whatsapp.inbound import MEDIA_KINDS

if TYPE_CHECKING:
    from wabot.server.outbox import Sender

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Meta asks for a median webhook answer under 250 ms and fewer than 1 % over 1 s.
WEBHOOK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
END_TO_END_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
REJECTIONS = ("signature", "too_large", "too_many", "bad_json", "bad_shape", "slow_body", "store_failed", "busy")
# Label values taken from Meta's data come from these closed sets, anything else counts as "other": a signed
# payload must not be able to create a time series per value it makes up (issue 16 item 13).
KNOWN_CODES = frozenset({*AUTH_CODES, *RETRY_CODES, *PERMISSION_CODES, INVALID_PARAMETER, WINDOW_CLOSED, *ADVICE})
STATUS_LABELS = frozenset({"sent", "delivered", "read", "failed", "deleted", "warning", "played"})
TYPE_LABELS = frozenset({*MEDIA_KINDS, "text", "interactive", "button", "location", "contacts", "reaction", "order",
                         "system", "unsupported", "request_welcome", "unknown"})


class Metrics:
    """Everything wabot counts, in its own registry (so tests can build several apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.last_store_failure: tuple[float, str] | None = None  # (when, why) a webhook last answered 503
        r = self.registry
        self._received = Counter(
            "wabot_messages_received", "Inbound messages stored (duplicates not counted), by type.", ["type"],
            registry=r,
        )
        self._statuses = Counter(
            "wabot_statuses_received", "Delivery statuses received from WhatsApp, by status.", ["status"], registry=r
        )
        self._sent = Counter("wabot_replies_sent", "Replies accepted by the Graph API.", registry=r)
        self._dry_run = Counter("wabot_replies_dry_run", "Replies written to the log instead of sent (dry-run mode).",
                                registry=r)
        self._failed = Counter("wabot_replies_failed", "Replies given up on for good.", registry=r)
        self._graph_errors = Counter("wabot_graph_errors", "Graph API errors on sends, by error code.", ["code"],
                                     registry=r)
        self._retries = Counter("wabot_send_retries", "Sends scheduled for another attempt.", registry=r)
        self._rejected = Counter("wabot_webhook_rejected", "Webhook POSTs refused, by reason.", ["reason"],
                                 registry=r)
        self._webhook = Histogram("wabot_webhook_seconds", "Time to answer a webhook POST.",
                                  buckets=WEBHOOK_BUCKETS, registry=r)
        self._end_to_end = Histogram(
            "wabot_end_to_end_seconds", "From an inbound message's webhook to each of its replies accepted by Graph.",
            buckets=END_TO_END_BUCKETS, registry=r,
        )
        self._depth = Gauge("wabot_outbox_depth", "Replies queued in the outbox, not yet sent.", registry=r)
        self._oldest = Gauge("wabot_outbox_oldest_seconds", "Age of the oldest queued reply (0 when none).",
                             registry=r)
        self._active = Gauge(
            "wabot_conversations_active", "Conversations in progress (waiting for the customer or an http step).",
            registry=r,
        )
        self._handoffs = Gauge("wabot_handoffs_open", "Conversations waiting for a person.", registry=r)
        self._retrying = Gauge("wabot_outbox_retrying", "Replies that failed for a passing reason and will be tried "
                               "again (a Graph outage shows here).", registry=r)
        self._paused = Gauge("wabot_sending_paused", "1 while sending is paused because the token was refused.",
                             registry=r)
        # Label children are looked up once: `labels()` takes a lock and builds a tuple on every call.
        self._by_type: dict[str, Counter] = {}
        self._by_status: dict[str, Counter] = {}
        self._by_reason = {reason: self._rejected.labels(reason) for reason in REJECTIONS}
        self._arrived: dict[int, float] = {}  # inbox seq -> perf_counter() at the webhook
        self._waiting: dict[int, float] = {}  # outbox row id -> perf_counter() of its inbound message
        self._store: Database | None = None
        self._sender: Sender | None = None

    # --- the webhook ----------------------------------------------------------------------------

    def store_failed(self, why: str) -> None:
        """A webhook could not be stored (503): /readyz reports it for a while (issue 16 item 10)."""
        self.last_store_failure = (time.time(), why)

    def rejected(self, reason: str) -> None:
        """A webhook POST refused: one of REJECTIONS."""
        child = self._by_reason.get(reason)
        (child or self._rejected.labels(reason)).inc()

    def recorded(
        self, fresh: Sequence[tuple[int, inbound.Message]], statuses: Sequence[inbound.Status], *, at: float
    ) -> None:
        """A webhook's new messages and its statuses are stored; `at` is perf_counter() when it arrived."""
        for seq, message in fresh:
            kind = message.type if message.type in TYPE_LABELS else "other"
            child = self._by_type.get(kind)
            if child is None:
                child = self._by_type[kind] = self._received.labels(kind)
            child.inc()
            self._arrived[seq] = at
        for status in statuses:
            said = status.status if status.status in STATUS_LABELS else "other"
            child = self._by_status.get(said)
            if child is None:
                child = self._by_status[said] = self._statuses.labels(said)
            child.inc()

    def answered(self, seconds: float) -> None:
        """A webhook POST was answered after `seconds`."""
        self._webhook.observe(seconds)

    # --- the dispatcher -------------------------------------------------------------------------

    def arrival(self, seq: int | None) -> float | None:
        """When inbound message `seq` reached the webhook in this process (None after a restart); forgets it."""
        return self._arrived.pop(seq, None) if seq is not None else None

    def awaiting(self, rows: Iterable[OutRow], *, arrived: float | None) -> None:
        """The replies to a message that arrived at `arrived` are queued."""
        if arrived is not None:
            for row in rows:
                self._waiting[row.id] = arrived

    # --- the sender -----------------------------------------------------------------------------

    def sent(self, row_id: int) -> None:
        """Reply `row_id` was accepted by the Graph API."""
        self._sent.inc()
        arrived = self._waiting.pop(row_id, None)
        if arrived is not None:
            self._end_to_end.observe(time.perf_counter() - arrived)

    def dry_run(self, row_id: int) -> None:
        """Reply `row_id` was only logged: dry-run mode."""
        self._dry_run.inc()
        self._waiting.pop(row_id, None)

    def failed(self, row_id: int) -> None:
        """Reply `row_id` will never be sent."""
        self._failed.inc()
        self._waiting.pop(row_id, None)

    def graph_error(self, code: int | None) -> None:
        """The Graph API refused a send with `code` (None: no answer, e.g. a timeout)."""
        # Graph's codes are numbers Meta's answers carry: bounded to the ones wabot knows, plus "other"
        label = "none" if code is None else str(code) if code in KNOWN_CODES else "other"
        self._graph_errors.labels(label).inc()

    def retried(self) -> None:
        self._retries.inc()

    # --- scrape time ----------------------------------------------------------------------------

    def watch(self, *, store: Database, sender: Sender) -> None:
        """Read the outbox and the conversations from these when scraped."""
        self._store = store
        self._sender = sender
        self._depth.set_function(lambda: sender.depth)
        self._retrying.set_function(lambda: sender.retrying)
        self._paused.set_function(lambda: 1 if sender.paused else 0)

    async def refresh(self, *, now: float | None = None) -> None:
        """Read the database gauges; on a database error keep the last values and log why."""
        store = self._store
        if store is None:
            return
        try:
            oldest = await store.oldest_queued()
            handoffs = await store.count_status(HANDOFF)
            active = await store.count_status(WAITING) + await store.count_status(HTTP)
        except DB_ERRORS as exc:
            log.warning("metrics: the database cannot be read: %s", exc)
            return
        now = time.time() if now is None else now
        self._oldest.set(max(0.0, now - oldest) if oldest is not None else 0.0)
        self._handoffs.set(handoffs)
        self._active.set(active)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


METRICS = web.AppKey("metrics", Metrics)


async def handler(request: web.Request) -> web.Response:
    """GET /metrics in the Prometheus text format."""
    metrics = request.app[METRICS]
    await metrics.refresh()
    return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})
