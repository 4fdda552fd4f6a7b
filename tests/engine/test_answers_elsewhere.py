"""Answers that end up elsewhere (issue 11, bug 3): older menus, photo captions, regex matches."""

from __future__ import annotations

from pathlib import Path

from tests.enginekit import Chat, bodies, choices, load
from wabot.whatsapp import inbound

FLOWS = """
    flows:
      main:
        steps:
          - id: menu
            menu:
              text: "Bạn cần gì?"
              options:
                - {title: "Đặt lịch", goto: book}
                - {title: "Tra cứu", goto: lookup}
      book:
        steps:
          - ask: "Bạn tên gì?"
            save: name
            attempts: 2
            on_fail: main
          - end: "Cảm ơn {{ name }}."
      lookup:
        steps:
          - ask: "Mã đặt lịch của bạn?"
            save: code
            expect: {regex: 'HP\\d{5}'}
          - end: "Đang tra {{ code }}."
"""


def test_a_tap_on_an_older_menu_is_the_choice_it_was(tmp_path: Path) -> None:
    chat = Chat(load(tmp_path, FLOWS))
    (menu,) = chat.send("hi")
    lookup_id = next(id_ for id_, title in choices(menu) if title == "Tra cứu")
    assert bodies(chat.send("Đặt lịch")) == ["Bạn tên gì?"]
    assert bodies(chat.tap(lookup_id, "Tra cứu")) == ["Mã đặt lịch của bạn?"]  # not a wrong name
    assert chat.state is not None and (chat.state.flow, chat.state.attempts) == ("lookup", 0)
    chat.send("mã của em là HP12345 ạ")
    assert bodies(chat.tap(lookup_id, "Tra cứu")) == ["Mã đặt lịch của bạn?"]  # even after the conversation ended


def test_a_regex_answer_saves_the_match_and_ignores_case(tmp_path: Path) -> None:
    chat = Chat(load(tmp_path, FLOWS))
    chat.send("hi")
    chat.send("Tra cứu")
    assert bodies(chat.send("mã của em là hp12345 ạ")) == ["Đang tra hp12345."]


def test_a_photo_caption_is_not_a_typed_answer(tmp_path: Path) -> None:
    chat = Chat(load(tmp_path, FLOWS))
    chat.send("hi")
    chat.send("Đặt lịch")
    replies = chat.message("image", inbound.Media("image", "media-1", caption="Lan"))
    assert "Bạn tên gì?" in bodies(replies)
    assert chat.state is not None and "name" not in chat.state.vars
