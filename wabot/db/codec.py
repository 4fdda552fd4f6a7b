"""Typed values <-> JSON for the database: inbound messages kept in the inbox survive a restart."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from wabot.whatsapp import inbound, outbound

# Every dataclass that can appear inside an inbound.Message, by name.
_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in vars(inbound).values()
    if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == inbound.__name__
}


# field names per class: dataclasses.fields() is slow enough to show in a profile of the webhook
_NAMES: dict[type[Any], tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in _TYPES.values()
}


def _typed(value: Any) -> Any:
    if isinstance(value, dict):
        name = value.get("_t")
        if isinstance(name, str) and name in _TYPES:
            cls = _TYPES[name]
            kwargs = {}
            for f in dataclasses.fields(cls):
                if f.name in value:
                    v = _typed(value[f.name])
                    kwargs[f.name] = tuple(v) if isinstance(v, list) and _is_tuple(f) else v
            return cls(**kwargs)
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return value


def _is_tuple(f: dataclasses.Field[Any]) -> bool:
    return str(f.type).startswith("tuple")


def _field_dict(value: Any) -> dict[str, Any]:
    """The encoder's hook for the dataclasses it meets: its fields, then its type's name."""
    names = _NAMES.get(type(value))
    if names is None:
        raise TypeError(f"{type(value).__name__} cannot be stored")
    out = {name: getattr(value, name) for name in names}
    out["_t"] = type(value).__name__
    return out


def dump_message(message: inbound.Message) -> str:
    # the C encoder walks lists, tuples and dicts itself and calls back only for dataclasses: faster than
    # walking the message in Python first (the text is the same as before, byte for byte: tests/db/test_codec.py)
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), default=_field_dict)


def load_message(text: str) -> inbound.Message:
    value = _typed(json.loads(text))
    if not isinstance(value, inbound.Message):
        raise ValueError("stored value is not an inbound message")
    return value


STARTED = "wabot:start:"  # inbox message ids of flows the business API started (never one of Meta's wamid.…)


@dataclass(frozen=True, slots=True)
class Started:
    """A flow the business API started, kept in the inbox (before the 202) so a crash cannot lose it.

    `opening`: the 24-hour window was closed, so this template goes instead of the flow's first messages.
    """

    customer: inbound.Customer
    flow: str
    vars: dict[str, Any]
    opening: outbound.Template | None = None


Pending = inbound.Message | Started  # what an inbox row holds


def dump_started(started: Started) -> str:
    c, t = started.customer, started.opening
    return json.dumps({
        "_t": "Started", "flow": started.flow, "vars": started.vars,
        "customer": {"wa_id": c.wa_id, "user_id": c.user_id, "name": c.name},
        "opening": None if t is None else {"name": t.name, "language": t.language, "components": list(t.components)},
    }, ensure_ascii=False, separators=(",", ":"), default=str)


def load_pending(text: str) -> Pending:
    """An inbox row's value: a customer's message, or a flow the business started."""
    data = json.loads(text)
    if isinstance(data, dict) and data.get("_t") == "Started":
        c, t = data["customer"], data.get("opening")
        opening = None if t is None else outbound.Template(t["name"], t["language"], tuple(t["components"]))
        return Started(inbound.Customer(c.get("wa_id"), c.get("user_id"), c.get("name")), data["flow"],
                       dict(data["vars"]), opening)
    return load_message(text)
