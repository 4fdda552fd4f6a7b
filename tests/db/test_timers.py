"""Flow timers in the database, on SQLite and PostgreSQL: kept in the turn's commit, claimed once, shown later."""

from __future__ import annotations

import asyncio

from wabot.db.base import open_database
from wabot.db.postgres import PgStore
from wabot.state import CancelTimers, SetTimer, State

NOW = 1_780_000_000.0
LAN, AN = "84912345678", "84987654321"


async def test_a_turn_sets_cancels_and_fires_timers_in_its_own_commit(db_target: str) -> None:
    store = await open_database(db_target)
    try:
        await store.finish_turn(seq=None, customer=LAN, state=State(), bodies=[], now=NOW, timers=[
            SetTimer("remind", NOW + 10, "main", "day", 1), SetTimer("timeout", NOW + 60, "main", "day"),
            SetTimer("wait", NOW + 30, "booking", "#4", data={"vars": {"name": "Lan"}, "stack": []}),
        ])
        assert await store.next_timer() == NOW + 10
        assert await store.claim_timers(owner="a", now=NOW + 5, until=NOW + 65) == []  # nothing due yet
        [remind] = await store.claim_timers(owner="a", now=NOW + 10, until=NOW + 70)
        assert (remind.customer, remind.kind, remind.flow, remind.step, remind.n) == (LAN, "remind", "main", "day", 1)
        assert await store.claim_timers(owner="b", now=NOW + 11, until=NOW + 71) == []  # held by a
        assert await store.timer_pending(remind.id)
        await store.finish_turn(seq=None, customer=LAN, state=State(), bodies=[], now=NOW + 12,
                                fired=(remind.id, "reminder 1 of 1 said"),
                                timers=[CancelTimers(("remind", "timeout"), "answered")])
        assert not await store.timer_pending(remind.id)
        [wait] = await store.claim_timers(owner="a", now=NOW + 100, until=NOW + 160)
        assert wait.kind == "wait" and wait.data == {"vars": {"name": "Lan"}, "stack": []}
        shown = [(t["kind"], t["status"], t["note"]) for t in await store.timers(LAN)]
        assert shown == [("wait", "pending", None), ("timeout", "cancelled", "answered"),
                         ("remind", "fired", "reminder 1 of 1 said")]
        assert await store.next_timer() == NOW + 30  # claimed, still pending until its turn marks it
    finally:
        await store.close()


async def test_a_flow_calls_off_only_its_own_waits(db_target: str) -> None:
    store = await open_database(db_target)
    try:
        await store.finish_turn(seq=None, customer=LAN, state=State(), bodies=[], now=NOW, timers=[
            SetTimer("wait", NOW + 30, "booking", "#3"), SetTimer("wait", NOW + 40, "shipping", "#2"),
        ])
        await store.finish_turn(seq=None, customer=AN, state=State(), bodies=[], now=NOW, timers=[
            SetTimer("wait", NOW + 30, "booking", "#3"),
        ])
        await store.finish_turn(seq=None, customer=LAN, state=State(), bodies=[], now=NOW + 1, timers=[
            CancelTimers(("wait",), "called off by flow cancel", "booking"),
        ])
        shown = [(t["flow"], t["status"], t["note"]) for t in await store.timers(LAN)]
        assert sorted(shown) == [("booking", "cancelled", "called off by flow cancel"), ("shipping", "pending", None)]
        assert [t["status"] for t in await store.timers(AN)] == ["pending"]  # another customer's: untouched
    finally:
        await store.close()


async def test_a_claim_runs_out_and_on_sqlite_a_restart_voids_the_old_claims(db_target: str) -> None:
    store = await open_database(db_target)
    try:
        await store.finish_turn(seq=None, customer=LAN, state=State(), bodies=[], now=NOW,
                                timers=[SetTimer("wait", NOW, "main", "#2")])
        [first] = await store.claim_timers(owner="a", now=NOW, until=NOW + 10)
        assert await store.claim_timers(owner="b", now=NOW + 5, until=NOW + 15) == []
        [again] = await store.claim_timers(owner="b", now=NOW + 11, until=NOW + 21)  # a died: its claim ran out
        assert again.id == first.id
        voided = await store.unclaim_timers()
        if isinstance(store, PgStore):
            assert voided == 0  # other instances may hold claims: they only run out
        else:
            assert voided == 1  # the one server of the file starts: a killed run's claims mean nothing
            assert [t.id for t in await store.claim_timers(owner="c", now=NOW + 12, until=NOW + 22)] == [first.id]
    finally:
        await store.close()


async def test_two_claimers_at_once_never_take_the_same_timer(db_target: str) -> None:
    one, two = await open_database(db_target), await open_database(db_target)
    try:
        for i in range(40):
            await one.finish_turn(seq=None, customer=f"8490000{i:04d}", state=State(), bodies=[], now=NOW,
                                  timers=[SetTimer("remind", NOW + i / 100, "main", "#1")])
        took: list[list[int]] = [[], []]

        async def claimer(n: int) -> None:
            store = (one, two)[n]
            for _ in range(20):
                took[n] += [t.id for t in await store.claim_timers(owner=f"i{n}", now=NOW + 1, until=NOW + 60,
                                                                   limit=3)]
                await asyncio.sleep(0)

        await asyncio.gather(claimer(0), claimer(1))
        assert sorted(took[0] + took[1]) == sorted(set(took[0] + took[1])) and len(took[0] + took[1]) == 40
    finally:
        await one.close()
        await two.close()
