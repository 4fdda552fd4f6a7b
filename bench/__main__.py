"""python -m bench: load wabot with signed webhooks at a fixed rate and report latency, CPU and memory."""

from __future__ import annotations

import argparse
import os
import pstats
import sys
from pathlib import Path

from .profile import summary
from .report import E2E_P99_MS, RSS_TARGET_MB, TABLE_HEAD, TARGET_RATE, Result, verdict
from .run import Options, run
from .server import REPO
from .startup import measure


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--rate", type=float, default=TARGET_RATE, help="inbound messages per second (default 1000)")
    p.add_argument("--duration", type=float, default=60, help="seconds of sending (default 60)")
    p.add_argument("--customers", type=int, help="distinct customers (default: rate × 10)")
    p.add_argument("--series", help="comma-separated rates to run one after another, e.g. 200,400,600,800,1000")
    p.add_argument("--prefill", type=int, default=0, help="customers with stored state before the run (e.g. 100000)")
    p.add_argument("--startup", type=int, metavar="FILES", help="only time start-up with this many flow files")
    p.add_argument("--flows", type=Path, default=REPO / "flows", help="flow folder (default: the shipped demo)")
    p.add_argument("--send-rate", type=float, default=20000, help="outbox.rate_per_second for the server")
    p.add_argument("--asyncio", action="store_true", default=os.environ.get("WABOT_UVLOOP") == "0",
                   help="run the server on asyncio's own loop, not uvloop (or WABOT_UVLOOP=0): the plain install")
    p.add_argument("--log-level", default="WARNING", help="the server's logging.level (default WARNING; shipped: INFO)")
    p.add_argument("--profile", type=Path, help="run the server under cProfile and write the profile here")
    p.add_argument("--pyspy", type=Path, help="sample the server with py-spy during the load (collapsed stacks)")
    p.add_argument("--campaign", type=int, default=0, metavar="RECIPIENTS",
                   help="a campaign of this many recipients runs beside the load (issue 13; with --send-rate 1000)")
    args = p.parse_args(argv)

    if args.startup:
        for files in (3, args.startup):
            fastest, median = measure(files, uvloop=not args.asyncio)
            print(f"start-up with {files} flow files: fastest {fastest * 1000:.0f} ms, median {median * 1000:.0f} ms")
        ok = median <= 1.0
        print(f"TARGET {'MET' if ok else 'MISSED'}: start-up {median:.2f} s with {args.startup} flow files (≤ 1 s)")
        return 0 if ok else 1

    rates = [float(r) for r in args.series.split(",")] if args.series else [args.rate]
    results: list[Result] = []
    for rate in rates:
        opts = Options(rate=rate, duration=args.duration, customers=args.customers, prefill=args.prefill,
                       flows=args.flows, send_rate=args.send_rate, uvloop=not args.asyncio, profile=args.profile,
                       pyspy=args.pyspy, campaign=args.campaign, log_level=args.log_level)
        result = run(opts)
        results.append(result)
        print("\n".join(result.lines()), flush=True)
    if args.profile:
        stats = pstats.Stats(str(args.profile))
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(40)
    if args.pyspy:
        print("\n".join(summary(args.pyspy)))
    if len(results) > 1:
        print(TABLE_HEAD)
        for r in results:
            print(r.row())
        best = max((r.rate for r in results if r.passed), default=0.0)
        print(f"highest rate with every reply and e2e p99 ≤ {E2E_P99_MS:g} ms: {best:g} msg/s")
    if args.prefill:
        peak = max(r.usage.peak_rss_mb for r in results)
        met = "MET" if peak <= RSS_TARGET_MB else "MISSED"
        print(f"MEMORY TARGET {met}: peak RSS {peak:.0f} MB with {args.prefill} customers in the database"
              f" (≤ {RSS_TARGET_MB:g} MB)")
    final = next((r for r in results if r.rate >= TARGET_RATE), results[-1])
    print(verdict(final))
    return 0 if final.passed else 1


if __name__ == "__main__":
    sys.exit(main())
