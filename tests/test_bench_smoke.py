"""A few seconds of the benchmark, so it never rots: every webhook answered 200, every message answered."""

from __future__ import annotations

import random

from bench import instances
from bench.compare import Plan, compare, ratios
from bench.fakegraph import describe
from bench.report import percentile
from bench.run import Options, run
from bench.walk import Tap, Typed, next_move
from tests import pg


def test_a_short_run_answers_every_message() -> None:
    lines: list[str] = []
    # a starved server (6 % of a core seen in CI beside other work) may pause longer than the bench's 3 s of quiet
    result = run(Options(rate=50, duration=2, customers=40, drain_quiet=30), say=lines.append)
    report = "\n".join(lines + result.lines())
    assert result.sent == 100, report
    assert result.statuses == {200: 100}, report
    assert result.turns_answered == result.sent, report  # each customer wrote twice: "hi", then a menu tap or more
    assert result.replies >= result.sent, report
    assert result.stray == 0, report


def test_the_walk_taps_the_options_the_bot_offered() -> None:
    body = {
        "messaging_product": "whatsapp", "to": "+84910000001", "type": "interactive",
        "interactive": {"type": "list", "body": {"text": "Bạn cần gì hôm nay?"}, "action": {"button": "Xem menu",
                        "sections": [{"rows": [{"id": "x1", "title": "Gặp nhân viên"},
                                               {"id": "x2", "title": "Đặt hàng", "description": "Chọn món"}]}]}},
    }
    menu = describe(body, at=1.0, wamid="wamid.1")
    assert menu.to == "84910000001"
    move = next_move(menu, random.Random(3))
    assert move == Tap("list_reply", "x2", "Đặt hàng", "Chọn món", "wamid.1")  # never the handoff option
    ask = describe({"to": "84910000001", "type": "text", "text": {"body": "Mã đơn hàng của bạn là gì?"}},
                   at=2.0, wamid="wamid.2")
    typed = next_move(ask, random.Random(3))
    assert isinstance(typed, Typed) and typed.body.startswith("DH")


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([], 99) == 0.0


def test_two_instances_on_postgresql_answer_every_message_and_count_postgresql_cpu(pg_session: str) -> None:
    """bench.instances: two real instances behind the generator's balancer, one PostgreSQL database.

    Each customer writes once: on a loaded machine a reply may come later than a second message would.
    """
    del pg_session  # only for its check that PostgreSQL is there (or its skip, on purpose); the bench makes its own
    lines: list[str] = []
    m = instances.run(instances.Setup(2, "postgresql"), instances.Options(rate=25, duration=2, customers=50,
                                                                          admin=pg.ADMIN), say=lines.append)
    report = "\n".join(lines + m.lines())
    assert m.result.statuses == {200: 50}, report
    assert m.result.turns_answered == 50, report
    assert m.result.stray == 0, report
    assert m.wabot_cpu > 0 and m.pg_cpu is not None and m.pg_cpu > 0, report  # both instances' and PostgreSQL's
    assert m.left == "", report  # nothing left queued in the database
    assert "2 × PostgreSQL" in m.row()


def test_the_comparison_runs_wabot_and_the_thin_pipeline_under_the_same_load() -> None:
    lines: list[str] = []
    legs = compare(Plan([40.0], duration=1.5, customers=20), say=lines.append)
    report = "\n".join(lines)
    assert [leg.name for leg in legs] == ["wabot INFO", "thin"], report
    for leg in legs:
        assert leg.result.statuses == {200: 60}, report
        assert leg.result.turns_answered == 60 and leg.result.replies == 60, report  # one echo per message
        assert leg.result.stray == 0 and leg.cpu_ms > 0, report
    assert ratios(legs)[0].startswith("RATIO "), report
