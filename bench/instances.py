"""python -m bench.instances: 1, 2, 3 wabot instances on one PostgreSQL (and 1 on SQLite) under the same load.

Each configuration runs a short series of rates; a load balancer in the generator posts each webhook to a random
live instance. For each run: what the generator saw (bench/report.py), the CPU of every wabot instance together
and of PostgreSQL's processes, per message. `--kill` adds, for each configuration of two instances or more, a run
where one instance gets `kill -9` mid-run: how long its customers waited and how many replies went out twice.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil  # type: ignore[import-untyped]
import yaml

from . import pg
from .load import Generator, customer_ids
from .report import E2E_P99_MS, Result, percentile, summarise
from .run import FakeGraph, _cpu, _loop_factory, _machine_busy
from .server import SECRET, Server, Usage

DRAIN_QUIET = 3.0  # after the last send, stop waiting once no reply came for this long
DRAIN_MAX = 30.0
SETTLE = 1.0  # SQLite: a turn's last replies have come once nothing came for this long


@dataclass(frozen=True, slots=True)
class Setup:
    """One configuration: how many instances, on which database."""

    instances: int
    store: str  # "postgresql" | "sqlite"

    def __str__(self) -> str:
        return f"{self.instances} × {'PostgreSQL' if self.store == 'postgresql' else 'SQLite'}"


@dataclass(frozen=True, slots=True)
class Options:
    rate: float
    duration: float
    customers: int | None = None
    lease: float = 10.0  # database.lease_seconds (the shipped default)
    kill_at: float | None = None  # seconds into the load to kill -9 the first instance; None: no kill
    send_rate: float = 20000
    uvloop: bool = True
    admin: str = pg.ADMIN_URL
    seed: int = 1


@dataclass(frozen=True, slots=True)
class Killed:
    """What one instance's kill -9 cost."""

    at: float  # seconds into the load
    waiting: int  # messages accepted but not answered when it died
    recovered: float  # seconds from the kill until the last message sent around it (−1 s .. +lease) was answered
    slow: int  # of those, how many waited more than a second
    after_p99_ms: float  # e2e p99 of the messages sent in the lease after the kill
    resent: int  # replies the fake Graph received more often than the outbox holds them
    unanswered: int

    def line(self) -> str:
        return (f"  kill -9            at {self.at:.1f} s: {self.waiting} messages waiting; every message sent"
                f" around it answered {self.recovered:.2f} s after the kill ({self.slow} waited > 1 s);"
                f" e2e p99 of those sent in the lease after it {self.after_p99_ms:.0f} ms;"
                f" {self.resent} replies resent; {self.unanswered} never answered")


@dataclass(frozen=True, slots=True)
class Measured:
    setup: Setup
    result: Result
    wall: float  # seconds from the first send until the last reply came (the CPU below is over this time)
    wabot_cpu: float  # CPU seconds, all instances together
    pg_cpu: float | None  # the bench database's backends (None: SQLite, or PostgreSQL on another machine)
    pg_background: float | None  # the server's background writers (shared with other users of that server)
    killed: Killed | None
    left: str  # what the database still held to do when the load was over ("" when it held nothing)

    def per_message_ms(self, cpu: float | None) -> str:
        return "–" if cpu is None else f"{cpu * 1000 / max(1, self.result.sent):.2f}"

    def share(self, cpu: float | None) -> str:
        """CPU seconds as the share of one core over the run."""
        return "–" if cpu is None else f"{cpu / self.wall * 100:.0f}%"

    def row(self) -> str:
        r = self.result
        return (f"| {self.setup} | {r.rate:g} | {r.throughput:.0f} | {r.webhook_p99_ms:.1f} |"
                f" {r.e2e_p50_ms:.1f} / {r.e2e_p99_ms:.1f} | {r.turns_answered}/{r.sent} |"
                f" {self.share(self.wabot_cpu)} | {self.share(self.pg_cpu)} | {self.per_message_ms(self.wabot_cpu)} |"
                f" {self.per_message_ms(self.pg_cpu)} | {r.foreign_cpu * 100:.0f}% | {'yes' if r.passed else 'no'} |")

    def lines(self) -> list[str]:
        out = [f"{self.setup}:", *self.result.lines()[1:-1]]
        r = self.result
        out.append(f"  CPU                wabot {self.share(self.wabot_cpu)} of one core (all instances),"
                   f" {self.per_message_ms(self.wabot_cpu)} ms per message; PostgreSQL backends"
                   f" {self.share(self.pg_cpu)}, {self.per_message_ms(self.pg_cpu)} ms per message, its background"
                   f" writers {self.share(self.pg_background)}; generator {r.load_cpu[0] * 100:.0f}%,"
                   f" fake Graph {r.load_cpu[1] * 100:.0f}%, other processes {r.foreign_cpu * 100:.0f}%")
        if self.killed is not None:
            out.append(self.killed.line())
        if self.left:
            out.append(f"  left undone        {self.left}")
        return out


TABLE_HEAD = (
    "| instances | rate /s | achieved /s | webhook p99 ms | e2e p50 / p99 ms | answered | wabot CPU (all) |"
    " PostgreSQL CPU | wabot CPU ms/msg | PostgreSQL CPU ms/msg | others' CPU | pass |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|"
)


class Balanced(Generator):
    """The generator behind a load balancer: each webhook to a random live instance, retried on another if refused."""

    def __init__(self, urls: Sequence[str], *, customers: list[str], seed: int) -> None:
        super().__init__(urls[0], SECRET, customers=customers, seed=seed)
        self.live = list(urls)
        self.pick = random.Random(seed + 1)

    async def post(self, session: aiohttp.ClientSession, body: bytes, headers: dict[str, str]) -> int:
        for _ in range(4):  # as Meta would deliver again; a balancer with health checks drops a dead instance
            url = self.pick.choice(self.live)
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    return resp.status
            except (aiohttp.ClientError, TimeoutError):
                if url in self.live and len(self.live) > 1:
                    self.live.remove(url)
        return 0


def run(setup: Setup, opts: Options, *, say: Callable[[str], None] = print) -> Measured:
    """Start the fake Graph and the instances, send the load (killing one if asked), stop everything."""
    customers = opts.customers or max(100, int(opts.rate * 10))
    db = pg.Database(opts.admin) if setup.store == "postgresql" else None
    with tempfile.TemporaryDirectory(prefix="wabot-instances-") as tmp:
        graph = FakeGraph(uvloop=_loop_factory() is not None)
        servers: list[Server] = []
        try:
            for i in range(setup.instances):
                folder = Path(tmp) / f"i{i}"
                folder.mkdir()
                server = Server(folder, graph_url=graph.url, send_rate=opts.send_rate, uvloop=opts.uvloop,
                                db=Path(tmp) / "bench.db")
                if db is not None:
                    server.env["WABOT_DATABASE_URL"] = db.url
                    _set_lease(server.config, opts.lease)
                servers.append(server)
                server.start()  # one after the other: the first one migrates the database
            gen = Balanced([s.url + "/webhook/whatsapp" for s in servers], customers=customer_ids(customers),
                           seed=opts.seed)
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                measured = runner.run(_load(setup, opts, gen, graph, servers, db))
        finally:
            codes = _stop(servers)
            graph.stop()
            if db is not None:
                db.drop()
        for i, (s, code) in enumerate(zip(servers, codes, strict=True)):
            if code not in (0, -15, -9):
                say(f"warning: instance {i} exited with code {code}; its log ends:\n{s.tail(40)}")
            elif tail := s.tail(5):
                say(f"instance {i} log (last lines, WARNING and up):\n{tail}")
        return measured


def _stop(servers: list[Server], timeout: float = 30.0) -> list[int]:
    """SIGTERM to every live instance at once (once: a second one cuts the graceful stop short), then wait."""
    for s in servers:
        if s.proc is not None and s.proc.poll() is None:
            s.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    codes = []
    for s in servers:
        if s.proc is None:
            codes.append(0)
            continue
        try:
            codes.append(s.proc.wait(max(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            s.proc.kill()
            codes.append(s.proc.wait())
    return codes


def _set_lease(config: Path, lease: float) -> None:
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw.setdefault("database", {})["lease_seconds"] = lease
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")


async def _load(setup: Setup, opts: Options, gen: Balanced, graph: FakeGraph, servers: list[Server],
                db: pg.Database | None) -> Measured:
    graph.follow(asyncio.get_running_loop(), gen.on_replies)
    pgcpu = pg.PgCpu(db.name) if db is not None and db.local else None
    if pgcpu:
        pgcpu.sample()
    cpu0 = [s.cpu_seconds()[0] for s in servers]
    cpu_end: dict[int, float] = {}  # instance -> its CPU seconds when it was killed
    others = [psutil.Process(), psutil.Process(graph.proc.pid)]
    others0 = [_cpu(p) for p in others]
    busy0 = _machine_busy()
    t0 = time.monotonic()
    killed_at: float | None = None

    async def kill(at: float) -> None:
        nonlocal killed_at
        await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
        victim = servers[0]
        if pgcpu:
            pgcpu.sample()  # its connections' CPU, before they go
        cpu_end[0] = victim.cpu_seconds()[0]
        assert victim.proc is not None
        victim.proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        with contextlib.suppress(ValueError):
            gen.live.remove(victim.url + "/webhook/whatsapp")  # the balancer's health check notices

    killing = opts.kill_at is not None and len(servers) > 1
    killer = asyncio.create_task(kill(opts.kill_at or 0.0)) if killing else None
    window = await gen.run(rate=opts.rate, duration=opts.duration)
    quiet = DRAIN_QUIET + (opts.lease if killing else 0.0)
    deadline = time.monotonic() + DRAIN_MAX + (opts.lease if killing else 0.0)
    while gen.unanswered() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        if time.monotonic() - max(gen.last_reply_at, window[1]) > quiet:
            break
    while time.monotonic() < deadline:  # every turn has its first reply; let the rest of its replies come
        if db is not None and not await db.count("SELECT COUNT(*) FROM outbox WHERE status = 'queued'"):
            break
        if db is None and time.monotonic() - gen.last_reply_at > SETTLE:
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.1)  # the fake Graph flushes every 20 ms
    if killer is not None:
        await killer
    wall = time.monotonic() - t0
    if pgcpu:
        pgcpu.sample()
    wabot = sum(cpu_end.get(i, s.cpu_seconds()[0]) - cpu0[i] for i, s in enumerate(servers))
    gen_cpu, graph_cpu = (_cpu(p) - c0 for p, c0 in zip(others, others0, strict=True))
    pg_cpu = pgcpu.seconds("backend") if pgcpu else None
    pg_bg = pgcpu.seconds("background") if pgcpu else None
    # whatever else ran on the machine meanwhile (other tests, builds) takes cores from the instances
    foreign = max(0.0, _machine_busy() - busy0 - wabot - gen_cpu - graph_cpu - (pg_cpu or 0.0) - (pg_bg or 0.0))
    result = summarise(gen, rate=opts.rate, duration=opts.duration, window=window,
                       usage=Usage(wabot / wall, 0.0, 0.0, 0.0), load_cpu=(gen_cpu / wall, graph_cpu / wall),
                       foreign_cpu=foreign / wall)
    killed = None
    if killed_at is not None and db is not None:
        killed = await _killed(gen, killed_at, at=killed_at - window[0], lease=opts.lease, db=db)
    left = ""
    if db is not None:
        inbox = await db.count("SELECT COUNT(*) FROM inbox WHERE done = 0")
        queued = await db.count("SELECT COUNT(*) FROM outbox WHERE status = 'queued'")
        left = f"{inbox} messages not processed, {queued} replies queued" if inbox or queued else ""
    return Measured(setup, result, wall, wabot, pg_cpu, pg_bg, killed, left)


async def _killed(gen: Balanced, t: float, *, at: float, lease: float, db: pg.Database) -> Killed:
    """What the kill at monotonic time `t` cost, from the generator's turns and the outbox in the database."""
    accepted = [turn for turn in gen.turns if turn.status == 200]
    waiting = [turn for turn in accepted if turn.sent < t and not (turn.replies and turn.first_reply <= t)]
    around = [turn for turn in accepted if t - 1.0 <= turn.sent <= t + lease or turn in waiting]
    waits = [turn.first_reply - max(turn.sent, t) for turn in around if turn.replies]
    after = [(turn.first_reply - turn.sent) * 1000 for turn in accepted if t < turn.sent <= t + lease and turn.replies]
    sends = sum(n for kind, n in gen.kinds.items() if kind != "read")
    recorded = await db.count("SELECT COUNT(*) FROM outbox WHERE status = 'sent'")
    return Killed(at=at, waiting=len(waiting), recovered=max(waits, default=0.0),
                  slow=sum(1 for w in waits if w > 1.0), after_p99_ms=percentile(after, 99),
                  resent=sends - recorded, unanswered=sum(1 for turn in accepted if not turn.replies))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.instances", description=__doc__)
    p.add_argument("--instances", default="sqlite,1,2,3",
                   help="configurations, comma-separated: a number of instances on PostgreSQL, or 'sqlite' for one"
                        " instance on SQLite (default sqlite,1,2,3)")
    p.add_argument("--series", default="100,200,300,400",
                   help="rates (inbound messages per second) each configuration runs, comma-separated")
    p.add_argument("--duration", type=float, default=20, help="seconds of sending per run (default 20)")
    p.add_argument("--customers", type=int, help="distinct customers (default: rate × 10)")
    p.add_argument("--kill", action="store_true",
                   help="also, for each configuration of 2+ instances, kill -9 one instance a third into a run at"
                        " --kill-rate")
    p.add_argument("--kill-rate", type=float, default=100, help="the rate of the kill runs (default 100)")
    p.add_argument("--lease", type=float, default=10, help="database.lease_seconds (default 10, as shipped)")
    p.add_argument("--postgres", default=pg.ADMIN_URL,
                   help=f"a PostgreSQL server where the bench may create databases (default {pg.ADMIN_URL})")
    p.add_argument("--send-rate", type=float, default=20000, help="outbox.rate_per_second, shared by the instances")
    p.add_argument("--asyncio", action="store_true", help="the instances on asyncio's own loop, not uvloop")
    args = p.parse_args(argv)

    try:
        setups = [Setup(1, "sqlite") if x.strip() == "sqlite" else Setup(int(x), "postgresql")
                  for x in args.instances.split(",")]
        rates = [float(r) for r in args.series.split(",")]
    except ValueError:
        p.error("--instances takes numbers and 'sqlite', --series numbers, each separated by commas")
    results: list[Measured] = []
    for setup in setups:
        runs = [(rate, None) for rate in rates]
        if args.kill and setup.instances > 1:
            runs.append((args.kill_rate, args.duration / 3))
        for rate, kill_at in runs:
            opts = Options(rate=rate, duration=args.duration, customers=args.customers, lease=args.lease,
                           kill_at=kill_at, send_rate=args.send_rate, uvloop=not args.asyncio, admin=args.postgres)
            measured = run(setup, opts)
            print("\n".join(measured.lines()), flush=True)
            results.append(measured)
    print(TABLE_HEAD)
    for m in results:
        print(m.row())
    for setup in setups:
        mine = [m for m in results if m.setup == setup and m.killed is None]
        best = max((m.result.rate for m in mine if m.result.passed), default=0.0)
        cpu = [m.wabot_cpu / max(1, m.result.sent) * 1000 for m in mine]
        print(f"{setup}: highest rate with every message answered and e2e p99 ≤ {E2E_P99_MS:g} ms: {best:g} msg/s;"
              f" wabot CPU per message {min(cpu, default=0):.2f}–{max(cpu, default=0):.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
