"""Meta's webhook JSON -> inbound values. Tolerant: a broken message is skipped and named, never the batch.

Only a broken envelope (not Meta's shape at all) raises PayloadError. Plain dict access, no
schema library: this runs on every webhook.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from wabot.errors import PayloadError
from wabot.whatsapp.inbound import (
    MEDIA_KINDS,
    Batch,
    Content,
    Context,
    Customer,
    ErrorInfo,
    FlowReply,
    Location,
    Media,
    Message,
    Order,
    OrderItem,
    Reaction,
    Referral,
    Reply,
    SharedContacts,
    Status,
    System,
    Text,
    Unsupported,
)

log = logging.getLogger(__name__)

LABEL = 64  # names Meta controls end up in logs and Batch.ignored: keep them short
MAX_DEPTH = 64  # Meta's payloads nest about ten levels; a deeper body is not Meta's
INT64 = 2**63  # SQLite's integers; Meta's timestamps are far below
_SURROGATE = re.compile("[\ud800-\udfff]")  # a lone half of a UTF-16 pair: JSON allows it, UTF-8 cannot hold it

Person = tuple[str | None, str | None, str | None, str | None]  # wa_id, user_id, name, username


class _Bad(Exception):
    """One message or status cannot be read; `str` says why."""


def parse_webhook(payload: Any, *, body: bytes | None = None) -> Batch:
    """Turn a decoded webhook body into a Batch; raise PayloadError if it is not Meta's shape.

    `body`: the raw JSON `payload` came from. UTF-8 cannot hold a lone surrogate (decoding refuses it), so in a
    UTF-8 body only a \\uD800-\\uDFFF escape can make one: without such an escape, no text is walked for them.
    """
    if not isinstance(payload, dict):
        raise PayloadError("the body is not a JSON object", where="")
    if _may_hold_surrogates(body) and _needs_cleaning(payload):
        payload = _clean(payload)
    kind = payload.get("object")
    if kind != "whatsapp_business_account":
        said = f"is {kind[:LABEL]!r}" if isinstance(kind, str) else "is missing or not a text"
        raise PayloadError(f"'object' {said}, not 'whatsapp_business_account'", where="object")
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise PayloadError("'entry' is missing or not a list", where="entry")
    messages: list[Message] = []
    statuses: list[Status] = []
    errors: list[ErrorInfo] = []
    ignored: list[str] = []
    rejected: list[str] = []
    for e, entry in enumerate(entries):
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            rejected.append(f"entry[{e}]: 'changes' is missing or not a list")
            continue
        for c, change in enumerate(changes):
            at = f"entry[{e}].changes[{c}]"
            if not isinstance(change, dict):
                rejected.append(f"{at}: not an object")
                continue
            field = change.get("field")
            if not isinstance(field, str):
                rejected.append(f"{at}: 'field' is missing or not a text")
                continue
            if field != "messages":
                ignored.append(field[:LABEL])
                continue
            value = change.get("value")
            if not isinstance(value, dict):
                rejected.append(f"{at}: 'value' is missing or not an object")
                continue
            _value(value, at, messages, statuses, errors, rejected)
    if rejected:  # one line per POST, however many items are broken
        more = f" (and {len(rejected) - 3} more)" if len(rejected) > 3 else ""
        log.warning("webhook items skipped: %s%s", "; ".join(rejected[:3]), more)
    if ignored:
        log.debug("webhook fields not handled: %s", ", ".join(ignored))
    return Batch(tuple(messages), tuple(statuses), tuple(errors), tuple(ignored), tuple(rejected))


def _value(
    value: dict[str, Any],
    at: str,
    messages: list[Message],
    statuses: list[Status],
    errors: list[ErrorInfo],
    rejected: list[str],
) -> None:
    metadata = value.get("metadata")
    phone_id = str(metadata.get("phone_number_id") or "") if isinstance(metadata, dict) else ""
    people = _contacts(value.get("contacts"))
    for kind in ("messages", "statuses"):
        items = value.get(kind)
        if items is None:
            continue
        if not isinstance(items, list):
            rejected.append(f"{at}.value.{kind}: not a list")
            continue
        for i, item in enumerate(items):
            try:
                if not isinstance(item, dict):
                    raise _Bad("not an object")
                if kind == "messages":
                    messages.append(_message(item, phone_id, people))
                else:
                    statuses.append(_status(item, phone_id))
            except _Bad as why:
                rejected.append(f"{at}.value.{kind}[{i}]: {why}")
    raw_errors = value.get("errors")
    if isinstance(raw_errors, list):
        errors.extend(_errors(raw_errors))


def _contacts(raw: Any) -> dict[str, Person]:
    """wa_id or user_id -> Person; sloppy entries are skipped, they only add names."""
    people: dict[str, Person] = {}
    if not isinstance(raw, list):
        return people
    for c in raw:
        if not isinstance(c, dict):
            continue
        profile = c.get("profile")
        if not isinstance(profile, dict):
            profile = {}
        name, username = profile.get("name"), profile.get("username")
        wa_id, user_id = _opt(c.get("wa_id")), _opt(c.get("user_id"))
        entry = (
            wa_id, user_id, name if isinstance(name, str) else None, username if isinstance(username, str) else None
        )
        for key in (wa_id, user_id):
            if key:
                people[key] = entry
    return people


def _message(m: dict[str, Any], phone_id: str, people: dict[str, Person]) -> Message:
    mid = _need(m, "id")
    wa_id, user_id = _opt(m.get("from")), _opt(m.get("from_user_id"))
    if not wa_id and not user_id:
        raise _Bad("'from' is missing")
    known = people.get(wa_id or "") or people.get(user_id or "")
    customer = Customer(
        wa_id=wa_id or (known[0] if known else None),
        user_id=user_id or (known[1] if known else None),
        name=known[2] if known else None,
        username=known[3] if known else None,
    )
    kind = m.get("type")
    if not isinstance(kind, str) or not kind:
        raise _Bad("'type' is missing")
    return Message(
        id=mid,
        customer=customer,
        phone_number_id=phone_id,
        timestamp=_int(m.get("timestamp")),
        type=kind,
        content=_content(kind, m),
        context=_context(m.get("context")),
        referral=_referral(m.get("referral")),
    )


def _content(kind: str, m: dict[str, Any]) -> Content:
    part = m.get(kind)
    errors = _errors(m.get("errors"))
    if kind == "text" and isinstance(part, dict) and isinstance(part.get("body"), str):
        return Text(part["body"])
    if kind == "interactive" and isinstance(part, dict):
        sub = part.get("type")
        reply = part.get(sub) if isinstance(sub, str) else None
        if sub in ("button_reply", "list_reply") and isinstance(reply, dict):
            return Reply(str(sub), _need(reply, "id"), _text(reply.get("title")), _opt(reply.get("description")))
        if sub == "nfm_reply" and isinstance(reply, dict):
            response = _kept(_json(reply.get("response_json")), "the flow's answer")
            return FlowReply(_text(reply.get("name")), _text(reply.get("body")), response)
        label = f"interactive.{sub[:LABEL] if isinstance(sub, str) else ''}"
        log.info("message type %r is not handled; passed on as unsupported", label)
        return Unsupported(label, errors)
    if kind == "button" and isinstance(part, dict):
        return Reply("quick_reply", _text(part.get("payload")), _text(part.get("text")))
    if kind in MEDIA_KINDS and isinstance(part, dict):
        return Media(
            kind=kind,
            id=_need(part, "id"),
            mime_type=_opt(part.get("mime_type")),
            sha256=_opt(part.get("sha256")),
            caption=_opt(part.get("caption")),
            filename=_opt(part.get("filename")),
            url=_opt(part.get("url")),
            voice=part.get("voice") is True,
            animated=part.get("animated") is True,
        )
    if kind == "location" and isinstance(part, dict):
        return Location(
            _float(part.get("latitude"), "latitude"),
            _float(part.get("longitude"), "longitude"),
            _opt(part.get("name")),
            _opt(part.get("address")),
            _opt(part.get("url")),
        )
    if kind == "contacts" and isinstance(part, list):
        return SharedContacts(tuple(_kept(c, "a contacts card") for c in part if isinstance(c, dict)))
    if kind == "reaction" and isinstance(part, dict):
        return Reaction(_text(part.get("message_id")), _text(part.get("emoji")))
    if kind == "order" and isinstance(part, dict):
        items = part.get("product_items")
        return Order(
            _text(part.get("catalog_id")),
            _text(part.get("text")),
            tuple(
                OrderItem(
                    _text(i.get("product_retailer_id")),
                    int(_float(i.get("quantity"), "quantity")),
                    _float(i.get("item_price"), "item_price"),
                    _text(i.get("currency")),
                )
                for i in (items if isinstance(items, list) else ())
                if isinstance(i, dict)
            ),
        )
    if kind == "system" and isinstance(part, dict):
        return System(_text(part.get("type")), _text(part.get("body")), _opt(part.get("wa_id")))
    if kind == "unsupported" and isinstance(part, dict) and isinstance(part.get("type"), str):
        return Unsupported(part["type"], errors)
    log.info("message type %r is not handled; passed on as unsupported", kind[:LABEL])
    return Unsupported(kind, errors)


def _context(raw: Any) -> Context | None:
    if not isinstance(raw, dict):
        return None
    product = raw.get("referred_product")
    return Context(
        message_id=_opt(raw.get("id")),
        from_=_opt(raw.get("from")),
        forwarded=raw.get("forwarded") is True,
        frequently_forwarded=raw.get("frequently_forwarded") is True,
        referred_product=_kept(product, "the referred product") if isinstance(product, dict) else None,
    )


def _referral(raw: Any) -> Referral | None:
    if not isinstance(raw, dict):
        return None
    return Referral(
        source_url=_opt(raw.get("source_url")),
        source_id=_opt(raw.get("source_id")),
        source_type=_opt(raw.get("source_type")),
        headline=_opt(raw.get("headline")),
        body=_opt(raw.get("body")),
        ctwa_clid=_opt(raw.get("ctwa_clid")),
    )


def _status(s: dict[str, Any], phone_id: str) -> Status:
    pricing = s.get("pricing")
    category = pricing.get("category") if isinstance(pricing, dict) else None
    return Status(
        id=_need(s, "id"),
        status=_need(s, "status"),
        timestamp=_int(s.get("timestamp")),
        recipient_id=_text(s.get("recipient_id")),
        phone_number_id=phone_id,
        errors=_errors(s.get("errors")),
        biz_opaque_callback_data=_opt(s.get("biz_opaque_callback_data")),
        pricing_category=_opt(category),
    )


def _errors(raw: Any) -> tuple[ErrorInfo, ...]:
    if not isinstance(raw, list):
        return ()
    found = []
    for e in raw:
        if not isinstance(e, dict):
            continue
        data = e.get("error_data")
        details = data.get("details") if isinstance(data, dict) else None
        code = e.get("code")
        found.append(ErrorInfo(
            code=code if isinstance(code, int) and not isinstance(code, bool) else 0,
            title=_text(e.get("title")),
            message=_text(e.get("message")),
            details=_text(details),
        ))
    return tuple(found)


def count_updates(payload: Any) -> int:
    """How many messages and statuses a decoded body carries, counted before anything is parsed."""
    count = 0
    entries = payload.get("entry") if isinstance(payload, dict) else None
    for entry in entries if isinstance(entries, list) else ():
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else ():
            value = change.get("value") if isinstance(change, dict) else None
            if isinstance(value, dict):
                count += sum(len(v) for v in (value.get("messages"), value.get("statuses")) if isinstance(v, list))
    return count


# --- hostile bodies --------------------------------------------------------------------------


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _may_hold_surrogates(body: bytes | None) -> bool:
    return body is None or json.detect_encoding(body) != "utf-8" or _SURROGATE_ESCAPE.search(body) is not None


def _needs_cleaning(value: Any) -> bool:
    """Whether a text (or a key) anywhere in `value` holds a lone surrogate."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and _SURROGATE.search(item) is not None:
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _clean(value: Any, depth: int = 0) -> Any:
    """`value` with lone surrogates replaced by U+FFFD, so it can be logged and stored.

    Below MAX_DEPTH nothing is read or kept (see `_kept`), so the walk stops there.
    """
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if depth > MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {_clean(k, depth): _clean(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v, depth + 1) for v in value]
    return value


def _kept(value: Any, what: str) -> Any:
    """A raw object kept in a message (a contacts card, a flow's answer): refused when nested too deeply."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH // 2:
            raise _Bad(f"{what} nests more than {MAX_DEPTH // 2} levels deep")
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return value


# --- tolerant field readers -----------------------------------------------------------------


def _need(d: dict[str, Any], key: str) -> str:
    value = d.get(key)
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise _Bad(f"'{key}' is missing" if value is None else f"'{key}' is not a text ({type(value).__name__})")


def _opt(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _text(value: Any) -> str:
    return _opt(value) or ""


def _int(value: Any) -> int:
    """Meta sends timestamps as strings of digits; anything unreadable becomes 0 rather than a lost message."""
    number = value if isinstance(value, int) and not isinstance(value, bool) else 0
    if isinstance(value, str) and value.isdigit() and len(value) < 20:
        number = int(value)
    return number if -INT64 <= number < INT64 else 0


def _float(value: Any, name: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise _Bad(f"'{name}' is not a number") from None
    else:
        raise _Bad(f"'{name}' is missing or not a number")
    if number != number or number in (float("inf"), float("-inf")):
        raise _Bad(f"'{name}' is not a finite number")
    return number


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            return {}
        parsed = _clean(parsed) if _needs_cleaning(parsed) else parsed
        return parsed if isinstance(parsed, dict) else {}
    return {}
