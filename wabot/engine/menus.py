"""Menus and choices: options -> reply buttons, a list, or pages of a list; a reply -> the option picked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wabot.text import fold
from wabot.whatsapp import inbound, outbound
from wabot.whatsapp.outbound import MAX_BUTTONS, MAX_ROWS

MORE_ID = "wabot.more"  # the "next page" row; a dot keeps it apart from author ids ([a-z0-9_])
NEXT_PAGE = -1  # what `pick` returns for the "next page" row
PAGE_ROWS = 9  # options per page when paging, plus the "next page" row


@dataclass(frozen=True, slots=True)
class Entry:
    """An option as shown: `names` are its folded titles in every language, for typed answers."""

    id: str
    title: str
    description: str | None = None
    names: tuple[str, ...] = ()  # with the option's synonyms
    source: int = 0  # which option of the step it comes from (several, for options from data)
    item: Any = None  # the list item it was made from (options from data)


def page_bounds(count: int, page: int) -> tuple[int, int, bool]:
    """(start, stop, has_more) of `page`; a page past the end shows the first page."""
    start = 0
    for _ in range(page):
        if count - start <= MAX_ROWS:
            return page_bounds(count, 0)
        start += PAGE_ROWS
    if count - start <= MAX_ROWS:
        return start, count, False
    return start, start + PAGE_ROWS, True


def message(
    body: str,
    entries: list[Entry],
    *,
    page: int = 0,
    button: str,
    more: str,
    header: str | None = None,
    footer: str | None = None,
) -> outbound.Outgoing:
    """Up to 3 entries -> reply buttons, up to 10 -> a list, more -> this page of a paged list."""
    if len(entries) <= MAX_BUTTONS:
        buttons = tuple(outbound.Button(e.id, e.title) for e in entries)
        return outbound.Buttons(body, buttons, header=header, footer=footer)
    start, stop, has_more = page_bounds(len(entries), page)
    rows = [outbound.Row(e.id, e.title, e.description) for e in entries[start:stop]]
    if has_more:
        rows.append(outbound.Row(MORE_ID, more))
    section = outbound.Section(None, tuple(rows))
    return outbound.ListMessage(body, button, (section,), header=header, footer=footer)


def pick(entries: list[Entry], reply: inbound.Message, *, page: int = 0, more: str = "") -> int | None:
    """Index of the entry the customer chose (tap, 1-based number or title), NEXT_PAGE, or None."""
    content = reply.content
    if isinstance(content, inbound.Reply):
        if content.id == MORE_ID:
            return NEXT_PAGE
        for i, entry in enumerate(entries):
            if entry.id == content.id:
                return i
    typed = fold(reply.text)
    if not typed:
        return None
    if typed.isdigit():
        number = int(typed)
        return number - 1 if 1 <= number <= len(entries) else None
    for i, entry in enumerate(entries):
        if typed in entry.names or typed == fold(entry.title):
            return i
    for i, entry in enumerate(entries):
        if typed == fold(entry.id):  # a typed option id ("DH123", "tra_sen")
            return i
    if more and typed == fold(more) and page_bounds(len(entries), page)[2]:
        return NEXT_PAGE
    return None


def next_page(count: int, page: int) -> int:
    """The page after `page` (back to the first after the last)."""
    return page + 1 if page_bounds(count, page)[2] else 0
