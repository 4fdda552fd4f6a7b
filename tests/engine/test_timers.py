"""Timers in the pure engine: reminders, timeouts and waits as effects and events, no clock and no database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.enginekit import START, Chat, load
from wabot.engine import advance
from wabot.flows import model
from wabot.state import IDLE, WAITING, CancelTimers, SetTimer
from wabot.whatsapp import outbound

QUESTION = """
flows:
  main:
    opens_with: {name: nhac_lich, language: vi, parameters: ["{{ day }}"]}
    steps:
      - id: day
        ask: "Ngày nào?"
        save: day
        expect: date
        remind: {after: 2h, say: "Bạn ơi?", times: 2}
        timeout: {after: 1d, say: "Thôi nhé.", goto: bye}
      - ask: "Giờ nào?"
        save: hour
        expect: time
      - end: "Xong {{ day }} {{ hour }}"
      - id: bye
        end: "Tạm biệt"
"""

WAIT = """
flows:
  main:
    steps:
      - ask: "Khám lúc nào?"
        save: appointment
        expect: datetime
      - say: "Đã đặt {{ appointment }}"
      - wait: {until: appointment, before: 1d, at: "08:00", past: soon}
      - id: remind
        menu:
          text: "Mai {{ appointment }} bạn đến chứ?"
          options:
            - {title: "Có", goto: yes}
        timeout: {after: 2h, goto: end}
      - id: yes
        end: "Hẹn gặp"
      - id: soon
        end: "Gần quá, không nhắc"
  other:
    steps:
      - ask: "Tên?"
        save: name
      - end: "Chào {{ name }}"
triggers:
  - {words: [tên], goto: other}
"""


@dataclass
class Timer:
    id: int
    set: SetTimer
    status: str = "pending"


@dataclass
class Timed(Chat):
    """A Chat that keeps its timers the way the store does and lets time pass the way the scheduler does."""

    timers: list[Timer] = field(default_factory=list)
    window_open: bool = True

    def __init__(self, bot: model.Bot) -> None:
        super().__init__(bot)
        self.timers = []
        self.window_open = True

    def feed(self, event: advance.Event) -> list[outbound.Outgoing]:
        replies = super().feed(event)
        for effect in self.outcome.effects:
            if isinstance(effect, SetTimer):
                self.timers.append(Timer(len(self.timers) + 1, effect))
            elif isinstance(effect, CancelTimers):
                for t in self.pending():
                    if t.set.kind in effect.kinds and effect.flow in (None, t.set.flow):
                        t.status = "cancelled"
        return replies

    def pending(self) -> list[Timer]:
        return [t for t in self.timers if t.status == "pending"]

    def later(self, seconds: float) -> list[outbound.Outgoing]:
        """Let `seconds` pass, firing each timer that comes due on the way, in order."""
        until, said = self.now + seconds, []
        while due := sorted((t for t in self.pending() if t.set.due <= until), key=lambda t: t.set.due):
            timer = due[0]
            self.now = max(self.now, timer.set.due)
            timer.status = "fired"
            s = timer.set
            said += self.feed(advance.TimerFired(timer.id, s.kind, s.flow, s.step, s.n,
                                                 dict(s.data) if s.data else None, window_open=self.window_open))
        self.now = until
        return said


def effects(chat: Chat) -> tuple[advance.Effect, ...]:
    return chat.outcome.effects


def texts(replies: list[outbound.Outgoing]) -> list[str]:
    return [r.body if isinstance(r, outbound.Text | outbound.Buttons) else type(r).__name__ for r in replies]


def test_a_question_sets_its_reminder_and_timeout_and_an_answer_cancels_them(tmp_path: Path) -> None:
    chat = Timed(load(tmp_path, QUESTION))
    assert texts(chat.send("hi")) == ["Ngày nào?"]
    assert effects(chat) == (SetTimer("remind", START + 7200, "main", "day", 1),
                                    SetTimer("timeout", START + 86400, "main", "day", 1))
    chat.now += 60
    assert texts(chat.send("25/12")) == ["Giờ nào?"]
    assert effects(chat) == (CancelTimers(("remind", "timeout"), "answered"),)
    assert chat.pending() == []
    assert texts(chat.later(2 * 86400)) == []


def test_reminders_at_most_n_times_then_the_timeout_jumps(tmp_path: Path) -> None:
    chat = Timed(load(tmp_path, QUESTION))
    chat.send("hi")
    assert texts(chat.later(2 * 3600)) == ["Bạn ơi?"]
    assert effects(chat) == (SetTimer("remind", START + 4 * 3600, "main", "day", 2),)  # the timeout stays
    assert chat.outcome.note == "reminder 1 of 2 said"
    assert texts(chat.later(2 * 3600)) == ["Bạn ơi?"]
    assert texts(chat.later(10 * 3600)) == []  # two reminders, no third
    assert texts(chat.later(10 * 3600)) == ["Thôi nhé.", "Tạm biệt"]
    assert chat.outcome.note == "no answer in 1d: went to main.bye"
    assert chat.state is not None and chat.state.status == IDLE and chat.pending() == []


def test_a_reminder_restarts_the_session_clock_and_a_wrong_answer_restarts_the_silence(tmp_path: Path) -> None:
    chat = Timed(load(tmp_path, QUESTION))  # the session timeout is 30 minutes
    chat.send("hi")
    chat.later(2 * 3600 + 60)
    assert texts(chat.send("mai")) == ["Giờ nào?"]  # answered 2 hours after the question: not started over
    chat = Timed(load(tmp_path, QUESTION))
    chat.send("hi")
    chat.now += 3600
    assert texts(chat.send("không biết"))[-1] == "Ngày nào?"
    assert effects(chat) == (CancelTimers(("remind", "timeout"), "answered"),
                                    SetTimer("remind", START + 3600 + 7200, "main", "day", 1),
                                    SetTimer("timeout", START + 3600 + 86400, "main", "day", 1))


def test_a_stale_timer_does_nothing(tmp_path: Path) -> None:
    chat = Timed(load(tmp_path, QUESTION))
    chat.send("hi")
    chat.send("mai")
    replies = chat.feed(advance.TimerFired(1, "remind", "main", "day", 1))
    assert replies == [] and chat.outcome.note == "ignored: the conversation had moved on"
    assert chat.state is not None and chat.state.step == "#2"


def test_outside_the_window_a_reminder_goes_as_the_opening_template_or_not_at_all(tmp_path: Path) -> None:
    chat = Timed(load(tmp_path, QUESTION))
    chat.send("hi")
    chat.window_open = False
    [template] = chat.later(2 * 3600)
    assert isinstance(template, outbound.Template) and template.name == "nhac_lich"
    assert chat.outcome.note.endswith("sent as the opens_with template (the 24-hour window was closed)")
    plain = Timed(load(tmp_path, QUESTION.replace('    opens_with: {name: nhac_lich, language: vi, parameters: '
                                                  '["{{ day }}"]}\n', "")))
    plain.send("hi")
    before = plain.state
    plain.window_open = False
    assert plain.later(2 * 3600) == []
    assert plain.outcome.note == ("reminder 1 of 2 said; not sent: the customer last wrote more than 24 hours ago "
                                  "and the flow names no opens_with template")
    assert plain.state == before and effects(plain) == ()  # nothing happened: no second reminder either


def test_a_stop_word_cancels_every_timer(tmp_path: Path) -> None:
    chat = Timed(load(tmp_path, QUESTION, stop_words=("STOP",)))
    chat.send("hi")
    chat.send("STOP")
    assert chat.outcome.effects[0] == CancelTimers(("remind", "timeout", "wait"), "opted out")


def test_wait_until_the_day_before_at_8_then_the_flow_goes_on_with_its_variables(tmp_path: Path) -> None:
    chat = Timed(load(tmp_path, WAIT))
    chat.send("hi")
    assert texts(chat.send("2026-06-10 09:00")) == ["Đã đặt 2026-06-10 09:00"]
    [wait] = chat.outcome.effects
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    assert isinstance(wait, SetTimer) and wait.kind == "wait" and wait.step == "#3"
    assert wait.due == datetime(2026, 6, 9, 8, 0, tzinfo=zone).timestamp()
    assert wait.data == {"vars": {"appointment": "2026-06-10 09:00"}, "stack": []}
    assert chat.state is not None and chat.state.status == IDLE and chat.state.vars == {}  # free meanwhile
    chat.now += 3600
    assert texts(chat.send("tên")) == ["Tên?"]  # another conversation while the wait runs
    assert texts(chat.send("Lan")) == ["Chào Lan"]
    assert [t.set.kind for t in chat.pending()] == ["wait"]  # the customer's messages leave it alone
    said = chat.later(wait.due - chat.now)
    assert texts(said) == ["Mai 2026-06-10 09:00 bạn đến chứ?"]
    assert chat.outcome.note == "the wait ended: the flow went on"
    assert chat.state is not None and (chat.state.status, chat.state.step) == (WAITING, "remind")
    assert effects(chat) == (SetTimer("timeout", wait.due + 7200, "main", "remind", 1),)
    assert texts(chat.tap("main.remind.1", "Có")) == ["Hẹn gặp"]


def test_a_flow_calls_the_waits_of_another_off_and_goes_on(tmp_path: Path) -> None:
    flows = WAIT.replace("triggers:\n", """  cancel:
    steps:
      - wait: {cancel: main}
      - end: "Đã hủy lịch hẹn"
triggers:
  - {words: [hủy hẹn], goto: cancel}
""")
    chat = Timed(load(tmp_path, flows))
    chat.send("hi")
    chat.send("2026-06-10 09:00")
    [wait] = chat.pending()
    assert texts(chat.send("huy hen")) == ["Đã hủy lịch hẹn"]  # the diacritics forgiven, as in every trigger
    assert effects(chat) == (CancelTimers(("wait",), "called off by flow cancel", "main"),)
    assert chat.pending() == [] and wait.status == "cancelled"
    assert texts(chat.later(30 * 86400)) == []  # the reminder never comes


def test_a_moment_already_past_goes_to_past_and_an_unreadable_one_goes_on(tmp_path: Path) -> None:
    chat = Timed(load(tmp_path, WAIT))
    chat.send("hi")
    soon = datetime.fromtimestamp(START + 3 * 3600, ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y-%m-%d %H:%M")
    assert texts(chat.send(soon))[-1] == "Gần quá, không nhắc"  # the day before at 8:00 has passed
    chat = Timed(load(tmp_path, WAIT.replace("until: appointment", "until: nothing")))
    chat.send("hi")
    assert texts(chat.send("2026-06-10 09:00"))[-1] == "Mai 2026-06-10 09:00 bạn đến chứ?"


def test_a_wait_that_ends_while_the_customer_is_elsewhere_runs_first_then_they_come_back(tmp_path: Path) -> None:
    chat = Timed(load(tmp_path, WAIT.replace("wait: {until: appointment, before: 1d, at: \"08:00\", past: soon}",
                                             "wait: 2h")))
    chat.send("hi")
    chat.send("2026-06-10 09:00")
    chat.now += 3600
    chat.send("tên")  # waiting at "Tên?" when the wait ends
    said = chat.later(3600)
    assert texts(said) == ["Mai 2026-06-10 09:00 bạn đến chứ?"]
    assert texts(chat.tap("main.remind.1", "Có")) == ["Hẹn gặp", "Tên?"]  # back to what the wait cut into
    assert texts(chat.send("Lan")) == ["Chào Lan"]
    assert chat.state is not None and chat.state.status == IDLE


def test_a_wait_during_a_handoff_is_put_off(tmp_path: Path) -> None:
    chat = Timed(load(tmp_path, WAIT.replace("wait: {until: appointment, before: 1d, at: \"08:00\", past: soon}",
                                             "wait: 2h")))
    chat.send("hi")
    chat.send("2026-06-10 09:00")
    chat.feed(advance.TakeOver("test"))
    assert chat.later(2 * 3600) == []
    assert chat.outcome.note == "put off 10 minutes: a person has the conversation"
    assert [t.set.kind for t in chat.pending()] == ["wait"]
    chat.feed(advance.Resume())
    assert texts(chat.later(600)) == ["Mai 2026-06-10 09:00 bạn đến chứ?"]
