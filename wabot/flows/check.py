"""Schema check of one flow file: jsonschema's findings, said in plain words with their lines."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError  # type: ignore[import-untyped,unused-ignore]

from wabot.errors import Problem
from wabot.flows.source import Document, LineDict, LineList
from wabot.flows.steps import ACTIONS, step_where
from wabot.flows.texts import line_of, suggest
from wabot.text import fold
from wabot.whatsapp.inbound import MEDIA_KINDS

SCHEMA_PATH = Path(__file__).with_name("flows.schema.json")
MESSAGE_KINDS = ("text", "reply", *MEDIA_KINDS, "location", "contacts", "template")
GROUPS: dict[str, tuple[str, ...]] = {  # keys of which exactly one must be present
    "step": ACTIONS, "message": MESSAGE_KINDS, "option": ("goto", "call", "end"),
    "rule": ("goto", "call"), "trigger": ("goto", "call"),
}
EXAMPLES = {
    "save": "save: <variable name>", "steps": "steps: [...]", "options": "options: [...]",
    "text": 'text: "..."', "title": 'title: "..."', "words": 'words: ["..."]', "url": 'url: "https://..."',
    "button": 'button: "..."', "name": "name: ...", "rows": "rows: [...]", "latitude": "latitude: 10.77",
    "longitude": "longitude: 106.70",
}
TYPES = {"string": "a text", "number": "a number", "integer": "a whole number", "boolean": "true or false",
         "array": "a list", "object": "a mapping (key: value lines)", "null": "empty"}
TIMED = ("remind", "timeout")  # keys of a step that waits for an answer
NOUNS = {"options": "option", "steps": "step", "buttons": "button", "rows": "row", "words": "word",
         "sections": "section", "route": "rule", "keywords": "keyword", "choice": "choice"}


@cache
def validator() -> Draft202012Validator:
    """The compiled validator for the published schema (built once per process)."""
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return Draft202012Validator(_inline(schema, schema.get("$defs", {})))


_ANNOTATIONS = frozenset({"description", "title", "x-what", "x-name", "x-group", "markdownDescription"})


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """The schema with every `#/$defs/...` reference replaced by its target.

    jsonschema resolves a `$ref` on every visit; with the references written out, checking 200 files
    takes about 40 % less time (start-up must stay under a second).
    """
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = _inline(defs[ref.removeprefix("#/$defs/")], defs)
        rest = {k: _inline(v, defs) for k, v in node.items() if k != "$ref"}
        if set(rest) <= _ANNOTATIONS:
            return {**target, **rest}
        return {"allOf": [target], **rest}
    return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}


def check_document(doc: Document) -> list[Problem]:
    """Every schema problem of one parsed file, in plain words, in line order."""
    if doc.data is None:
        return []
    problems: list[Problem] = []
    grouped: set[tuple[Any, ...]] = set()
    for err in validator().iter_errors(doc.data):
        problems.extend(_translate(doc, err, grouped))
    unique: dict[tuple[int, str], Problem] = {}
    for p in problems:  # a step's key can be reported by the step and by its kind: keep the more precise
        key = (p.line, p.message.split(" has no key ")[-1])
        if key not in unique or len(p.message) > len(unique[key].message):
            unique[key] = p
    return sorted(unique.values(), key=lambda p: p.line)


def _node(root: Any, path: list[Any]) -> Any:
    node = root
    for part in path:
        node = node[part]
    return node


def _line(root: Any, path: list[Any]) -> int:
    if not path:
        return 1
    return line_of(_node(root, path[:-1]), path[-1])


def _place(root: Any, path: list[Any]) -> str:
    if len(path) >= 4 and path[0] == "flows" and path[2] == "steps" and isinstance(path[3], int):
        return step_where(path[1], path[3] + 1, _node(root, path[:4]))
    if len(path) >= 2 and path[0] == "flows":
        return f"flow {path[1]}"
    if len(path) >= 2 and path[0] == "replies":
        return f"reply {path[1]}"
    if len(path) >= 2 and path[0] == "triggers" and isinstance(path[1], int):
        return f"trigger {path[1] + 1}"
    return str(path[0]) if path and path[0] in ("fallback", "welcome_back") else ""


def _label(path: list[Any]) -> str:
    """'save', or 'item 2 of buttons' for list items."""
    if not path:
        return "the file"
    if isinstance(path[-1], int):
        parent = next((p for p in reversed(path) if isinstance(p, str)), "the list")
        return f"item {path[-1] + 1} of '{parent}'"
    return f"'{path[-1]}'"


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, LineDict | dict):
        return "a mapping"
    if isinstance(value, LineList | list):
        return "a list"
    return repr(value) if isinstance(value, str) else str(value)


def _a(name: str) -> str:
    return ("an " if name.lstrip("'")[:1] in "aeiou" else "a ") + name


def _translate(doc: Document, err: ValidationError, grouped: set[tuple[Any, ...]]) -> list[Problem]:
    root, file = doc.data, doc.file
    path = list(err.absolute_path)
    schema = err.schema if isinstance(err.schema, dict) else {}
    name = str(schema.get("x-name", "this part"))
    place = _place(root, path)
    kind, value = err.validator, err.validator_value
    instance = err.instance

    def problem(message: str, fix: str, line: int | None = None) -> list[Problem]:
        return [Problem(message, file, _line(root, path) if line is None else line, place, fix)]

    group = schema.get("x-group")
    if group and isinstance(instance, dict):
        keys = [k for k in GROUPS[str(group)] if k in instance]
        if len(keys) != 1:
            if tuple(path) in grouped:
                return []
            grouped.add(tuple(path))
            return _group_problem(str(group), keys, instance, path, root, file, place)
    if kind == "additionalProperties" and isinstance(instance, dict):
        allowed = list(schema.get("properties", {}))
        out = []
        for key in instance:
            if key in allowed:
                continue
            hint = suggest(str(key), allowed)
            fix = hint or f"the keys allowed here are: {', '.join(allowed)}"
            line = instance.key_lines.get(key, 1) if isinstance(instance, LineDict) else None
            if key in TIMED and name.endswith(" step"):
                out += problem(f"'{key}' works only on an ask or menu step (it is about waiting for the customer's "
                               f"answer), and this is {_a(name)}", "move it to the question or menu it is about, or "
                               "use a 'wait' step to pause the flow", line)
                continue
            if key in TIMED and name == "menu":
                out += problem(f"'{key}' goes beside 'menu:', not inside it",
                               f"indent '{key}:' like 'menu:' (a key of the step)", line)
                continue
            out += problem(f"this {name} has no key '{key}'", fix, line)
        return out
    if kind == "required" and isinstance(instance, dict):
        line = instance.line if isinstance(instance, LineDict) else None
        return [p for key in value if key not in instance
                for p in problem(f"{_a(name)} needs '{EXAMPLES.get(key, key + ': ...')}'", f"add '{key}:' to it", line)]
    if kind == "pattern" and isinstance(instance, str):
        what = str(schema.get("x-what", f"written like {value}"))
        parent = _node(root, path)
        if isinstance(parent, LineDict) and instance in parent.key_lines and parent.get(instance) is not instance:
            example = re.sub(r"[^a-z0-9_]+", "_", fold(instance)).strip("_") or "my_name"
            return problem(f"'{instance}' cannot be used as a name here: it must be {what}",
                           f"for example '{example}'", parent.key_lines[instance])
        return problem(f"{_label(path)} must be {what}, not '{instance}'", "fix the spelling")
    if kind == "type":
        expected = [value] if isinstance(value, str) else list(value)
        what = str(schema.get("x-what") or " or ".join(TYPES.get(t, t) for t in expected))
        if instance is None:
            return problem(f"{_label(path)} is empty", f"write {what} after it")
        fix = "put the text in quotes" if "string" in expected else f"write {what}"
        if "steps" in path and isinstance(path[-1], int) and path[-2] == "steps":
            fix = "start each step with its action, e.g. '- say: Xin chào'"
        return problem(f"{_label(path)} must be {what}, not {_show(instance)}", fix)
    if kind == "enum":
        options = [str(v) for v in value]
        hint = suggest(str(instance), options)
        return problem(f"{_label(path)} must be one of {', '.join(options)}, not {_show(instance)}",
                       hint or "pick one of those")
    if kind == "const":
        return problem(f"{_label(path)} must be {_show(value)}, not {_show(instance)}",
                       f"write {_show(value)}, or leave the key out")
    if kind in ("minItems", "minProperties", "minLength"):
        noun = NOUNS.get(str(path[-1]) if path else "", "item")
        if kind == "minItems" and value == 1:
            return problem(f"{_label(path)} has no {noun}s", f"add at least one {noun}")
        return problem(f"{_label(path)} is empty", "fill it in, or leave the key out")
    if kind in ("maxItems", "maxProperties"):
        noun = NOUNS.get(str(path[-1]) if path else "", "item")
        fix = "use a list, or a menu step (it pages long lists)" if noun == "button" else "remove some"
        if kind == "maxProperties":
            return problem(f"{_label(path)} must have only {value} entry", "keep one of them")
        return problem(f"{_label(path)} has {len(instance)} {noun}s; WhatsApp allows at most {value}", fix)
    if kind in ("minimum", "exclusiveMinimum", "maximum"):
        word = {"minimum": "at least", "exclusiveMinimum": "more than", "maximum": "at most"}[kind]
        return problem(f"{_label(path)} must be {word} {value}, not {_show(instance)}", "change the number")
    if kind == "maxLength":
        return problem(f"{_label(path)} is too long (at most {value} characters)", "shorten it")
    return problem(f"{_label(path)}: {err.message}", "check this value against docs/flows.md")


def _group_problem(group: str, keys: list[str], instance: Any, path: list[Any], root: Any, file: str,
                   place: str) -> list[Problem]:
    allowed = GROUPS[group]
    noun = {"step": "a step", "message": "a message", "option": "a menu option", "rule": "a route rule",
            "trigger": "a trigger"}[group]
    line = instance.line if isinstance(instance, LineDict) else _line(root, path)
    if keys:
        message = f"{noun} can do only one thing, but this one has {' and '.join(repr(k) for k in keys)}"
        fix = "split it into two steps" if group == "step" else f"keep only one of {', '.join(allowed)}"
        return [Problem(message, file, line, place, fix)]
    for key in instance:
        hint = suggest(str(key), allowed)
        if hint and key != "id":
            at = instance.key_lines.get(key, line) if isinstance(instance, LineDict) else line
            return [Problem(f"'{key}' is not something {noun} can do", file, at, place, hint)]
    if isinstance(instance, dict) and len(instance) == 1 and " " in str(next(iter(instance))):
        # `- Giờ mở cửa: 8:00` reads as the key "Giờ mở cửa": an unquoted text with a ':' in it
        return [Problem("a ':' inside a text needs the text in quotes", file, line, place,
                        'put the whole text in quotes, e.g. - "Giờ mở cửa: 8:00"')]
    return [Problem(f"{noun} needs one of: {', '.join(allowed)}", file, line, place,
                    f"add one of those keys, e.g. '{allowed[0]}: ...'")]
