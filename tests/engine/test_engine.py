"""The engine, turn by turn: each step kind, menus, asks, jumps and the state they leave."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.enginekit import Chat, bodies, build, choices, flow, load, say
from wabot.engine import advance, handoffs
from wabot.flows import model
from wabot.state import HTTP, IDLE, WAITING
from wabot.whatsapp import inbound, outbound


def test_first_message_starts_the_start_flow_and_waits_at_the_menu(tmp_path: Path) -> None:
    chat = Chat(load(tmp_path, """
        flows:
          main:
            steps:
              - say: "Xin chào {{ contact.name }}!"
              - id: menu
                menu:
                  text: "Bạn cần gì?"
                  options:
                    - {title: "Xem sản phẩm", goto: products}
                    - {title: "Gặp nhân viên", goto: products}
          products:
            steps:
              - say: "Danh sách sản phẩm"
    """))
    replies = chat.send("alo")
    assert bodies(replies) == ["Xin chào Lan!", "Bạn cần gì?"]
    assert isinstance(replies[1], outbound.Buttons)
    assert [title for _, title in choices(replies[1])] == ["Xem sản phẩm", "Gặp nhân viên"]
    assert chat.state is not None
    assert (chat.state.flow, chat.state.step, chat.state.status) == ("main", "menu", WAITING)


MENU = """
    flows:
      main:
        steps:
          - id: menu
            menu:
              text: "Chọn"
              save: picked
              options:
{options}
      done:
        steps:
          - say: "Bạn chọn {{{{ picked }}}}"
"""


def menu_bot(tmp_path: Path, count: int) -> Chat:
    options = "\n".join(f"                - {{title: \"Món số {i}\", goto: done}}" for i in range(1, count + 1))
    return Chat(load(tmp_path, MENU.format(options=options)))


def test_menu_of_three_is_buttons_answered_by_tap_number_or_title(tmp_path: Path) -> None:
    chat = menu_bot(tmp_path, 3)
    [menu] = chat.send("hi")
    assert isinstance(menu, outbound.Buttons) and len(menu.buttons) == 3
    tapped = menu.buttons[1]
    assert bodies(chat.tap(tapped.id, tapped.title)) == ["Bạn chọn Món số 2"]
    chat.send("hi")
    assert bodies(chat.send("3")) == ["Bạn chọn Món số 3"]
    chat.send("hi")
    assert bodies(chat.send("mon so 1")) == ["Bạn chọn Món số 1"]
    assert chat.state is not None and chat.state.status == IDLE


def test_menu_of_seven_is_one_list(tmp_path: Path) -> None:
    chat = menu_bot(tmp_path, 7)
    [menu] = chat.send("hi")
    assert isinstance(menu, outbound.ListMessage)
    assert len(choices(menu)) == 7 and menu.button == "Chọn"
    assert bodies(chat.send("7")) == ["Bạn chọn Món số 7"]


def test_menu_of_fifteen_pages_with_a_more_row(tmp_path: Path) -> None:
    chat = menu_bot(tmp_path, 15)
    [first] = chat.send("hi")
    rows = choices(first)
    assert len(rows) == 10 and rows[-1][1] == "Xem thêm"
    assert [t for _, t in rows[:9]] == [f"Món số {i}" for i in range(1, 10)]
    [second] = chat.tap(rows[-1][0], "Xem thêm")
    assert [t for _, t in choices(second)] == [f"Món số {i}" for i in range(10, 16)]
    assert chat.state is not None and chat.state.page == 1
    assert bodies(chat.send("Món số 12")) == ["Bạn chọn Món số 12"]
    chat.send("hi")
    [again] = chat.send("xem them")  # typed, without diacritics
    assert choices(again)[0][1] == "Món số 10"


def test_menu_options_call_end_and_unknown_answers(tmp_path: Path) -> None:
    chat = Chat(load(tmp_path, """
        flows:
          main:
            steps:
              - menu:
                  text: "Chọn"
                  options:
                    - {title: "Trợ giúp", call: help}
                    - {title: "Thoát", end: true}
              - say: "never reached"
          help:
            steps:
              - say: "Đây là trợ giúp"
        fallback:
          say: "Không hiểu"
          after: 5
    """))
    chat.send("hi")
    assert bodies(chat.send("trợ giúp")) == ["Đây là trợ giúp", "Chọn"]  # called, then the menu again
    assert bodies(chat.send("gì vậy")) == ["Không hiểu", "Chọn"]
    assert chat.state is not None and chat.state.misses == 1
    assert bodies(chat.send("thoat")) == []
    assert chat.state.status == IDLE and chat.state.stack == ()


ASK = """
    flows:
      main:
        steps:
          - ask: "Bạn lấy mấy phần?"
            save: quantity
            expect: {{integer: {{min: 1, max: 50}}}}
            {retry}
            attempts: 3
            on_fail: failed
          - say: "Số lượng: {{{{ quantity }}}} ({{{{ quantity * 45000 | money }}}})"
          - end: true
          - id: failed
            say: "Để nhân viên giúp bạn nhé"
"""


def test_ask_saves_a_typed_value_after_a_retry(tmp_path: Path) -> None:
    chat = Chat(load(tmp_path, ASK.format(retry='retry: "Từ 1 đến 50 thôi nhé"')))
    assert bodies(chat.send("hi")) == ["Bạn lấy mấy phần?"]
    assert bodies(chat.send("100")) == ["Từ 1 đến 50 thôi nhé"]
    assert chat.state is not None and chat.state.attempts == 1
    assert bodies(chat.send("2 ly")) == ["Số lượng: 2 (90.000 ₫)"]
    assert chat.state.status == IDLE


def test_ask_without_retry_explains_and_asks_again_then_gives_up(tmp_path: Path) -> None:
    chat = Chat(load(tmp_path, ASK.format(retry="")))
    chat.send("hi")
    assert bodies(chat.send("nhiều")) == ["Bạn nhập một số từ 1 đến 50 nhé.", "Bạn lấy mấy phần?"]
    chat.send("0")
    assert bodies(chat.send("1,5")) == ["Để nhân viên giúp bạn nhé"]  # third failure: on_fail
    assert chat.state is not None and chat.state.status == IDLE and "quantity" not in chat.state.vars


def test_ask_choice_shows_buttons_and_matches_titles(tmp_path: Path) -> None:
    chat = Chat(load(tmp_path, """
        flows:
          main:
            steps:
              - say: "Chào bạn"
              - ask: "Bạn chọn cỡ nào?"
                save: size
                expect: {choice: ["Nhỏ", "Vừa", {id: size_l, title: "Lớn"}]}
              - ask: "Giao hôm nào?"
                save: day
                expect: date
              - say: "Cỡ {{ size }}, ngày {{ day | date }}"
    """))
    replies = chat.send("hi")
    assert bodies(replies) == ["Chào bạn", "Bạn chọn cỡ nào?"]
    assert [t for _, t in choices(replies[1])] == ["Nhỏ", "Vừa", "Lớn"]
    assert ("size_l", "Lớn") in choices(replies[1])
    retry = chat.send("to")
    assert isinstance(retry[-1], outbound.Buttons)  # the choices again
    assert bodies(chat.send("vua")) == ["Giao hôm nào?"]
    assert bodies(chat.send("25/11/2026")) == ["Cỡ Vừa, ngày 25/11/2026"]


def test_ask_media_and_location(tmp_path: Path) -> None:
    chat = Chat(load(tmp_path, """
        flows:
          main:
            steps:
              - ask: "Gửi ảnh sản phẩm"
                save: photo
                expect: image
              - ask: "Gửi vị trí"
                save: place
                expect: location
              - say: "{{ photo.id }} {{ place.name }}"
    """))
    chat.send("hi")
    assert bodies(chat.send("đây")) == ["Bạn gửi hình hoặc tệp giúp mình nhé.", "Gửi ảnh sản phẩm"]
    assert bodies(chat.message("image", inbound.Media("image", "m-1", mime_type="image/jpeg"))) == ["Gửi vị trí"]
    assert bodies(chat.message("location", inbound.Location(10.7, 106.7, name="Nhà"))) == ["m-1 Nhà"]


def test_if_and_set_keep_types(tmp_path: Path) -> None:
    chat = Chat(load(tmp_path, """
        flows:
          main:
            steps:
              - ask: "Số lượng?"
                save: quantity
                expect: integer
              - set:
                  total: "{{ quantity * 45000 }}"
                  label: "Đơn của {{ contact.name }}"
                  tags: [a, b]
              - if: "total >= 500000"
                then: free
                else: paid
              - id: free
                say: "{{ label }}: miễn phí giao, {{ total | money }}"
              - end: true
              - id: paid
                say: "{{ label }}: {{ (total + 20000) | money }}"
    """))
    chat.send("hi")
    assert bodies(chat.send("20")) == ["Đơn của Lan: miễn phí giao, 900.000 ₫"]
    chat.send("hi")
    assert bodies(chat.send("2")) == ["Đơn của Lan: 110.000 ₫"]
    assert chat.state is not None and chat.state.status == IDLE


def test_set_keeps_numbers_in_the_saved_state() -> None:
    bot = build(
        flow("main", model.Set({"total": "{{ 2 * 45000 }}", "note": "x{{ 1 + 1 }}", "n": 3}),
             model.Ask((model.TextSpec({"*": "?"}),), save="a")),
    )
    chat = Chat(bot)
    chat.send("hi")
    assert chat.state is not None
    assert chat.state.vars == {"total": 90000, "note": "x2", "n": 3}


def test_route_keywords_regex_save_and_else(tmp_path: Path) -> None:
    bot = load(tmp_path, r"""
        flows:
          main:
            steps:
              - route:
                  - keywords: ["giá", "bao nhiêu"]
                    goto: prices
                  - regex: '\bDH\d{5}\b'
                    save: code
                    goto: track
                prompt: "Bạn hỏi gì?"
                else: other
          prices:
            steps: [{say: "Bảng giá"}]
          track:
            steps: [{say: "Đơn {{ code }}"}]
          other:
            steps: [{say: "Chuyển nhân viên"}]
    """)
    chat = Chat(bot)
    assert bodies(chat.send("hi")) == ["Bạn hỏi gì?"]
    assert bodies(chat.send("Trà sen GIA bao nhieu vậy?")) == ["Bảng giá"]
    chat.send("hi")
    assert bodies(chat.send("kiểm tra đơn dh12345 giúp em")) == ["Đơn dh12345"]
    chat.send("hi")
    assert bodies(chat.send("giay dep")) == ["Chuyển nhân viên"]  # "gia" is not a whole word in "giay"


def test_http_effect_round_trip_and_error(tmp_path: Path) -> None:
    bot = load(tmp_path, """
        flows:
          main:
            steps:
              - ask: "Mã đơn?"
                save: code
              - http:
                  method: POST
                  url: "{{ env.API }}/orders/{{ code }}"
                  headers: {Authorization: "Bearer {{ env.TOKEN }}"}
                  body: {code: "{{ code }}", count: "{{ 1 + 1 }}"}
                  timeout: 5
                  save: order
                  on_error: failed
              - say: "Đơn {{ code }}: {{ order.status }}, giao {{ order.eta | date }}"
              - end: true
              - id: failed
                say: "Không tra được ({{ order_error }})"
    """, env={"API": "http://127.0.0.1:9", "TOKEN": "t0k"})
    chat = Chat(bot)
    chat.send("hi")
    assert chat.send("DH12345") == []
    [call] = chat.effects
    assert call == advance.HttpCall(
        "POST", "http://127.0.0.1:9/orders/DH12345", {"Authorization": "Bearer t0k"},
        {"code": "DH12345", "count": 2}, 5.0,
    )
    assert chat.state is not None and chat.state.status == HTTP
    replies = chat.feed(advance.HttpResult(True, 200, {"status": "đang giao", "eta": "2026-11-25"}))
    assert bodies(replies) == ["Đơn DH12345: đang giao, giao 25/11/2026"]
    chat.send("hi")
    chat.send("DH99999")
    assert bodies(chat.feed(advance.HttpResult(False, 500, None, "the server answered 500"))) == [
        "Không tra được (the server answered 500)"
    ]


def test_http_result_without_a_waiting_http_step_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    chat = Chat(build(flow("main", model.Ask((model.TextSpec({"*": "?"}),), save="a"))))
    chat.send("hi")
    before = chat.state
    with caplog.at_level(logging.WARNING):
        assert chat.feed(advance.HttpResult(True, 200, {})) == []
    assert chat.state == before
    assert "no http step" in caplog.text


def test_call_and_return_come_back_after_the_caller(tmp_path: Path) -> None:
    chat = Chat(load(tmp_path, """
        flows:
          main:
            steps:
              - say: "một"
              - call: sub
              - say: "bốn"
          sub:
            steps:
              - say: "hai"
              - if: "true"
                then: return
              - say: "never"
    """))
    assert bodies(chat.send("hi")) == ["một", "hai", "bốn"]
    assert chat.state is not None and chat.state.stack == () and chat.state.status == IDLE


def test_nested_calls_from_the_last_step_unwind() -> None:
    bot = build(
        flow("main", model.Goto(model.Jump("call", "a")), say("sau a")),
        flow("a", say("a"), model.Goto(model.Jump("call", "b"))),  # a call as a flow's last step
        flow("b", say("b"), model.Ask((model.TextSpec({"*": "b?"}),), save="x")),
    )
    chat = Chat(bot)
    assert bodies(chat.send("hi")) == ["a", "b", "b?"]
    assert chat.state is not None and len(chat.state.stack) == 2
    assert bodies(chat.send("ok")) == ["sau a"]


TRIGGERS = """
    flows:
      main:
        steps:
          - id: menu
            menu:
              text: "Menu chính"
              options:
                - {title: "Đặt hàng", goto: order}
                - {title: "Trợ giúp", goto: order}
      order:
        steps:
          - ask: "Số lượng?"
            save: quantity
            expect: integer
          - ask: "Ghi chú?"
            save: note
            triggers: false
          - menu:
              text: "Chọn size"
              options:
                - {title: "Menu", goto: main}
                - {title: "Lớn", goto: main}
      help:
        steps:
          - say: "Gõ menu để về đầu"
    triggers:
      - words: ["menu", "bắt đầu"]
        goto: main.menu
      - words: ["trợ giúp", "help"]
        call: help
"""


def test_trigger_word_wins_over_a_waiting_ask(tmp_path: Path) -> None:
    chat = Chat(load(tmp_path, TRIGGERS))
    chat.send("hi")
    chat.send("dat hang")
    assert bodies(chat.send("Bắt đầu")) == ["Menu chính"]
    assert chat.state is not None and chat.state.step == "menu"


def test_call_trigger_resumes_the_waiting_step(tmp_path: Path) -> None:
    chat = Chat(load(tmp_path, TRIGGERS))
    chat.send("hi")
    chat.send("1")
    assert bodies(chat.send("help")) == ["Gõ menu để về đầu", "Số lượng?"]
    assert chat.state is not None and chat.state.stack == () and chat.state.flow == "order"
    assert bodies(chat.send("2")) == ["Ghi chú?"]


def test_a_step_that_accepts_the_word_or_refuses_triggers_keeps_it(tmp_path: Path) -> None:
    chat = Chat(load(tmp_path, TRIGGERS))
    chat.send("hi")
    assert bodies(chat.send("trợ giúp")) == ["Số lượng?"]  # the menu's own option, not the trigger
    chat.send("2")
    assert bodies(chat.send("menu")) == ["Chọn size"]  # triggers: false -> "menu" is the note
    assert chat.state is not None and chat.state.vars["note"] == "menu"
    assert bodies(chat.send("menu")) == ["Menu chính"]  # the option titled "Menu" -> main


def test_trigger_from_idle(tmp_path: Path) -> None:
    chat = Chat(load(tmp_path, TRIGGERS))
    assert bodies(chat.send("help")) == ["Gõ menu để về đầu"]
    assert chat.state is not None and chat.state.status == IDLE


def test_fallback_says_and_reprompts_then_escalates(tmp_path: Path) -> None:
    chat = Chat(load(tmp_path, """
        flows:
          main:
            steps:
              - menu:
                  text: "Chọn"
                  options:
                    - {title: "A", goto: human}
                    - {title: "B", goto: human}
          human:
            steps:
              - handoff: "Chờ nhân viên nhé"
                reason: "không hiểu"
        fallback:
          say: "Xin lỗi, mình chưa hiểu"
          after: 2
          goto: human
    """))
    chat.send("hi")
    assert bodies(chat.send("zzz")) == ["Xin lỗi, mình chưa hiểu", "Chọn"]
    assert bodies(chat.send("yyy")) == ["Chờ nhân viên nhé"]
    assert chat.effects == (advance.HandoffOpened("không hiểu"),)


def test_a_good_answer_resets_the_miss_count(tmp_path: Path) -> None:
    chat = Chat(load(tmp_path, """
        flows:
          main:
            steps:
              - menu: {text: "Chọn", options: [{title: "A", goto: main}, {title: "B", goto: main}]}
          human:
            steps: [{say: "nhân viên"}]
        fallback: {say: "Chưa hiểu", after: 2, goto: human}
    """))
    chat.send("hi")
    chat.send("zzz")
    chat.send("a")
    assert bodies(chat.send("zzz")) == ["Chưa hiểu", "Chọn"]


HANDOFF = """
    flows:
      main:
        steps:
          - menu: {text: "Chọn", options: [{title: "Nhân viên", goto: human}, {title: "Khác", goto: main}]}
      human:
        steps:
          - handoff: "Mình đã báo nhân viên"
          - say: "Bot quay lại đây"
          - goto: main
"""


def test_handoff_silences_the_bot_until_resume(tmp_path: Path) -> None:
    chat = Chat(load(tmp_path, HANDOFF))
    chat.send("hi")
    assert bodies(chat.send("nhan vien")) == ["Mình đã báo nhân viên"]
    assert chat.effects == (advance.HandoffOpened(""),)
    assert chat.send("alo?") == [] and chat.send("menu") == []
    chat.wait(3 * 3600)
    chat.feed(advance.Answered())  # a person wrote: the handoff's four hours start again
    chat.wait(3 * 3600)
    assert chat.feed(advance.Tick()) == []
    assert bodies(chat.feed(advance.Resume())) == ["Bot quay lại đây", "Chọn"]
    assert chat.state is not None and chat.state.status == WAITING


def test_a_handoff_never_mutes_a_customer_for_ever(tmp_path: Path) -> None:
    source = HANDOFF.replace('- handoff: "Mình đã báo nhân viên"',
                             '- handoff: "Mình đã báo nhân viên"\n            back: ["quay lại bot"]')
    bot = load(tmp_path, source + "    welcome_back: Chào mừng quay lại\n", stop_words=["STOP"])
    chat = Chat(bot)
    chat.send("hi")
    chat.send("nhan vien")
    chat.wait(30 * 86400)  # a month later, with the server stopped all along: no "nobody answered", a welcome
    assert bodies(chat.send("alo")) == ["Chào mừng quay lại", "Chọn"]
    chat.send("nhan vien")
    chat.wait(5 * 3600)
    assert bodies(chat.feed(advance.Tick())) == [handoffs.EXPIRED[0].text["vi"]]
    assert chat.state is not None and chat.state.status == IDLE
    chat.send("hi")
    chat.send("nhan vien")
    assert bodies(chat.send("Quay lai BOT!")) == ["Bot quay lại đây", "Chọn"]  # the step's back words
    chat.send("nhan vien")
    assert bodies(chat.send("stop")) == [handoffs.OPTED_OUT[0].text["vi"]]  # no trigger of the author's
    assert chat.state is not None and chat.state.status == IDLE


def test_resume_after_a_called_handoff_returns_to_the_caller() -> None:
    bot = build(
        flow("main", model.Goto(model.Jump("call", "human")), model.Ask((model.TextSpec({"*": "Tiếp?"}),), save="x")),
        flow("human", model.Handoff()),
    )
    chat = Chat(bot)
    assert chat.send("hi") == []
    assert bodies(chat.feed(advance.Resume())) == ["Tiếp?"]
    assert chat.feed(advance.Resume()) == []  # not in a handoff: nothing happens


def test_session_timeout_restarts_with_welcome_back(tmp_path: Path) -> None:
    chat = Chat(load(tmp_path, """
        flows:
          main:
            steps:
              - say: "Chào"
              - ask: "Tên bạn?"
                save: name
              - ask: "Tuổi?"
                save: age
        welcome_back: "Chào mừng bạn quay lại!"
    """, session_timeout=600))
    chat.send("hi")
    chat.send("Lan")
    chat.wait(599)
    assert bodies(chat.send("20")) == []  # in time: the answer counts, the flow ends
    chat.send("hi")
    chat.send("Lan")
    chat.wait(601)
    assert bodies(chat.send("20")) == ["Chào mừng bạn quay lại!", "Chào", "Tên bạn?"]
    assert chat.state is not None and chat.state.vars == {}


def test_loop_guard_stops_a_goto_cycle(caplog: pytest.LogCaptureFixture) -> None:
    bot = build(flow("main", ("a", say("vòng")), model.Goto(model.Jump("goto", "main", "a"))))
    chat = Chat(bot)
    with caplog.at_level(logging.ERROR):
        replies = chat.send("hi")
    assert 0 < len(replies) <= 10
    assert "goto" in caplog.text and "loop" in caplog.text
    assert chat.state is not None and chat.state.status == IDLE
    assert bodies(chat.send("hi"))[0] == "vòng"  # the next message starts again, still guarded


def test_language_selection(tmp_path: Path) -> None:
    bot = load(tmp_path, """
        flows:
          main:
            steps:
              - say: {reply: hello}
              - menu:
                  text: {vi: "Chọn ngôn ngữ", en: "Choose a language"}
                  options:
                    - {title: "English", goto: en}
                    - {title: "Tiếng Việt", goto: main}
          en:
            steps:
              - set: {lang: en}
              - say: {vi: "Đã đổi", en: "Switched to {{ lang }}"}
              - say: {fr: "Bonjour"}
        replies:
          hello: {vi: "Xin chào", en: "Hello"}
    """)
    chat = Chat(bot)
    assert bodies(chat.send("hi")) == ["Xin chào", "Chọn ngôn ngữ"]
    assert bodies(chat.send("english")) == ["Switched to en", "Bonjour"]  # no vi or en: any variant
    assert bodies(chat.send("hi")) == ["Hello", "Choose a language"]  # the language outlives the end


def test_reactions_are_ignored_and_state_is_json(tmp_path: Path) -> None:
    chat = Chat(load(tmp_path, HANDOFF))
    chat.send("hi")
    before = chat.state
    assert chat.message("reaction", inbound.Reaction("wamid.1", "👍")) == []
    assert chat.state is not None and before is not None
    assert chat.state.step == before.step and chat.state.status == WAITING
