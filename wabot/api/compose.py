"""A request body's message -> an outbound message, with a plain sentence for anything wrong."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wabot.api.problems import Problem
from wabot.errors import LimitError
from wabot.whatsapp import inbound, numbers, outbound

__all__ = ["FREE_KINDS", "KINDS", "message", "recipient", "template"]

FREE_KINDS = ("text", *inbound.MEDIA_KINDS, "buttons", "location")  # free-form: inside the 24-hour window only
KINDS = (*FREE_KINDS, "template")


def recipient(data: Mapping[str, Any]) -> str:
    """The customer's number from `to`, digits only."""
    to = data.get("to")
    number = numbers.normalise(to) if isinstance(to, str) else None
    if number is None:
        raise _bad('"to" must be the customer\'s WhatsApp number with its country code, digits only, '
                   'like "84912345678".')
    return number


def message(data: Mapping[str, Any], *, language: str) -> outbound.Outgoing:
    """The one message kind the body names (text, image, ..., buttons, location, template)."""
    given = [k for k in KINDS if k in data]
    if len(given) != 1:
        raise _bad(f"Give exactly one message: one of {', '.join(KINDS)}" + (f" (not {' and '.join(given)})."
                                                                            if given else "."))
    kind = given[0]
    part = data[kind]
    if kind == "template":
        built: outbound.Outgoing = template(part, language=language)
    elif kind == "text":
        if not isinstance(part, str) or not part.strip():
            raise _bad('"text" must be the message, like "Đơn hàng của anh đã được gửi đi".')
        built = outbound.Text(part)
    elif kind in inbound.MEDIA_KINDS:
        link = _field(part, kind, "link")
        caption, filename = _optional(part, "caption"), _optional(part, "filename")
        built = outbound.Media(kind, link=link, caption=caption, filename=filename)
    elif kind == "buttons":
        buttons = part.get("buttons") if isinstance(part, dict) else None
        if not isinstance(buttons, list) or not all(isinstance(b, dict) for b in buttons):
            raise _bad('"buttons" must be like {"body": "...", "buttons": [{"id": "yes", "title": "Có"}]}.')
        built = outbound.Buttons(
            _field(part, kind, "body"),
            tuple(outbound.Button(str(b.get("id", "")), str(b.get("title", ""))) for b in buttons),
        )
    else:
        try:
            built = outbound.Location(float(part["latitude"]), float(part["longitude"]),
                                      _optional(part, "name"), _optional(part, "address"))
        except (TypeError, KeyError, ValueError):
            raise _bad('"location" must be like {"latitude": 10.77, "longitude": 106.70, "name": "..."}.') from None
    try:
        outbound.check_limits(built)
    except LimitError as err:
        raise _bad(f"The message breaks a WhatsApp limit: {err}") from None
    return built


def template(part: Any, *, language: str) -> outbound.Template:
    """{"name", "language"?, "parameters"?: [body texts in order] | "components"?: [Meta's shape]}."""
    if not isinstance(part, dict) or not isinstance(part.get("name"), str) or not part["name"].strip():
        raise _bad('A template must be like {"name": "order_shipped", "language": "vi", "parameters": ["A123"]}: '
                   'the name of a template approved in WhatsApp Manager.')
    lang = part.get("language", language)
    params, components = part.get("parameters"), part.get("components")
    if not isinstance(lang, str) or not lang:
        raise _bad('The template\'s "language" must be a code like "vi" or "en_US".')
    if params is not None and components is not None:
        raise _bad('Give the template either "parameters" (body texts in order) or "components", not both.')
    if params is not None:
        if not isinstance(params, list) or not all(isinstance(p, str | int | float) for p in params):
            raise _bad('The template\'s "parameters" must be a list of texts, like ["A123", "GHN"].')
        return outbound.template_with(part["name"].strip(), lang, [str(p) for p in params])
    if components is not None:
        if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
            raise _bad('The template\'s "components" must be a list in Meta\'s shape.')
        return outbound.Template(part["name"].strip(), lang, tuple(components))
    return outbound.Template(part["name"].strip(), lang)


def _field(part: Any, kind: str, name: str) -> str:
    value = part.get(name) if isinstance(part, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise _bad(f'"{kind}" needs "{name}" (a text).')
    return value


def _optional(part: Any, name: str) -> str | None:
    value = part.get(name) if isinstance(part, dict) else None
    return value if isinstance(value, str) and value else None


def _bad(message: str) -> Problem:
    return Problem(400, "bad_request", message)
