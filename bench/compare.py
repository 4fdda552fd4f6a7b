"""wabot beside the thinnest honest pipeline (bench/thin.py), in one run: CPU per message and latency (issue 14 item 5).

    python3 -m bench.compare                              # 500 and 1,000 msg/s, 30 s each, plain asyncio
    python3 -m bench.compare --rates 1000 --duration 20 --rounds 3 --levels INFO,WARNING

One fake Graph process and one generator process serve every leg; each leg is a fresh server (a fresh SQLite
file) under the same load: wabot with the echo flow (bench/echo/: one text reply per message) on the shipped
defaults (asyncio's own loop, `logging.level` INFO, written to a file), then the thin pipeline, then the next
leg. The robust figure is **CPU per message**: the server process's user + system CPU seconds during the leg
divided by the messages sent, which other processes on the machine do not change much (they change latency).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from .fakegraph import Reply
from .load import Generator, customer_ids
from .report import Result, summarise
from .run import DRAIN_MAX, DRAIN_QUIET, HAVE_UVLOOP, FakeGraph, _cpu, _loop_factory, _machine_busy
from .server import ENV, REPO, SECRET, Server

ECHO = REPO / "bench" / "echo"
RATIO_BAR = 1.25  # issue 14: wabot's CPU per message at most 1.25 × the thin pipeline's


class ThinServer(Server):
    """bench/thin.py in a subprocess, started, watched and stopped like the real server."""

    def command(self) -> list[str]:
        return [sys.executable, "-m", "bench.thin", "--port", str(self.port), "--db", str(self.db),
                "--graph", self.env["WHATSAPP_API_URL"], "--secret", SECRET, "--token", ENV["WHATSAPP_TOKEN"],
                "--phone", ENV["WHATSAPP_PHONE_NUMBER_ID"]]


@dataclass(frozen=True, slots=True)
class Leg:
    name: str  # "wabot INFO", "wabot WARNING", "thin"
    rate: float
    cpu_ms: float  # server CPU milliseconds per message sent
    result: Result


async def _leg(name: str, server: Server, graph: FakeGraph, route: list[Callable[[list[Reply]], None]], *,
               rate: float, duration: float, customers: int, seed: int) -> Leg:
    gen = Generator(server.url + "/webhook/whatsapp", SECRET, customers=customer_ids(customers), seed=seed)
    route[0] = gen.on_replies
    await asyncio.to_thread(server.start)
    try:
        others = [psutil.Process(), psutil.Process(graph.proc.pid)]
        others0 = [_cpu(p) for p in others]
        busy0 = _machine_busy()
        cpu0 = server.cpu_seconds()
        t0 = time.monotonic()
        window = await gen.run(rate=rate, duration=duration)
        deadline = time.monotonic() + DRAIN_MAX
        while gen.unanswered() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            if time.monotonic() - max(gen.last_reply_at, window[1]) > DRAIN_QUIET:
                break
        await asyncio.sleep(0.1)  # the fake Graph flushes every 20 ms
        cpu = server.cpu_seconds()[0] - cpu0[0]
        wall = time.monotonic() - t0
        usage = server.usage(cpu0, wall)
        gen_cpu, graph_cpu = ((_cpu(p) - c0) / wall for p, c0 in zip(others, others0, strict=True))
        foreign = max(0.0, (_machine_busy() - busy0) / wall - usage.cpu - gen_cpu - graph_cpu)
    finally:
        await asyncio.to_thread(server.stop)
    result = summarise(gen, rate=rate, duration=duration, window=window, usage=usage,
                       load_cpu=(gen_cpu, graph_cpu), foreign_cpu=foreign)
    return Leg(name, rate, cpu * 1000 / max(1, result.sent), result)


@dataclass(frozen=True, slots=True)
class Plan:
    rates: list[float]
    duration: float = 30
    rounds: int = 1
    levels: tuple[str, ...] = ("INFO",)
    customers: int | None = None
    uvloop: bool = False


def compare(plan: Plan, *, say: Callable[[str], None] = print) -> list[Leg]:
    """Every leg of the plan, one after the other, with one fake Graph; each leg's row is said as it ends."""
    with tempfile.TemporaryDirectory(prefix="wabot-compare-") as tmp:
        graph = FakeGraph(uvloop=HAVE_UVLOOP)
        try:
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                return runner.run(_all(plan, graph, Path(tmp), say))
        finally:
            graph.stop()


async def _all(args: Plan, graph: FakeGraph, folder: Path, say: Callable[[str], None]) -> list[Leg]:
    route: list[Callable[[list[Reply]], None]] = [lambda replies: None]
    graph.follow(asyncio.get_running_loop(), lambda replies: route[0](replies))
    legs: list[Leg] = []
    n = 0
    for rate in args.rates:
        for _ in range(args.rounds):
            kinds = [*(f"wabot {level}" for level in args.levels), "thin"]
            for name in kinds:
                n += 1
                place = folder / f"leg{n}"
                place.mkdir()
                if name == "thin":
                    server: Server = ThinServer(place, graph_url=graph.url)
                else:
                    server = Server(place, graph_url=graph.url, flows=ECHO, uvloop=args.uvloop,
                                    log_level=name.split()[1])
                leg = await _leg(name, server, graph, route, rate=rate, duration=args.duration,
                                 customers=args.customers or int(rate * 10), seed=n)
                legs.append(leg)
                say(_row(leg))
                if name != "thin" and server.log.exists():
                    say(f"    (log written: {server.log.stat().st_size / max(1, leg.result.sent):.0f} bytes a message)")
    return legs


HEAD = ("| rate /s | server | CPU ms / message | CPU % of a core | e2e p50 / p99 ms | webhook p99 ms |"
        " answered | others' CPU | load (1 min) |\n|---|---|---|---|---|---|---|---|---|")


def _row(leg: Leg) -> str:
    r = leg.result
    return (f"| {leg.rate:g} | {leg.name} | {leg.cpu_ms:.3f} | {r.usage.cpu * 100:.0f}% |"
            f" {r.e2e_p50_ms:.1f} / {r.e2e_p99_ms:.1f} | {r.webhook_p99_ms:.1f} | {r.turns_answered}/{r.sent} |"
            f" {r.foreign_cpu * 100:.0f}% | {psutil.getloadavg()[0]:.1f} |")


def kept_up(leg: Leg) -> bool:
    """Every message answered, e2e p99 within issue 6's bound: a server that fell behind (other processes took
    its core) batches more per loop pass and finishes fewer messages, so its CPU per message is not comparable."""
    return leg.result.passed


def ratios(legs: list[Leg]) -> list[str]:
    """wabot's median CPU per message over the thin pipeline's, per rate and log level, over the legs that kept up."""
    lines: list[str] = []
    for rate in dict.fromkeys(leg.rate for leg in legs):
        at = [leg for leg in legs if leg.rate == rate]
        for name in dict.fromkeys(leg.name for leg in at if leg.name != "thin"):
            mine = [leg.cpu_ms for leg in at if leg.name == name and kept_up(leg)]
            thin = [leg.cpu_ms for leg in at if leg.name == "thin" and kept_up(leg)]
            left_out = sum(1 for leg in at if leg.name in (name, "thin") and not kept_up(leg))
            note = f"; {left_out} leg(s) that fell behind left out" if left_out else ""
            if not mine or not thin:
                lines.append(f"RATIO UNKNOWN: {rate:g} msg/s, {name}: no leg of {name if not mine else 'thin'}"
                             f" kept up{note}")
                continue
            m, t = statistics.median(mine), statistics.median(thin)
            verdict = "MET" if m / t <= RATIO_BAR else "MISSED"
            lines.append(f"RATIO {verdict}: {rate:g} msg/s, {name}: {m:.3f} ms / thin {t:.3f} ms ="
                         f" {m / t:.2f}× (bar ≤ {RATIO_BAR:g}×; medians of {len(mine)} and {len(thin)} legs{note})")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rates", type=lambda s: [float(r) for r in s.split(",")], default=[500.0, 1000.0])
    p.add_argument("--duration", type=float, default=30, help="seconds of sending per leg (default 30)")
    p.add_argument("--rounds", type=int, default=1, help="legs of each kind per rate; the ratio takes the medians")
    p.add_argument("--levels", type=lambda s: s.split(","), default=["INFO"],
                   help="wabot's logging.level, one leg each (default INFO, the shipped one; e.g. INFO,WARNING)")
    p.add_argument("--customers", type=int, help="distinct customers (default: rate × 10)")
    p.add_argument("--uvloop", action="store_true", help="wabot on uvloop (default: asyncio's own loop, shipped)")
    args = p.parse_args(argv)
    def say(line: str) -> None:
        print(line, flush=True)

    say(f"machine: {psutil.cpu_count()} CPUs; load average {' '.join(f'{x:.2f}' for x in psutil.getloadavg())}")
    say(HEAD)
    legs = compare(Plan(args.rates, args.duration, args.rounds, tuple(args.levels), args.customers, args.uvloop),
                   say=say)
    verdicts = ratios(legs)
    for line in verdicts:
        say(line)
    say(f"load average after: {' '.join(f'{x:.2f}' for x in psutil.getloadavg())}")
    return 0 if all(line.startswith("RATIO MET") for line in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
