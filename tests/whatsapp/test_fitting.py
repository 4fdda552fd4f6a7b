"""Fitting messages into WhatsApp's limits: split, shortened, left out — never dropped (issue 11, bug 2)."""

from __future__ import annotations

from wabot.whatsapp import outbound as o
from wabot.whatsapp.fitting import fit, shorten, split

SENTENCE = "Em bị đau răng hàm bên trái khi uống nước lạnh, đã ba ngày rồi ạ."


def test_a_long_text_is_split_at_line_then_sentence_boundaries_and_nothing_is_lost() -> None:
    lines = [f"Dòng {i}: " + "x" * 90 for i in range(60)]  # 6,000 characters in lines of 98
    parts = split("\n".join(lines), o.TEXT_BODY)
    assert len(parts) == 2 and all(len(p) <= o.TEXT_BODY for p in parts)
    assert "\n".join(parts) == "\n".join(lines)  # cut between lines, never inside one
    one_line = " ".join([SENTENCE] * 80)
    pieces = split(one_line, o.TEXT_BODY)
    assert all(p.endswith("ạ.") for p in pieces[:-1])  # cut after a sentence
    assert " ".join(pieces) == one_line


def test_a_word_longer_than_the_limit_is_cut_hard() -> None:
    assert [len(p) for p in split("a" * 50, 20)] == [20, 20, 10]


def test_a_long_interactive_body_goes_first_as_text_and_the_buttons_keep_a_short_body() -> None:
    note = " ".join([SENTENCE] * 17)  # over 1,100 characters, as the clinic's customer typed
    message = o.Buttons(f"Bạn xác nhận triệu chứng: {note}", (o.Button("y", "Đúng rồi"), o.Button("n", "Sửa lại")))
    first, second = fit(message)
    assert isinstance(first, o.Text) and isinstance(second, o.Buttons)
    assert second.body == SENTENCE and second.buttons == message.buttons
    assert f"{first.body} {second.body}" == message.body
    for part in (first, second):
        o.check_limits(part)


def test_titles_are_shortened_with_an_ellipsis_and_empty_options_left_out() -> None:
    late = "Khung giờ chiều muộn nhất"
    message = o.Buttons("Chọn giờ", (o.Button("a", "8:00"), o.Button("b", " "), o.Button("c", late)))
    (fitted,) = fit(message)
    assert isinstance(fitted, o.Buttons)
    assert [b.title for b in fitted.buttons] == ["8:00", "Khung giờ chiều…"]
    o.check_limits(fitted)
    long_row = o.Row("a", "Cạo vôi răng và đánh bóng toàn hàm")
    rows = o.ListMessage("Chọn", "Xem", (o.Section(None, (long_row, o.Row("b", ""))),))
    (fitted_list,) = fit(rows)
    assert isinstance(fitted_list, o.ListMessage)
    assert [r.title for r in fitted_list.sections[0].rows] == [shorten("Cạo vôi răng và đánh bóng toàn hàm", 24)]
    o.check_limits(fitted_list)


def test_titles_equal_after_shortening_are_numbered_to_stay_apart() -> None:
    message = o.Buttons("?", (o.Button("a", "Khám tổng quát buổi sáng"), o.Button("b", "Khám tổng quát buổi chiều")))
    (fitted,) = fit(message)
    assert isinstance(fitted, o.Buttons)
    o.check_limits(fitted)
    assert [b.title[:3] for b in fitted.buttons] == ["1. ", "2. "]


def test_options_that_all_came_out_empty_leave_the_question_as_text() -> None:
    (fitted,) = fit(o.Buttons("Chọn giờ khám:", (o.Button("a", ""),)))
    assert fitted == o.Text("Chọn giờ khám:")


def test_a_caption_too_long_follows_its_picture_as_text() -> None:
    media = o.Media("image", link="https://example.com/a.jpg", caption="Bảng giá. " * 150)
    picture, *texts = fit(media)
    assert picture == o.Media("image", link="https://example.com/a.jpg")
    assert texts and all(isinstance(t, o.Text) for t in texts)
