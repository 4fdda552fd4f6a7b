"""Typed values <-> JSON for the database: inbound messages kept in the inbox survive a restart."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from wabot.whatsapp import inbound

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


def _plain(value: Any) -> Any:
    names = _NAMES.get(type(value))
    if names is not None:
        out = {name: _plain(getattr(value, name)) for name in names}
        out["_t"] = type(value).__name__
        return out
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


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


def dump_message(message: inbound.Message) -> str:
    return json.dumps(_plain(message), ensure_ascii=False, separators=(",", ":"))


def load_message(text: str) -> inbound.Message:
    value = _typed(json.loads(text))
    if not isinstance(value, inbound.Message):
        raise ValueError("stored value is not an inbound message")
    return value
