"""A person takes over any conversation (the bot pauses) and gives it back (the bot asks again)."""

from __future__ import annotations

from pathlib import Path

from tests.enginekit import CUSTOMER, START, load
from wabot.engine import advance
from wabot.state import HANDOFF, IDLE, WAITING, State
from wabot.templates import Renderer
from wabot.whatsapp import inbound

FLOW = """
flows:
  main:
    steps:
      - id: name
        ask: {vi: "Bạn tên gì?"}
        save: name
      - say: "Chào {{ name }}"
"""


def step(bot: object, state: State | None, event: advance.Event) -> advance.Outcome:
    return advance.advance(bot, Renderer(timezone="Asia/Ho_Chi_Minh"), state, event,  # type: ignore[arg-type]
                           customer=CUSTOMER, now=START)


def hello(body: str) -> advance.Incoming:
    return advance.Incoming(inbound.Message("m", CUSTOMER, "p", int(START), "text", inbound.Text(body)))


def test_take_over_mid_question_then_give_back_asks_again(tmp_path: Path) -> None:
    bot = load(tmp_path, FLOW)
    asked = step(bot, None, hello("hi"))
    assert asked.state.status == WAITING and asked.state.step == "name"
    taken = step(bot, asked.state, advance.TakeOver("taken over by lan"))
    assert taken.state.status == HANDOFF and taken.state.step == "name" and not taken.replies
    assert taken.effects == (advance.HandoffOpened("taken over by lan"),)
    assert step(bot, taken.state, advance.TakeOver("again")).effects == ()  # already with a person
    silent = step(bot, taken.state, hello("Lan"))
    assert silent.state.status == HANDOFF and not silent.replies
    back = step(bot, silent.state, advance.Resume())
    assert back.state.status == WAITING and back.state.step == "name"
    assert [r.body for r in back.replies] == ["Bạn tên gì?"]  # type: ignore[union-attr]


def test_take_over_between_conversations_gives_back_an_idle_one(tmp_path: Path) -> None:
    bot = load(tmp_path, FLOW)
    taken = step(bot, None, advance.TakeOver("taken over by lan"))
    assert taken.state.status == HANDOFF and taken.state.flow == ""
    back = step(bot, taken.state, advance.Resume())
    assert back.state.status == IDLE and not back.replies
