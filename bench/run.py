"""One benchmark run: fake Graph process + real server subprocess + the generator, then the numbers."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from wabot.state import WAITING, State

from . import campaign, fakegraph
from .fakegraph import Reply
from .load import Generator, customer_ids
from .profile import Sampler
from .report import Result, summarise
from .server import REPO, SECRET, Server, free_port

HAVE_UVLOOP = fakegraph.uvloop_factory() is not None  # False when the speed extra is not installed

DRAIN_QUIET = 3.0  # after the last send, stop waiting once no reply came for this long
DRAIN_MAX = 30.0


@dataclass(frozen=True, slots=True)
class Options:
    rate: float = 1000
    duration: float = 60
    customers: int | None = None  # None: rate × 10, so each customer writes every 10 s
    prefill: int = 0  # customers with stored state before the run
    flows: Path = REPO / "flows"
    send_rate: float = 20000
    uvloop: bool = True  # the server's loop (WABOT_UVLOOP); the load side uses uvloop whenever installed
    profile: Path | None = None  # run the server under cProfile, writing here
    pyspy: Path | None = None  # sample the server with py-spy during the load, writing collapsed stacks here
    seed: int = 1
    campaign: int = 0  # recipients of a campaign running beside the load (issue 13), 0: none
    log_level: str = "WARNING"  # the server's logging.level (the shipped config says INFO)
    drain_quiet: float = DRAIN_QUIET  # stop waiting for replies once none came for this long (tests: longer)


class FakeGraph:
    """The fake Graph API process and the thread that hands its reports to the generator's loop."""

    def __init__(self, *, uvloop: bool) -> None:
        self.port = free_port()
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=fakegraph.serve, args=(self.port, child, uvloop), daemon=True)
        self.proc.start()
        child.close()
        if not self.conn.poll(20) or self.conn.recv() != "ready":
            raise RuntimeError("the fake Graph API did not start")
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def follow(self, loop: asyncio.AbstractEventLoop, sink: Callable[[list[Reply]], None]) -> None:
        def read(conn: Connection) -> None:
            while True:
                try:
                    item = conn.recv()
                except EOFError:
                    return
                if item == "stopped":
                    return
                try:
                    loop.call_soon_threadsafe(sink, item)
                except RuntimeError:  # the run is over and its loop closed: late reports are not needed
                    return

        self.thread = threading.Thread(target=read, args=(self.conn,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send("stop")
        if self.thread:
            self.thread.join(10)
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()


def prefill(db: Path, count: int) -> None:
    """Give `count` customers a stored conversation (waiting at the main menu), as the store would keep it."""
    from wabot.db.store import Store

    async def migrate() -> None:
        store = await Store.open(db)
        await store.close()

    asyncio.run(migrate())
    now = time.time()
    state = State(flow="main", step="menu", status=WAITING, vars={"product": "Trà sen"}, last_seen=now).to_json()
    with contextlib.closing(sqlite3.connect(db)) as con, con:  # the second `with` commits, the first closes
        con.executemany(
            "INSERT INTO conversations (customer, state, status, contact, updated_at) VALUES (?, ?, ?, ?, ?)",
            ((c, state, WAITING, f'{{"wa_id": "{c}", "user_id": null, "name": "Khách"}}', now)
             for c in customer_ids(count)),
        )


def run(opts: Options, *, say: Callable[[str], None] = print) -> Result:
    """Start everything, send the load, wait for the replies, stop everything, summarise."""
    customers = opts.customers or max(100, int(opts.rate * 10))
    with tempfile.TemporaryDirectory(prefix="wabot-bench-") as tmp:
        folder = Path(tmp)
        graph = FakeGraph(uvloop=HAVE_UVLOOP)
        server = Server(folder, graph_url=graph.url, flows=opts.flows, send_rate=opts.send_rate,
                        uvloop=opts.uvloop, profile=opts.profile, log_level=opts.log_level)
        try:
            if opts.prefill:
                prefill(server.db, opts.prefill)
                say(f"database filled with {opts.prefill} conversations")
            if opts.campaign:
                campaign.prepare(server.db, opts.campaign)
                say(f"campaign of {opts.campaign} recipients waiting in the database")
            startup = server.start()
            say(f"server up in {startup * 1000:.0f} ms (pid {server.proc.pid if server.proc else '?'})")
            gen = Generator(server.url + "/webhook/whatsapp", SECRET, customers=customer_ids(customers),
                            seed=opts.seed)
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                result = runner.run(_load(opts, gen, graph, server))
        finally:
            code = server.stop()
            graph.stop()
        if code not in (0, -15):
            say(f"warning: the server exited with code {code}")
        if result.foreign_cpu > 0.1:
            say(f"warning: other processes used {result.foreign_cpu * 100:.0f}% of a core during the run;"
                " the server had less CPU than the machine has, so these numbers are pessimistic")
        tail = server.tail(10)
        if tail:
            say(f"server log (last lines, level WARNING and up):\n{tail}")
        return result


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    return fakegraph.uvloop_factory()


async def _load(opts: Options, gen: Generator, graph: FakeGraph, server: Server) -> Result:
    pace = campaign.Pace()

    def sink(replies: list[Reply]) -> None:
        pace.on_replies(replies)
        gen.on_replies(replies)

    graph.follow(asyncio.get_running_loop(), sink if opts.campaign else gen.on_replies)
    sampler = Sampler(server.proc.pid, opts.pyspy) if opts.pyspy and server.proc else None
    cpu0 = server.cpu_seconds()
    others = [psutil.Process(), psutil.Process(graph.proc.pid)]
    others0 = [_cpu(p) for p in others]
    busy0 = _machine_busy()
    t0 = time.monotonic()
    window = await gen.run(rate=opts.rate, duration=opts.duration)
    if sampler:
        sampler.stop()
    deadline = time.monotonic() + DRAIN_MAX
    while gen.unanswered() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        if time.monotonic() - max(gen.last_reply_at, window[1]) > opts.drain_quiet:
            break
    await asyncio.sleep(0.1)  # the fake Graph flushes every 20 ms
    if not graph.proc.is_alive():
        raise RuntimeError("the fake Graph API process died during the run; the numbers would be wrong")
    wall = time.monotonic() - t0
    usage = server.usage(cpu0, wall)
    gen_cpu, graph_cpu = ((_cpu(p) - c0) / wall for p, c0 in zip(others, others0, strict=True))
    # whatever else ran on the machine meanwhile (other tests, builds) takes cores from the server
    foreign = max(0.0, (_machine_busy() - busy0) / wall - usage.cpu - gen_cpu - graph_cpu)
    if opts.campaign:
        for line in pace.lines(window=window, send_rate=opts.send_rate):
            print(line, flush=True)
    return summarise(gen, rate=opts.rate, duration=opts.duration, window=window, usage=usage,
                     load_cpu=(gen_cpu, graph_cpu), foreign_cpu=foreign)


def _machine_busy() -> float:
    """CPU seconds all cores spent not idle since boot."""
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def _cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)
