"""The sandboxed renderer: Vietnamese filters, forgiving undefined names, and hostile templates."""

from __future__ import annotations

import logging
import time
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from wabot.templates import Renderer

CONTEXT: dict[str, Any] = {"quantity": 3, "price": 45000, "contact": {"name": "Lan"}, "order": None}


@pytest.fixture
def renderer() -> Renderer:
    return Renderer(timezone="Asia/Ho_Chi_Minh")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ 150000 | money }}", "150.000 ₫"),
        ("{{ 1234567 | money }}", "1.234.567 ₫"),
        ("{{ 0 | money }}", "0 ₫"),
        ("{{ '150000' | money }}", "150.000 ₫"),
        ("{{ 99.6 | money }}", "100 ₫"),
        ("{{ 1234.5 | number }}", "1.234,5"),
        ("{{ 1234 | number }}", "1.234"),
        ("{{ 2.0 | number }}", "2"),
        ("{{ 1234.5678 | number(2) }}", "1.234,57"),
        ("{{ -1500 | number }}", "-1.500"),
        ("{{ quantity * price | money }}", "135.000 ₫"),  # what authors mean, not a repeated string
        ("{{ (quantity * price) | money }}", "135.000 ₫"),
        ("{{ price | money ~ '/phần' }}", "45.000 ₫/phần"),
        ("{{ 'abc' | money }}", "abc"),
        ("{{ none | number }}", "None"),
        ("{{ '2026-11-25' | date }}", "25/11/2026"),
        ("{{ '2026-11-25T07:30:00Z' | datetime }}", "25/11/2026 14:30"),
        ("{{ '2026-11-25T07:30:00+00:00' | time }}", "14:30"),
        ("{{ 'soon' | date }}", "soon"),
        ("{{ contact.name }}", "Lan"),
        ("{{ order.status }}|{{ missing }}|{{ missing.a.b }}", "||"),
        ("{{ order.eta | date }}", ""),
        ("Xin chào", "Xin chào"),
    ],
)
def test_render(renderer: Renderer, source: str, expected: str) -> None:
    assert renderer.render(source, CONTEXT) == expected


def test_date_filters_take_python_values_in_the_bot_time_zone(renderer: Renderer) -> None:
    utc = datetime(2026, 11, 25, 20, 5, tzinfo=ZoneInfo("UTC"))  # already the 26th in Vietnam
    ctx = {"d": date(2026, 1, 2), "t": utc, "ts": utc.timestamp()}
    assert renderer.render("{{ d | date }} {{ t | datetime }} {{ ts | date }}", ctx) == (
        "02/01/2026 26/11/2026 03:05 26/11/2026"
    )
    assert renderer.now(utc.timestamp()).hour == 3


def test_evaluate_keeps_types(renderer: Renderer) -> None:
    assert renderer.evaluate("quantity * price", CONTEXT) == 135000
    assert renderer.evaluate("quantity > 2", CONTEXT) is True
    assert renderer.evaluate("[1, 2][1]", CONTEXT) == 2
    assert renderer.evaluate("order.status", CONTEXT) is None


def test_errors_return_safely_and_name_the_template(renderer: Renderer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="wabot.templates"):
        assert renderer.render("Tổng {{ 1 / 0 }}", CONTEXT) == ""
        assert renderer.render("{{ unclosed", CONTEXT) == ""
        assert renderer.evaluate("quantity >", CONTEXT) is None
        assert renderer.evaluate("missing > 3", CONTEXT) is None
    messages = [r.getMessage() for r in caplog.records]
    assert any("Tổng {{ 1 / 0 }}" in m and "ZeroDivisionError" in m for m in messages)
    assert len(messages) == 4


def test_customer_text_in_the_context_is_never_rendered(renderer: Renderer) -> None:
    assert renderer.render("Bạn nói: {{ text }}", {"text": "{{ 7 * 7 }}"}) == "Bạn nói: {{ 7 * 7 }}"


def test_compiled_templates_are_cached(renderer: Renderer) -> None:
    renderer.render("{{ a }}", {"a": 1})
    before = len(renderer._templates)
    assert renderer.render("{{ a }}", {"a": 2}) == "2"
    assert len(renderer._templates) == before == 1


HOSTILE = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ range(10**9) | list | length }}",
    "{{ range(1000000000) | length }}",
    "{{ 'a' * 10**9 }}",
    "{{ 'a' * 1000000000 }}",
    "{{ [1, 2] * 1000000000 }}",
    "{{ 10 ** 10 ** 10 }}",
    "{{ '%0999999999d' % 1 }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ '{:>{}}'.format(1, 999999999) }}",
    "{{ 'x' | center(999999999) }}",
    "{{ ('a' * 50000).replace('', 'b' * 5000) }}",
    "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
    "{% set ns = namespace(x='a') %}{% for i in range(60) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x }}",
    "{% set ns = namespace(x='a') %}{% for i in range(60) %}{% set ns.x = ns.x + ns.x %}{% endfor %}{{ ns.x }}",
    "{% macro f() %}{{ f() }}{{ f() }}{% endmacro %}{{ f() }}",
    # issue 16 item 9
    "{{ lipsum(n=10000, min=1000, max=1001) }}",
    "{{ (['a'*100000]*3000)|join }}",
    "{{ ['a' * 100000] * 12000 }}",
    "{{ (['a'*100000]*3000)|join('-') }}",
    "{{ ''.join(['a'*100000]*3000) }}",
    "{{ 'x' ~ (['a'*100000]*3000) }}",
    "{{ '%s' % ((['a'*100000]*3000),) }}",
    "{{ [[('a'*100000)]*100]*100 }}",
    "{% for i in range(3000) %}{{ 'a' * 99 }}{% endfor %}",  # each value small, the text 297,000 characters
]


@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_templates_are_blocked_quickly(
    renderer: Renderer, source: str, caplog: pytest.LogCaptureFixture
) -> None:
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="wabot.templates"):
        assert renderer.render(source, CONTEXT) == ""
    assert time.perf_counter() - started < 2.0
    assert caplog.records, "a blocked template must be logged"


def test_small_lipsum_and_join_still_work(renderer: Renderer) -> None:
    assert renderer.render("{{ ['a', 'b'] | join('-') }} {{ [1, 2] }}", CONTEXT) == "a-b [1, 2]"
    assert len(renderer.render("{{ lipsum(n=1, html=False, min=5, max=10) }}", CONTEXT).split()) >= 5


def test_hostile_expressions_are_blocked(renderer: Renderer) -> None:
    assert renderer.evaluate("''.__class__.__mro__", CONTEXT) is None
    assert renderer.evaluate("'a' * 10 ** 9", CONTEXT) is None
    assert renderer.evaluate("range(10 ** 9)", CONTEXT) is None


def test_reasonable_templates_still_work(renderer: Renderer) -> None:
    source = (
        "{% for i in range(3) %}{{ i }}{% if not loop.last %},{% endif %}{% endfor %}"
        " {{ 'ab' * 3 }} {{ '%05d' % 42 }}"
    )
    assert renderer.render(source, CONTEXT) == "0,1,2 ababab 00042"
    assert renderer.render("{{ 'x' | center(5) }}|{{ '{:>4}'.format(7) }}", CONTEXT) == "  x  |   7"


def test_date_helpers_for_opening_hours_and_booking_days() -> None:
    r = Renderer(timezone="Asia/Ho_Chi_Minh")
    sunday_afternoon = {"now": r.now(1_797_760_800.0), "day": "2026-12-25"}  # 2026-12-20 17:00, a Sunday
    assert r.render("{{ now | add_days(5) | date }}, {{ day | weekday }}, {{ day | weekday('en') }}",
                    sunday_afternoon) == "25/12/2026, Thứ Sáu, Friday"
    assert r.render("{{ day | add_days(-1) | date }}", sunday_afternoon) == "24/12/2026"
    assert r.evaluate("now.weekday() == 6 and now.hour >= 12", sunday_afternoon) is True  # closed on Sunday afternoon
    assert r.evaluate("now.hour < 8", sunday_afternoon) is False  # we open at 8
    assert r.render("{{ 'không phải ngày' | add_days(1) }}", {}) == "không phải ngày"
