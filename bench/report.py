"""Numbers from one run: percentiles, counts, the pass/fail rule, and how they print."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from .load import Generator, Turn
from .server import Usage

TARGET_RATE = 1000.0
E2E_P99_MS = 250.0
WEBHOOK_P99_MS = 50.0
RSS_TARGET_MB = 150.0  # with 100,000 customers' state in the database


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of `values` (q in 0..100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


@dataclass(frozen=True, slots=True)
class Result:
    rate: float
    duration: float
    customers: int
    sent: int
    statuses: dict[int, int]
    late: int  # sends more than load.LATE_SECONDS behind schedule
    lag_p99_ms: float
    webhook_p50_ms: float
    webhook_p99_ms: float
    e2e_p50_ms: float
    e2e_p90_ms: float
    e2e_p99_ms: float
    e2e_max_ms: float
    turns_answered: int
    replies: int
    stray: int
    throughput: float  # inbound messages per second actually sent
    reply_rate: float  # replies per second received at the fake Graph
    usage: Usage
    load_cpu: tuple[float, float]  # generator process, fake Graph process: CPU seconds per second
    foreign_cpu: float  # other processes on the machine during the run: CPU seconds per second
    moves: dict[str, int]
    kinds: dict[str, int]

    @property
    def all_ok(self) -> bool:
        return self.sent > 0 and self.statuses.get(200, 0) == self.sent and self.turns_answered == self.sent

    @property
    def passed(self) -> bool:
        """Every reply arrived and end-to-end p99 is within the target."""
        return self.all_ok and self.e2e_p99_ms <= E2E_P99_MS

    def lines(self) -> list[str]:
        s = ", ".join(f"{k or 'error'}: {v}" for k, v in sorted(self.statuses.items()))
        u = self.usage
        return [
            f"rate {self.rate:g}/s for {self.duration:g} s, {self.customers} customers",
            f"  messages sent      {self.sent} ({self.throughput:.0f}/s achieved; {self.late} late >10 ms,"
            f" schedule lag p99 {self.lag_p99_ms:.1f} ms)",
            f"  HTTP statuses      {s}",
            f"  webhook answer     p50 {self.webhook_p50_ms:.1f} ms  p99 {self.webhook_p99_ms:.1f} ms",
            f"  end to end         p50 {self.e2e_p50_ms:.1f}  p90 {self.e2e_p90_ms:.1f}  p99 {self.e2e_p99_ms:.1f}"
            f"  max {self.e2e_max_ms:.1f} ms",
            f"  replies            {self.turns_answered}/{self.sent} turns answered; {self.replies} replies"
            f" ({self.reply_rate:.0f}/s, {self.replies / max(1, self.sent):.2f} per turn); {self.stray} stray",
            f"  walk               sent {_counts(self.moves)}; bot sent {_counts(self.kinds)}",
            f"  server             CPU {u.cpu * 100:.0f}% of one core ({u.sys * 100:.0f}% in the kernel),"
            f" RSS {u.rss_mb:.0f} MB"
            f" (peak {u.peak_rss_mb:.0f} MB); generator {self.load_cpu[0] * 100:.0f}%,"
            f" fake Graph {self.load_cpu[1] * 100:.0f}%; other processes {self.foreign_cpu * 100:.0f}%",
        ]

    def row(self) -> str:
        """One Markdown table row."""
        ok = "yes" if self.passed else "no"
        return (
            f"| {self.rate:g} | {self.throughput:.0f} | {self.webhook_p50_ms:.1f} / {self.webhook_p99_ms:.1f} |"
            f" {self.e2e_p50_ms:.1f} / {self.e2e_p90_ms:.1f} / {self.e2e_p99_ms:.1f} / {self.e2e_max_ms:.0f} |"
            f" {self.turns_answered}/{self.sent} | {self.usage.cpu * 100:.0f}% | {self.foreign_cpu * 100:.0f}% |"
            f" {self.usage.peak_rss_mb:.0f} | {ok} |"
        )


TABLE_HEAD = (
    "| rate /s | achieved /s | webhook p50 / p99 ms | e2e p50 / p90 / p99 / max ms | turns answered |"
    " server CPU | others' CPU | peak RSS MB | pass |\n|---|---|---|---|---|---|---|---|---|"
)


def summarise(
    gen: Generator, *, rate: float, duration: float, window: tuple[float, float], usage: Usage,
    load_cpu: tuple[float, float], foreign_cpu: float,
) -> Result:
    turns: list[Turn] = gen.turns
    statuses = Counter(t.status for t in turns)
    lags = [max(0.0, t.sent - t.due) for t in turns]
    webhook = [(t.answered - t.sent) * 1000 for t in turns if t.status == 200]
    e2e = [(t.first_reply - t.sent) * 1000 for t in turns if t.replies]
    replies = sum(t.replies for t in turns)
    start, end = window
    wall = max(end - start, 1e-9)
    reply_wall = max(gen.last_reply_at - start, wall)
    return Result(
        rate=rate, duration=duration, customers=len(gen.customers), sent=len(turns), statuses=dict(statuses),
        late=sum(1 for lag in lags if lag > 0.010), lag_p99_ms=percentile(lags, 99) * 1000,
        webhook_p50_ms=percentile(webhook, 50), webhook_p99_ms=percentile(webhook, 99),
        e2e_p50_ms=percentile(e2e, 50), e2e_p90_ms=percentile(e2e, 90), e2e_p99_ms=percentile(e2e, 99),
        e2e_max_ms=max(e2e, default=0.0), turns_answered=sum(1 for t in turns if t.replies), replies=replies,
        stray=gen.stray, throughput=len(turns) / wall, reply_rate=replies / reply_wall, usage=usage,
        load_cpu=load_cpu, foreign_cpu=foreign_cpu, moves=dict(gen.moves), kinds=dict(gen.kinds),
    )


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(counter.items(), key=lambda kv: -kv[1]))


def verdict(result: Result) -> str:
    """The one-line answer to issue 6's first target."""
    gaps: list[str] = []
    if result.rate < TARGET_RATE:
        gaps.append(f"the run was at {result.rate:g} msg/s, not {TARGET_RATE:g}")
    if result.throughput < 0.98 * result.rate:
        gaps.append(f"only {result.throughput:.0f} msg/s were sent")
    not_200 = result.sent - result.statuses.get(200, 0)
    if not_200:
        gaps.append(f"{not_200} webhooks not answered 200")
    missing = result.sent - result.turns_answered
    if missing:
        gaps.append(f"{missing} of {result.sent} messages got no reply")
    if result.e2e_p99_ms > E2E_P99_MS:
        gaps.append(f"end-to-end p99 {result.e2e_p99_ms:.0f} ms > {E2E_P99_MS:g} ms")
    if result.webhook_p99_ms > WEBHOOK_P99_MS:
        gaps.append(f"webhook p99 {result.webhook_p99_ms:.0f} ms > {WEBHOOK_P99_MS:g} ms")
    if gaps:
        return "TARGET MISSED by: " + "; ".join(gaps)
    return (
        f"TARGET MET: {result.rate:g} msg/s for {result.duration:g} s, {result.customers} customers, every reply"
        f" arrived, e2e p99 {result.e2e_p99_ms:.0f} ms, webhook p99 {result.webhook_p99_ms:.0f} ms"
    )
