"""Options from data (`from:`), option ids next to titles, synonyms and typed ids (issue 11, items 5, 6, 9)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.enginekit import Chat, bodies, choices, load
from wabot.errors import FlowError
from wabot.flows.load import load_bot
from wabot.whatsapp import outbound

CLINIC = """
    flows:
      main:
        steps:
          - set:
              slots: "{{ range(8, 21) | list }}"
              services:
                - {code: cao_voi, vi: "Cạo vôi răng", en: "Scaling", doctor: "BS. Lan"}
                - {code: nho_rang, vi: "Nhổ răng", en: "Extraction", doctor: "BS. Minh"}
          - menu:
              text: {vi: "Bạn cần dịch vụ nào?", en: "Which service?"}
              save: service
              options:
                - from: services
                  id: "{{ item.code }}"
                  title: {vi: "{{ item.vi }}", en: "{{ item.en }}"}
                  description: "{{ item.doctor }}"
                  synonyms: ["lấy cao răng"]
                  goto: slot
                - {id: other, title: {vi: "Khác", en: "Other"}, synonyms: ["dịch vụ khác"], goto: main}
          - id: slot
            ask: "Chọn giờ khám:"
            save: slot
            expect:
              choice:
                - from: "{{ slots }}"
                  title: "{{ item }}h00"
                  empty: "Hôm nay đã kín lịch, bạn quay lại mai nhé."
          - end: "Đã đặt {{ service }} ({{ service_id }}) lúc {{ slot }}."
"""


def test_a_menu_from_data_saves_the_title_and_the_id_whatever_the_language(tmp_path: Path) -> None:
    bot = load(tmp_path, CLINIC)
    chat = Chat(bot)
    (menu,) = chat.send("hi")
    assert isinstance(menu, outbound.Buttons)
    assert [(b.id, b.title) for b in menu.buttons] == [("cao_voi", "Cạo vôi răng"), ("nho_rang", "Nhổ răng"),
                                                       ("other", "Khác")]
    chat.tap("cao_voi", "Cạo vôi răng")
    assert chat.state is not None
    assert (chat.state.vars["service"], chat.state.vars["service_id"]) == ("Cạo vôi răng", "cao_voi")
    assert chat.state.vars["service_item"]["doctor"] == "BS. Lan"
    english = Chat(bot)
    english.state = None
    english.send("hi")
    assert english.state is not None
    english.state = english.state.with_(vars={**english.state.vars, "lang": "en"})
    english.send("scaling")  # typed title, in the customer's language
    assert (english.state.vars["service"], english.state.vars["service_id"]) == ("Scaling", "cao_voi")


def test_thirteen_slots_from_data_are_paged_and_picked_by_number_title_or_tap(tmp_path: Path) -> None:
    chat = Chat(load(tmp_path, CLINIC))
    chat.send("hi")
    (page,) = chat.send("lay cao rang")  # a synonym of the option
    assert isinstance(page, outbound.ListMessage)
    assert [r.title for r in page.sections[0].rows] == [f"{h}h00" for h in range(8, 17)] + ["Xem thêm"]
    (second,) = chat.send("Xem thêm")
    assert [t for _, t in choices(second)] == [f"{h}h00" for h in range(17, 21)]
    assert bodies(chat.send("19h00")) == ["Đã đặt Cạo vôi răng (cao_voi) lúc 19h00."]
    chat.send("hi")
    chat.send("nho_rang")  # a typed option id
    assert bodies(chat.send("13")) == ["Đã đặt Nhổ răng (nho_rang) lúc 20h00."]  # typed number, over both pages


def test_an_empty_list_says_the_authors_text_and_goes_on(tmp_path: Path) -> None:
    chat = Chat(load(tmp_path, CLINIC.replace('"{{ range(8, 21) | list }}"', "[]")))
    chat.send("hi")
    assert bodies(chat.send("Cạo vôi răng")) == ["Hôm nay đã kín lịch, bạn quay lại mai nhé.",
                                                 "Đã đặt Cạo vôi răng (cao_voi) lúc ."]
    assert chat.state is not None and chat.state.status == "idle"


def test_items_whose_title_comes_out_empty_or_repeated_are_left_out(tmp_path: Path) -> None:
    source = CLINIC.replace('"{{ range(8, 21) | list }}"', '["9", "", "9", "10"]').replace('"{{ item }}h00"',
                                                                                           '"{{ item }}"')
    chat = Chat(load(tmp_path, source))
    chat.send("hi")
    (question,) = chat.send("1")
    assert [t for _, t in choices(question)] == ["9", "10"]


BOOKING = """
    flows:
      main:
        steps:
          - ask: "Bạn muốn khám ngày nào?"
            save: day
            expect: {date: {min: today, max: "+60d"}}
          - ask: "Mấy giờ ạ? (8h–17h)"
            save: at
            expect: {time: {min: "08:00", max: "17:00"}}
          - end: "Hẹn bạn {{ day }} lúc {{ at }}."
"""


def test_a_bounded_date_and_time_say_why_an_answer_is_refused(tmp_path: Path) -> None:
    chat = Chat(load(tmp_path, BOOKING), now=1_797_724_800.0)  # 2026-12-20 07:00 in Hồ Chí Minh City, a Sunday
    chat.send("hi")
    assert bodies(chat.send("15/12/2026")) == ["Ngày đó đã qua rồi, bạn chọn từ hôm nay trở đi nhé.",
                                          "Bạn muốn khám ngày nào?"]
    assert bodies(chat.send("thứ 6 tuần sau")) == ["Mấy giờ ạ? (8h–17h)"]
    assert bodies(chat.send("7 giờ tối")) == ["Bên mình nhận đến 17:00, bạn chọn giờ sớm hơn nhé.",
                                             "Mấy giờ ạ? (8h–17h)"]
    assert bodies(chat.send("2 giờ chiều")) == ["Hẹn bạn 2026-12-25 lúc 14:00."]


def test_expect_time_is_a_kind_and_a_wrong_bound_is_named(tmp_path: Path) -> None:
    with pytest.raises(FlowError, match="'min: hôm kia' is not a date bound"):
        load(tmp_path, BOOKING.replace("min: today", "min: hôm kia"))


def test_the_saved_id_and_item_are_known_variables(tmp_path: Path) -> None:
    path = tmp_path / "flows.yaml"
    used = "({{ service_id }}, {{ service_item.doctor }}, {{ slot_id }})"
    path.write_text(textwrap.dedent(CLINIC).replace("({{ service_id }})", used), encoding="utf-8")
    _, problems = load_bot([path], start="main", default_language="vi", session_timeout=1800,
                           timezone="Asia/Ho_Chi_Minh", env={})
    assert [str(p) for p in problems] == []
