"""Flow messages (MessageSpec) -> outgoing WhatsApp messages, in the customer's language."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from jinja2 import Undefined

from wabot.engine import menus
from wabot.flows import model
from wabot.flows.model import ANY, Localized
from wabot.templates import Renderer
from wabot.text import fold
from wabot.whatsapp import outbound

log = logging.getLogger(__name__)

T = TypeVar("T")
_WHOLE_EXPRESSION = re.compile(r"\s*\{\{((?:(?!\{\{|\}\}).)*)\}\}\s*", re.DOTALL)


def pick(variants: Mapping[str, T], lang: str, default: str) -> T | None:
    """The variant in `lang`, else in the default language, else the plain one, else any."""
    for key in (lang, default, ANY):
        if key in variants:
            return variants[key]
    return next(iter(variants.values()), None)


def plain(value: Any) -> Any:
    """A JSON-safe copy of a template value, to keep in the state."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return str(value)  # drops str subclasses such as templates.Formatted
    if isinstance(value, Undefined):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return str(value)


class Writer:
    """Renders texts and messages with the variables as they are now (`vars` is the live dict)."""

    def __init__(
        self, bot: model.Bot, renderer: Renderer, vars: dict[str, Any], *, fixed: Mapping[str, Any]
    ) -> None:
        self.bot = bot
        self.renderer = renderer
        self.vars = vars
        self.fixed = fixed

    @property
    def lang(self) -> str:
        lang = self.vars.get("lang")
        return lang if isinstance(lang, str) and lang else self.bot.default_language

    def context(self) -> dict[str, Any]:
        return {**self.vars, **self.fixed, "lang": self.lang}

    def text(self, variants: Localized) -> str:
        source = pick(variants, self.lang, self.bot.default_language)
        return self.renderer.render(source, self.context()) if source else ""

    def optional(self, variants: Localized | None) -> str | None:
        return self.text(variants) or None if variants else None

    def value(self, source: Any) -> Any:
        """A `set` value or an http body leaf: "{{ expr }}" keeps its type, other strings are rendered."""
        if isinstance(source, str):
            whole = _WHOLE_EXPRESSION.fullmatch(source)
            if whole:
                return plain(self.renderer.evaluate(whole[1], self.context()))
            return self.renderer.render(source, self.context())
        if isinstance(source, Mapping):
            return {k: self.value(v) for k, v in source.items()}
        if isinstance(source, list | tuple):
            return [self.value(v) for v in source]
        return source

    def leaves(self, source: Any) -> Any:
        """Render every string leaf of a JSON-like value (contacts, template components)."""
        if isinstance(source, str):
            return self.renderer.render(source, self.context())
        if isinstance(source, Mapping):
            return {k: self.leaves(v) for k, v in source.items()}
        if isinstance(source, list | tuple):
            return [self.leaves(v) for v in source]
        return source

    def entry(self, id_: str, title: Localized, description: Localized | None = None) -> menus.Entry:
        names = tuple(dict.fromkeys(fold(self.renderer.render(t, self.context())) for t in title.values()))
        return menus.Entry(id_, self.text(title), self.optional(description), names)

    def entries(self, options: Sequence[model.Option | model.ChoiceSpec]) -> tuple[list[menus.Entry], list[Any]]:
        """The options as shown now, those from data made one per item; and what to say for empty lists."""
        shown: list[menus.Entry] = []
        notes: list[Any] = []
        for n, option in enumerate(options):
            if option.data is None:
                context = self.context()
                names = tuple(dict.fromkeys(fold(self.renderer.render(t, context)) for t in option.title.values()))
                shown.append(menus.Entry(option.id, self.text(option.title), self.optional(option.description),
                                         names + option.synonyms, n))
                continue
            items = self._items(option.data.source)
            if not items:
                notes.extend(option.data.empty)
            ids: set[str] = set()
            for item in items:
                entry = self._item_entry(option, item, n)
                if entry.title.strip() and entry.id not in ids:
                    ids.add(entry.id)
                    shown.append(entry)
        return shown, notes

    def _items(self, source: str) -> list[Any]:
        value = self.renderer.evaluate(source, self.context())
        if isinstance(value, Mapping):
            return list(value.values())
        if isinstance(value, list | tuple):
            return list(value)
        if value not in (None, "") and not isinstance(value, Undefined):
            log.warning("options from %r: %r is not a list; no options were made from it", source, value)
        return []

    def _item_entry(self, option: model.Option | model.ChoiceSpec, item: Any, n: int) -> menus.Entry:
        assert option.data is not None
        context = {**self.context(), "item": item}
        render = self.renderer.render
        variants = option.title
        shown = render(pick(variants, self.lang, self.bot.default_language) or "", context).strip()
        if option.data.id is not None:
            id_ = render(option.data.id, context).strip()
        elif isinstance(item, Mapping) and item.get("id") not in (None, ""):
            id_ = str(item["id"])
        else:
            id_ = shown
        source = pick(option.description, self.lang, self.bot.default_language) if option.description else None
        description = (render(source, context).strip() or None) if source else None
        names = tuple(dict.fromkeys(fold(render(t, context)) for t in variants.values()))
        return menus.Entry(id_[: outbound.ROW_ID], shown, description, names + option.synonyms, n, plain(item))

    def messages(self, specs: tuple[model.MessageSpec, ...]) -> list[outbound.Outgoing]:
        return [m for m in (self.message(s) for s in specs) if m is not None]

    def message(self, spec: model.MessageSpec) -> outbound.Outgoing | None:
        """The outgoing message for `spec`; None (logged) when its text came out empty."""
        if isinstance(spec, model.ReplyRef):
            variants = self.bot.replies.get(spec.name)
            chosen = pick(variants, self.lang, self.bot.default_language) if variants else None
            if chosen is None or isinstance(chosen, model.ReplyRef):
                log.error("the reply %r does not exist; nothing was sent", spec.name)
                return None
            return self.message(chosen)
        made = self._build(spec)
        body = getattr(made, "body", None)
        if body is not None and not body.strip():
            log.warning("a message came out empty and was not sent (%s)", type(spec).__name__)
            return None
        return made

    def _build(self, spec: model.MessageSpec) -> outbound.Outgoing:
        if isinstance(spec, model.TextSpec):
            return outbound.Text(self.text(spec.text), spec.preview_url)
        if isinstance(spec, model.ButtonsSpec):
            buttons = tuple(outbound.Button(b.id, self.text(b.title)) for b in spec.buttons)
            return outbound.Buttons(
                self.text(spec.text), buttons, header=self.optional(spec.header), footer=self.optional(spec.footer)
            )
        if isinstance(spec, model.ListSpec):
            sections = tuple(
                outbound.Section(
                    self.optional(s.title),
                    tuple(outbound.Row(r.id, self.text(r.title), self.optional(r.description)) for r in s.rows),
                )
                for s in spec.sections
            )
            return outbound.ListMessage(
                self.text(spec.text), self.text(spec.button), sections,
                header=self.optional(spec.header), footer=self.optional(spec.footer),
            )
        if isinstance(spec, model.CtaSpec):
            return outbound.CtaUrl(
                self.text(spec.text), self.text(spec.button), self.renderer.render(spec.url, self.context()),
                header=self.optional(spec.header), footer=self.optional(spec.footer),
            )
        if isinstance(spec, model.MediaSpec):
            source = self.renderer.render(spec.source, self.context()).strip()
            link = source.startswith(("http://", "https://"))
            return outbound.Media(
                spec.kind, link=source if link else None, id=None if link else source,
                caption=self.optional(spec.caption), filename=spec.filename,
            )
        if isinstance(spec, model.LocationSpec):
            return outbound.Location(
                spec.latitude, spec.longitude, name=self.optional(spec.name), address=self.optional(spec.address)
            )
        if isinstance(spec, model.ContactsSpec):
            return outbound.Contacts(tuple(self.leaves(c) for c in spec.contacts))
        if isinstance(spec, model.TemplateSpec):
            components = tuple(self.leaves(c) for c in spec.components)
            return outbound.Template(spec.name, spec.language or self.lang, components)
        raise TypeError(f"unknown message {spec!r}")
