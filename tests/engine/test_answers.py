"""Typed answers: what customers type -> the value an `ask` saves (or a miss)."""

from __future__ import annotations

from datetime import date

import pytest

from wabot.engine import answers, menus
from wabot.flows.model import Expect
from wabot.templates import Renderer
from wabot.whatsapp import inbound

TODAY = date(2026, 3, 1)
LAN = inbound.Customer("84912345678")


def message(content: inbound.Content, type_: str = "text") -> inbound.Message:
    return inbound.Message("wamid.1", LAN, "1000", 0, type_, content)


def parse(expect: Expect, body: str) -> answers.Answer:
    return answers.parse(expect, message(inbound.Text(body)), today=TODAY)


@pytest.mark.parametrize(
    ("typed", "value"),
    [("1.234,5", 1234.5), ("1,5", 1.5), ("1.5", 1.5), ("0,5", 0.5), ("150.000", 150000), ("150,000", 150000),
     ("1.234.567", 1234567), ("50k", 50000), ("1.5k", 1500), ("150.000đ", 150000), ("150000 ₫", 150000),
     ("-3", -3), ("2 ly", 2), ("3 phần", 3), ("2tr", 2000000), (" 7 ", 7)],
)
def test_numbers(typed: str, value: float) -> None:
    assert answers.parse_number(typed) == value
    assert type(answers.parse_number(typed)) is type(value)


@pytest.mark.parametrize("typed", ["abc", "1,2,3", "12.34.5", "hai", "2 tuần", "1.2.3,4,5", ""])
def test_not_numbers(typed: str) -> None:
    assert answers.parse_number(typed) is None


def test_number_and_integer_bounds() -> None:
    assert parse(Expect("number", min=1, max=99), "1,5") == answers.Answer(True, 1.5)
    assert not parse(Expect("number", min=1, max=99), "100").ok
    assert not parse(Expect("number", min=1), "0,5").ok
    assert parse(Expect("integer", min=1, max=50), "12") == answers.Answer(True, 12)
    assert not parse(Expect("integer"), "1,5").ok
    assert not parse(Expect("integer", max=50), "51").ok


@pytest.mark.parametrize(
    ("typed", "value"),
    [("0912 345 678", "0912345678"), ("0912.345.678", "0912345678"), ("+84 912 345 678", "0912345678"),
     ("84912345678", "0912345678"), ("(028) 1234-5678", "02812345678"), ("+1 415 555 2671", "+14155552671")],
)
def test_phones(typed: str, value: str) -> None:
    assert parse(Expect("phone"), typed) == answers.Answer(True, value)


@pytest.mark.parametrize("typed", ["091234567", "0012345678", "số của mình", "12345", "+84 12"])
def test_not_phones(typed: str) -> None:
    assert not parse(Expect("phone"), typed).ok


@pytest.mark.parametrize(
    ("typed", "value"),
    [("25/11/2026", "2026-11-25"), ("5/1/2026", "2026-01-05"), ("05-01-26", "2026-01-05"), ("2026-11-25", "2026-11-25"),
     ("25/11", "2026-11-25"), ("hôm nay", "2026-03-01"), ("ngay mai", "2026-03-02"), ("25.11.2026", "2026-11-25")],
)
def test_dates(typed: str, value: str) -> None:
    assert parse(Expect("date"), typed) == answers.Answer(True, value)


@pytest.mark.parametrize("typed", ["31/02/2026", "13/13/2026", "thứ mười", "2026/11/25x", "12", "ngày 32"])
def test_not_dates(typed: str) -> None:
    assert not parse(Expect("date"), typed).ok


@pytest.mark.parametrize("typed", ["Có", "co", "CÓ!", "ừ", "Ừ", "đồng ý", "dong y", "ok", "yes", "Vâng", "Dạ có",
                                   "có ạ"])
def test_yes(typed: str) -> None:
    assert parse(Expect("yes_no"), typed) == answers.Answer(True, True)


@pytest.mark.parametrize("typed", ["Không", "khong", "ko", "k", "no", "Dạ không", "không ạ", "thôi", "không đồng ý"])
def test_no(typed: str) -> None:
    assert parse(Expect("yes_no"), typed) == answers.Answer(True, False)


@pytest.mark.parametrize("typed", ["có lẽ", "không biết nữa", "để mình nghĩ", "maybe", "Chưa chắc"])
def test_neither_yes_nor_no(typed: str) -> None:
    # "có lẽ" starts with "có" and "không biết" with "không", yet neither is an answer
    assert not parse(Expect("yes_no"), typed).ok


def test_email_text_and_regex() -> None:
    assert parse(Expect("email"), " Lan.Nguyen@Gmail.COM ") == answers.Answer(True, "Lan.Nguyen@gmail.com")
    assert not parse(Expect("email"), "lan@gmail").ok
    assert not parse(Expect("email"), "lan gmail.com").ok
    assert parse(Expect("text", min=5), "12 Lê Lợi") == answers.Answer(True, "12 Lê Lợi")
    assert not parse(Expect("text", min=5), "Q1").ok
    assert not parse(Expect("text", max=3), "dài quá").ok
    assert not parse(Expect("text"), "   ").ok
    assert parse(Expect("regex", pattern=r"^DH\d{5}$"), "dh12345") == answers.Answer(True, "dh12345")
    assert not parse(Expect("regex", pattern=r"^DH\d{5}$"), "DH1234").ok


def test_media_location_and_any() -> None:
    photo = message(inbound.Media("image", "media-1", mime_type="image/jpeg", caption="áo"), "image")
    place = message(inbound.Location(10.77, 106.70, name="Chợ Bến Thành", address="Q1"), "location")
    assert answers.parse(Expect("image"), photo, today=TODAY) == answers.Answer(
        True, {"kind": "image", "id": "media-1", "mime_type": "image/jpeg", "caption": "áo"}
    )
    assert answers.parse(Expect("media"), photo, today=TODAY).ok
    assert not answers.parse(Expect("video"), photo, today=TODAY).ok
    assert not answers.parse(Expect("image"), message(inbound.Text("đây")), today=TODAY).ok
    assert answers.parse(Expect("location"), place, today=TODAY).value == {
        "latitude": 10.77, "longitude": 106.70, "name": "Chợ Bến Thành", "address": "Q1"
    }
    assert not answers.parse(Expect("location"), photo, today=TODAY).ok
    assert answers.parse(Expect("any"), photo, today=TODAY).value["id"] == "media-1"
    assert answers.parse(Expect("any"), message(inbound.Text("gì cũng được")), today=TODAY).value == "gì cũng được"


def test_choices_match_by_tap_number_or_title_without_diacritics() -> None:
    entries = [menus.Entry("order", "Đặt hàng", names=("dat hang", "order")),
               menus.Entry("track", "Tra cứu đơn", names=("tra cuu don",))]
    def pick(body: str) -> int | None:
        return menus.pick(entries, message(inbound.Text(body)))
    assert pick("dat hang") == 0
    assert pick("  ĐẶT HÀNG! ") == 0
    assert pick("Order") == 0
    assert pick("2") == 1
    assert pick("3") is None
    assert pick("đặt") is None
    assert menus.pick(entries, message(inbound.Reply("list_reply", "track", "x"), "interactive")) == 1


def test_hints_name_the_bounds() -> None:
    assert answers.hint(Expect("integer", min=1, max=50), "vi") == "Bạn nhập một số từ 1 đến 50 nhé."
    assert answers.hint(Expect("phone"), "en").startswith("That is not a phone number")


SUNDAY = date(2026, 12, 20)


@pytest.mark.parametrize(
    ("typed", "value"),
    [("thứ 3", "2026-12-22"), ("thứ ba", "2026-12-22"), ("T3", "2026-12-22"), ("chủ nhật", "2026-12-20"),
     ("CN", "2026-12-20"), ("thứ 6 tuần sau", "2026-12-25"), ("tuần sau", "2026-12-21"), ("ngày 25", "2026-12-25"),
     ("ngày 5", "2027-01-05"), ("25 tháng 12", "2026-12-25"), ("25 thg 12", "2026-12-25"), ("5/1", "2027-01-05"),
     ("mốt", "2026-12-22"), ("Thứ 2 ạ", "2026-12-21"), ("ngày 1 tháng 1 năm 2027", "2027-01-01")],
)
def test_vietnamese_dates_as_customers_type_them(typed: str, value: str) -> None:
    assert answers.parse(Expect("date"), _text(typed), today=SUNDAY) == answers.Answer(True, value)


@pytest.mark.parametrize(
    ("typed", "value"),
    [("9h", "09:00"), ("9h30", "09:30"), ("14:00", "14:00"), ("2 giờ chiều", "14:00"), ("9 rưỡi", "09:30"),
     ("8g", "08:00"), ("10 giờ tối", "22:00"), ("1 giờ trưa", "13:00")],
)
def test_times(typed: str, value: str) -> None:
    assert answers.parse(Expect("time"), _text(typed), today=SUNDAY) == answers.Answer(True, value)


@pytest.mark.parametrize("typed", ["12", "25h", "9h75", "sáng"])
def test_not_times(typed: str) -> None:
    assert not answers.parse(Expect("time"), _text(typed), today=SUNDAY).ok


@pytest.mark.parametrize(
    ("typed", "value"),
    [("sáng mai 9h", "2026-12-21 09:00"), ("9h thứ 6", "2026-12-25 09:00"), ("25/12 14:00", "2026-12-25 14:00"),
     ("chiều thứ 3 lúc 2h", "2026-12-22 14:00")],
)
def test_dates_with_times(typed: str, value: str) -> None:
    assert answers.parse(Expect("datetime"), _text(typed), today=SUNDAY) == answers.Answer(True, value)


def test_date_bounds_refuse_with_a_reason() -> None:
    bounded = Expect("date", earliest="today", latest="+60d")
    past = answers.parse(bounded, _text("19/12/2026"), today=SUNDAY)
    assert not past.ok and past.why is not None and "đã qua" in past.why[0]
    late = answers.parse(bounded, _text("25/2/2027"), today=SUNDAY)
    assert not late.ok and late.why is not None and "18/02/2027" in late.why[0]
    assert answers.parse(bounded, _text("18/2/2027"), today=SUNDAY).ok
    opening = Expect("time", earliest="08:00", latest="17:30")
    early = answers.parse(opening, _text("7h"), today=SUNDAY)
    assert not early.ok and early.why == ("Bên mình bắt đầu từ 08:00, bạn chọn giờ muộn hơn nhé.",
                                         "Please choose 08:00 or later.")


def _text(body: str) -> inbound.Message:
    return message(inbound.Text(body))


@pytest.mark.parametrize(
    ("typed", "value"),
    [("0912345678 ạ", "0912345678"), ("số em là 0912 345 678", "0912345678"), ("+84 (0) 912 345 678", "0912345678"),
     ("sdt: 0387.654.321 nhé", "0387654321"), ("(028) 3822 1234", "02838221234")],
)
def test_phones_as_a_vietnamese_shop_means_them(typed: str, value: str) -> None:
    answer = parse(Expect("phone"), typed)
    assert answer == answers.Answer(True, value)
    assert Renderer().render("{{ p | e164 }}", {"p": value}) == "+84" + value[1:]


@pytest.mark.parametrize("typed", ["0112345678", "09123456789", "0612345678", "01234567890"])
def test_retired_or_impossible_numbers_are_refused(typed: str) -> None:
    assert not parse(Expect("phone"), typed).ok
