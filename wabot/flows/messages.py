"""Building messages (say, ask, retry, replies...) from checked YAML values into MessageSpec values."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from wabot.flows.model import (
    ButtonsSpec,
    ChoiceSpec,
    ContactsSpec,
    CtaSpec,
    FromData,
    ListSpec,
    LocationSpec,
    MediaSpec,
    MessageSpec,
    ReplyRef,
    SectionSpec,
    TemplateSpec,
    TextSpec,
)
from wabot.flows.texts import Texts, Use, line_of
from wabot.text import fold
from wabot.whatsapp.inbound import MEDIA_KINDS
from wabot.whatsapp.outbound import (
    BUTTON_TITLE,
    CAPTION,
    CTA_TEXT,
    FOOTER,
    HEADER,
    INTERACTIVE_BODY,
    LIST_BUTTON,
    ROW_DESCRIPTION,
    ROW_TITLE,
    SECTION_TITLE,
    TEXT_BODY,
)

LANGUAGE = re.compile(r"^[a-z]{2}([_-][A-Za-z0-9]{2,8})?$")
WHOLE = re.compile(r"\{\{(.*)\}\}", re.DOTALL)  # `from: "{{ slots }}"` means `from: slots`


def synonyms(raw: dict[str, Any]) -> tuple[str, ...]:
    """An option's extra words, folded (case and diacritics ignored)."""
    return tuple(w for w in (fold(str(word)) for word in raw.get("synonyms") or ()) if w)


def is_language_map(raw: Any) -> bool:
    """`{vi: ..., en: ...}`: every key is a language code (message keys never are)."""
    return isinstance(raw, dict) and bool(raw) and all(isinstance(k, str) and LANGUAGE.match(k) for k in raw)


def plain(value: Any) -> Any:
    """A deep copy made of plain dicts and lists (no line tables)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Ctx:
    """Where messages are being built: the file, a readable place, and a prefix for made-up ids."""

    file: str
    where: str
    prefix: str


@dataclass(slots=True)
class MessageBuilder:
    texts: Texts

    def many(self, raw: Any, line: int, ctx: Ctx) -> tuple[MessageSpec, ...]:
        """One message or a list of them."""
        if isinstance(raw, list):
            return tuple(self.one(item, line_of(raw, i, line), ctx, n=i + 1) for i, item in enumerate(raw))
        return (self.one(raw, line, ctx),)

    def one(self, raw: Any, line: int, ctx: Ctx, *, n: int = 1) -> MessageSpec:
        t, file, where = self.texts, ctx.file, ctx.where
        if not isinstance(raw, dict) or is_language_map(raw):
            return TextSpec(t.text(raw, file, line, where, limit=TEXT_BODY, what="a text message"))
        at = raw.line if hasattr(raw, "line") else line
        prefix = f"{ctx.prefix}.m{n}" if n > 1 else ctx.prefix

        def text(key: str, *, limit: int = 0, what: str = "") -> Any:
            if key not in raw:
                return None
            return t.text(raw[key], file, line_of(raw, key, at), where, limit=limit, what=what or f"the {key}")

        if "reply" in raw:
            t.reply_uses.append(Use(str(raw["reply"]), file, line_of(raw, "reply", at), where))
            return ReplyRef(str(raw["reply"]))
        for kind in MEDIA_KINDS:
            if kind in raw:
                source = t.template(str(raw[kind]), file, line_of(raw, kind, at), where)
                filename = raw.get("filename")
                return MediaSpec(kind, source, text("caption", limit=CAPTION, what="the caption"),
                                 None if filename is None else str(filename))
        if "location" in raw:
            loc = raw["location"]
            ll = line_of(raw, "location", at)
            return LocationSpec(
                float(loc["latitude"]), float(loc["longitude"]),
                t.text(loc["name"], file, line_of(loc, "name", ll), where) if "name" in loc else None,
                t.text(loc["address"], file, line_of(loc, "address", ll), where) if "address" in loc else None,
            )
        if "contacts" in raw:
            return ContactsSpec(tuple(plain(c) for c in raw["contacts"]))
        if "template" in raw:
            tpl = raw["template"]
            lang = tpl.get("language")
            return TemplateSpec(str(tpl["name"]), None if lang is None else str(lang),
                                tuple(plain(c) for c in tpl.get("components", ())))
        header = text("header", limit=HEADER)
        footer = text("footer", limit=FOOTER)
        if "buttons" in raw:
            buttons = raw["buttons"]
            bl = line_of(raw, "buttons", at)
            return ButtonsSpec(
                text("text", limit=INTERACTIVE_BODY, what="the text above buttons"),
                tuple(self.choice(b, line_of(buttons, i, bl), ctx, f"{prefix}.{i + 1}", title_limit=BUTTON_TITLE)
                      for i, b in enumerate(buttons)),
                header, footer,
            )
        if "list" in raw:
            return self.list(raw, at, ctx, prefix, header, footer)
        if "link" in raw:
            link = raw["link"]
            ll = line_of(raw, "link", at)
            return CtaSpec(
                text("text", limit=INTERACTIVE_BODY, what="the text above the link button"),
                t.text(link["button"], file, line_of(link, "button", ll), where, limit=CTA_TEXT,
                       what="the link button"),
                t.template(str(link["url"]), file, line_of(link, "url", ll), where),
                header, footer,
            )
        return TextSpec(text("text", limit=TEXT_BODY, what="a text message"), bool(raw.get("preview_url", False)))

    def list(self, raw: Any, at: int, ctx: Ctx, prefix: str, header: Any, footer: Any) -> ListSpec:
        t, file, where = self.texts, ctx.file, ctx.where
        spec = raw["list"]
        ll = line_of(raw, "list", at)
        sections: list[SectionSpec] = []
        raw_sections = spec["sections"] if "sections" in spec else [{"rows": spec.get("rows", [])}]
        sl = line_of(spec, "sections" if "sections" in spec else "rows", ll)
        count = 0
        for i, section in enumerate(raw_sections):
            at_s = line_of(raw_sections, i, sl) if "sections" in spec else sl
            title = (t.text(section["title"], file, line_of(section, "title", at_s), where, limit=SECTION_TITLE,
                            what="a section title") if "title" in section else None)
            rows = section.get("rows", [])
            rl = line_of(section, "rows", at_s)
            built = []
            for j, row in enumerate(rows):
                count += 1
                built.append(self.choice(row, line_of(rows, j, rl), ctx, f"{prefix}.{count}", title_limit=ROW_TITLE))
            sections.append(SectionSpec(title, tuple(built)))
        if count > 10:
            t.problem(f"the list has {count} rows; WhatsApp allows at most 10 in all sections together",
                      file, ll, where, "remove rows, or use a menu step, which pages long lists")
        return ListSpec(
            t.text(raw["text"], file, line_of(raw, "text", at), where, limit=INTERACTIVE_BODY,
                   what="the text above the list"),
            t.text(spec["button"], file, line_of(spec, "button", ll), where, limit=LIST_BUTTON, what="the list button"),
            tuple(sections), header, footer,
        )

    def data(self, raw: dict[str, Any], line: int, ctx: Ctx) -> FromData | None:
        """`from: slots` (with `id:` and `empty:`): options made from a list at run time; `item` is each one."""
        if "from" not in raw:
            return None
        source = str(raw["from"]).strip()
        whole = WHOLE.fullmatch(source)
        source = whole[1].strip() if whole else source
        self.texts.template(source, ctx.file, line_of(raw, "from", line), ctx.where, expression=True)
        id_ = raw.get("id")
        if id_ is not None:
            self.texts.template(str(id_), ctx.file, line_of(raw, "id", line), ctx.where)
        empty = self.many(raw["empty"], line_of(raw, "empty", line), ctx) if "empty" in raw else ()
        return FromData(source, None if id_ is None else str(id_), empty)

    def choice(self, raw: Any, line: int, ctx: Ctx, made_up_id: str, *, title_limit: int) -> ChoiceSpec:
        """A button or list row: a title, or {id, title, description}."""
        t = self.texts
        what = "a button title" if title_limit == BUTTON_TITLE else "a list row title"
        if isinstance(raw, dict) and "title" in raw:
            desc = raw.get("description")
            data = self.data(raw, line, ctx)
            return ChoiceSpec(
                made_up_id if data else str(raw.get("id") or made_up_id),
                t.text(raw["title"], ctx.file, line_of(raw, "title", line), ctx.where, limit=title_limit, what=what),
                None if desc is None else t.text(desc, ctx.file, line_of(raw, "description", line), ctx.where,
                                                 limit=ROW_DESCRIPTION, what="a row description"),
                synonyms(raw), data,
            )
        return ChoiceSpec(made_up_id, t.text(raw, ctx.file, line, ctx.where, limit=title_limit, what=what))
