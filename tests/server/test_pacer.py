"""The outbox's pacer: sends spaced at the rate; one late by less than the slack catches up; no burst beyond."""

from __future__ import annotations

import pytest

from wabot.server.outbox import Pacer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_send_late_within_the_slack_keeps_the_schedule_and_one_later_starts_it_over() -> None:
    clock = Clock()
    pacer = Pacer(10, clock, slack=0.05)  # a slot every 0.1 s
    nexts = []
    for now in (100.0, 100.08, 100.30, 100.30):
        clock.now = now
        await pacer.wait()
        nexts.append(round(pacer.next, 6))
    # 100.08 is 0.03 after the slot 100.05: it takes it, and the next slot stays 100.15 (not 100.18);
    # 100.30 is 0.15 after 100.15, more than the slack: the schedule starts over from 100.25;
    # the fourth send, asked at 100.30 too, waits for its slot 100.35
    assert nexts == [100.05, 100.15, 100.35, 100.45]


@pytest.mark.parametrize("rate", [80, 1000])
async def test_after_a_pause_at_most_slack_times_the_rate_go_at_once(rate: float) -> None:
    clock = Clock()
    pacer = Pacer(rate, clock, slack=0.02)
    at_once = 0
    while pacer.next <= clock.now:  # due now or earlier: the send goes without sleeping
        await pacer.wait()
        at_once += 1
    assert at_once <= 0.02 * rate + 1


async def test_the_sends_due_within_one_tick_wake_together_at_its_end() -> None:
    clock = Clock()
    clock.now = 100.0035  # slots at .0045, .0055, ...: none on a tick's edge
    wakes: list[float] = []

    async def sleep(delay: float) -> None:
        wakes.append(round(clock.now + delay, 6))

    pacer = Pacer(1000, clock, slack=0, tick=0.01, sleep=sleep)
    for _ in range(20):
        await pacer.wait()
    # the first goes at once; the slots up to 100.01 wake at 100.01, those up to 100.02 at 100.02: two loop passes
    # (and two commits) for 19 sends instead of 19; none wakes before its slot or a tick after it
    assert wakes == [100.01] * 6 + [100.02] * 10 + [100.03] * 3
