"""`wabot db copy`: a shop's SQLite data moved into PostgreSQL, read back the same through the other store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests import ROOT
from wabot.db.postgres import PgStore
from wabot.db.store import Store
from wabot.state import HANDOFF, State
from wabot.whatsapp import inbound


def message(mid: str, customer: str, body: str) -> inbound.Message:
    return inbound.Message(id=mid, customer=inbound.Customer(customer, name="An"), phone_number_id="1",
                           timestamp=1764000000, type="text", content=inbound.Text(body))


def wabot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wabot", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, check=False)


async def test_copy_moves_conversations_history_outbox_and_opt_outs(tmp_path: Path, pg_url: str) -> None:
    path = tmp_path / "shop.db"
    lite = await Store.open(path)
    [(s1, _), (s2, _)] = await lite.record([message("a", "849001", "hi"), message("b", "849002", "STOP")], [], now=1.0)
    [sent, _] = await lite.finish_turn(seq=s1, customer="849001", state=State(flow="main", status=HANDOFF),
                                       bodies=[{"type": "text", "text": {"body": "Chào"}}, {"n": 2}], now=2.0,
                                       contact=inbound.Customer("849001", name="An"), handoff="hỏi giá")
    await lite.mark_sent(sent.id, wamid="wamid.out.1", now=3.0)
    await lite.record([], [inbound.Status("wamid.out.1", "read", 4, "849001", "1")], now=4.0)
    await lite.set_opted_out("849002", True, now=5.0)
    before = (await lite.history(), await lite.pending(), await lite.queued(), await lite.handoffs())
    await lite.close()

    done = wabot("db", "copy", str(path), pg_url)
    assert done.returncode == 0, done.stderr
    assert "inbox: 2 rows" in done.stdout and "outbox: 2 rows" in done.stdout and "statuses: 1 rows" in done.stdout

    pg = await PgStore.open(pg_url)
    assert (await pg.history(), await pg.pending(), await pg.queued(), await pg.handoffs()) == before
    assert [seq for seq, _ in await pg.pending()] == [s2]
    assert await pg.opted_out("849002") and not await pg.opted_out("849001")
    assert await pg.load_state("849001") == State(flow="main", status=HANDOFF)
    [(s3, _)] = await pg.record([message("c", "849003", "hi")], [], now=6.0)
    assert s3 > s2  # the counters moved past the copied rows
    [row] = await pg.queue("849003", [{"n": 3}], now=6.0)
    assert row.id > sent.id + 1
    await pg.close()

    again = wabot("db", "copy", str(path), pg_url)  # never merges into a database that has data
    assert again.returncode == 1
    assert "already holds rows; copy into an empty database" in again.stderr
    assert "Traceback" not in again.stderr


def test_copy_refuses_a_target_that_is_not_postgresql_and_a_missing_source(tmp_path: Path) -> None:
    wrong = wabot("db", "copy", str(tmp_path / "shop.db"), str(tmp_path / "other.db"))
    assert wrong.returncode == 2 and "must be a postgresql:// URL" in wrong.stderr
    missing = wabot("db", "copy", str(tmp_path / "nope.db"), "postgresql://postgres@127.0.0.1/x")
    assert missing.returncode == 2 and "is not an SQLite file" in missing.stderr
