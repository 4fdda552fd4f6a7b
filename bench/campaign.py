"""Issue 13's benchmark: a campaign sent while customers write — its pace, the replies' latency, memory.

`python -m bench --campaign 100000 --send-rate 1000 --rate 200` creates a campaign of that many recipients in the
server's database before it starts (as `wabot campaign send` would), then runs the usual inbound load. The
fake Graph sees every send; this module counts the campaign's templates per second while the load runs.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from .fakegraph import Reply
from .report import percentile

FIRST = 84_300_000_000  # campaign numbers: a range the load generator's customers never use
PACE_TOLERANCE = 0.05  # issue 13: the outbox's pace held within 5 %


def prepare(db: Path, count: int) -> None:
    """Write a running campaign of `count` recipients into the server's database (migrating it first)."""
    from wabot.db.store import Store

    async def add() -> None:
        store = await Store.open(db)
        try:
            await store.campaigns.add(
                name="bench", template="bench_promo", language="vi",
                recipients=[(str(FIRST + i), [f"Khách {i}", "20%"]) for i in range(count)], invalid=[],
                now=time.time())
        finally:
            await store.close()

    asyncio.run(add())


@dataclass
class Pace:
    """Every send the fake Graph saw, by second: the campaign's templates and everything else."""

    sends: list[float] = field(default_factory=list)  # arrival times of every message (reads excluded)
    campaign: list[float] = field(default_factory=list)

    def on_replies(self, replies: list[Reply]) -> None:
        for r in replies:
            if r.kind == "read":
                continue
            self.sends.append(r.at)
            if r.kind == "template":
                self.campaign.append(r.at)

    def lines(self, *, window: tuple[float, float], send_rate: float) -> list[str]:
        """Per-second counts over the load window (its first and last second left out: partial)."""
        start, end = window
        seconds = range(int(start) + 1, int(end))
        if not seconds:
            return ["campaign: the run was too short to measure a pace"]
        total = [float(sum(1 for t in self.sends if s <= t < s + 1)) for s in seconds]
        promo = [sum(1 for t in self.campaign if s <= t < s + 1) for s in seconds]
        mean = sum(total) / len(total)
        worst = max(abs(n - send_rate) for n in total) / send_rate
        ok = worst <= PACE_TOLERANCE
        return [
            f"campaign: {len(self.campaign)} templates sent; during the load {sum(promo) / len(promo):.0f}/s "
            f"of {mean:.0f}/s in all (outbox.rate_per_second {send_rate:g})",
            f"pace: every second within {worst * 100:.1f} % of the rate (p5 {percentile(total, 5):.0f}/s, "
            f"p95 {percentile(total, 95):.0f}/s) — {'MET' if ok else 'MISSED'} (≤ {PACE_TOLERANCE * 100:g} %)",
            "farthest seconds: " + ", ".join(f"{n:.0f} at +{i + 1} s" for i, n in sorted(
                enumerate(total), key=lambda x: -abs(x[1] - send_rate))[:5]),
        ]
