"""Make an outgoing message fit WhatsApp's limits instead of losing it (issue 11, bug 2).

A text filled in by a template can outgrow a limit only at run time. Nothing the customer
should see is dropped: a long text becomes several messages split at line or sentence
boundaries, an interactive message whose body is too long sends the long part as text
first and keeps its buttons or list under a short body, a title that outgrew its limit
is shortened with "…", and an option whose title came out empty is left out.
`check_limits` still judges the result: what cannot be fixed here (a bad link) is refused.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace

from wabot.whatsapp import outbound as o

__all__ = ["ELLIPSIS", "fit", "fit_all", "shorten", "split"]

ELLIPSIS = "…"
_BREAKS = (
    re.compile(r"\n\s*\n"),  # paragraphs
    re.compile(r"\n"),  # lines
    re.compile(r"(?<=[.!?…])\s+"),  # sentences
    re.compile(r"(?<=[,;:])\s+"),  # clauses
    re.compile(r"\s+"),  # words
)


def _size(text: str) -> int:
    return len(unicodedata.normalize("NFC", text))  # counted as sent (to_body normalises)


def shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, ending in "…" when it was longer."""
    text = unicodedata.normalize("NFC", text).strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]  # end on a whole word when that keeps most of the title
    return cut.rstrip(" ,;:-–") + ELLIPSIS


def split(text: str, limit: int) -> list[str]:
    """`text` in pieces of at most `limit` characters, cut at the widest boundary that fits."""
    text = unicodedata.normalize("NFC", text).strip()
    if len(text) <= limit:
        return [text] if text else []
    for boundary in _BREAKS:
        cuts = [m for m in boundary.finditer(text) if 0 < m.start() <= limit]
        if cuts:
            cut = cuts[-1]
            return [text[: cut.start()].rstrip(), *split(text[cut.end():], limit)]
    return [text[:limit], *split(text[limit:], limit)]  # one word longer than the limit


def fit_all(messages: tuple[o.Outgoing, ...] | list[o.Outgoing]) -> tuple[o.Outgoing, ...]:
    return tuple(part for message in messages for part in fit(message))


def fit(message: o.Outgoing) -> tuple[o.Outgoing, ...]:
    """`message` as one or more messages within WhatsApp's limits, in the order to send them."""
    if _fits(message):
        return (message,)  # nearly every message: nothing to change
    if isinstance(message, o.Text):
        return tuple(replace(message, body=part) for part in split(message.body, o.TEXT_BODY)) or (message,)
    if isinstance(message, o.Buttons):
        kept = _buttons(message.buttons)
        if not kept:
            return fit(o.Text(message.body))
        lead, body = _body(message.body)
        return (*lead, replace(message, body=body, buttons=kept, header=_short(message.header, o.HEADER),
                               footer=_short(message.footer, o.FOOTER)))
    if isinstance(message, o.ListMessage):
        sections = tuple(
            o.Section(_short(s.title, o.SECTION_TITLE), rows)
            for s in message.sections
            if (rows := tuple(
                o.Row(r.id, shorten(r.title, o.ROW_TITLE), _short(r.description, o.ROW_DESCRIPTION))
                for r in s.rows if r.title.strip() and r.id.strip()
            ))
        )
        if not sections:
            return fit(o.Text(message.body))
        lead, body = _body(message.body)
        return (*lead, replace(message, body=body, sections=sections, button=shorten(message.button, o.LIST_BUTTON),
                               header=_short(message.header, o.HEADER), footer=_short(message.footer, o.FOOTER)))
    if isinstance(message, o.CtaUrl):
        lead, body = _body(message.body)
        return (*lead, replace(message, body=body, display_text=shorten(message.display_text, o.CTA_TEXT),
                               header=_short(message.header, o.HEADER), footer=_short(message.footer, o.FOOTER)))
    if isinstance(message, o.Media) and message.caption and _size(message.caption) > o.CAPTION:
        # the picture first, then its whole caption as text
        return (replace(message, caption=None), *fit(o.Text(message.caption)))
    return (message,)


def _fits(message: o.Outgoing) -> bool:
    """A quick look: no text or title over its limit, no empty option (the usual case)."""
    if isinstance(message, o.Text):
        return len(message.body) <= o.TEXT_BODY  # NFC is never longer than what was given
    if isinstance(message, o.Buttons):
        return (len(message.body) <= o.INTERACTIVE_BODY and _short_enough(message.header, message.footer)
                and all(b.title.strip() and len(b.title) <= o.BUTTON_TITLE for b in message.buttons)
                and len({b.title for b in message.buttons}) == len(message.buttons))
    if isinstance(message, o.ListMessage):
        return (len(message.body) <= o.INTERACTIVE_BODY and _short_enough(message.header, message.footer)
                and len(message.button) <= o.LIST_BUTTON
                and all(len(s.title or "") <= o.SECTION_TITLE and all(
                    r.title.strip() and r.id.strip() and len(r.title) <= o.ROW_TITLE
                    and len(r.description or "") <= o.ROW_DESCRIPTION for r in s.rows) for s in message.sections))
    if isinstance(message, o.CtaUrl):
        return (len(message.body) <= o.INTERACTIVE_BODY and _short_enough(message.header, message.footer)
                and len(message.display_text) <= o.CTA_TEXT)
    if isinstance(message, o.Media):
        return len(message.caption or "") <= o.CAPTION
    return True


def _short_enough(header: str | None, footer: str | None) -> bool:
    return len(header or "") <= o.HEADER and len(footer or "") <= o.FOOTER


def _body(text: str) -> tuple[tuple[o.Outgoing, ...], str]:
    """(texts to send first, the body that stays with the buttons or list: the last paragraph, line or
    sentence that fits)."""
    text = unicodedata.normalize("NFC", text).strip()
    if len(text) <= o.INTERACTIVE_BODY:
        return (), text
    for boundary in _BREAKS:
        cuts = [m for m in boundary.finditer(text) if 0 < len(text) - m.end() <= o.INTERACTIVE_BODY]
        if cuts:
            cut = cuts[-1]  # the last paragraph (line, sentence...): the question itself, usually
            return fit(o.Text(text[: cut.start()])), text[cut.end():]
    return fit(o.Text(text[: -o.INTERACTIVE_BODY])), text[-o.INTERACTIVE_BODY:]


def _short(text: str | None, limit: int) -> str | None:
    return shorten(text, limit) if text else text


def _buttons(buttons: tuple[o.Button, ...]) -> tuple[o.Button, ...]:
    """Empty buttons left out, long titles shortened; shortening must keep titles apart."""
    kept = [o.Button(b.id, shorten(b.title, o.BUTTON_TITLE)) for b in buttons if b.title.strip() and b.id.strip()]
    titles = [b.title for b in kept]
    if len(set(titles)) < len(titles):
        # two titles that differ only past the limit: number them so the customer can tell them apart
        kept = [o.Button(b.id, shorten(f"{i}. {b.title}", o.BUTTON_TITLE)) for i, b in enumerate(kept, start=1)]
    return tuple(kept)
