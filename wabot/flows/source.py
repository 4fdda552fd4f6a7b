"""Reading one flow file: YAML in, plain dicts and lists out, with the line of every key and item."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from wabot.errors import Problem

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built in


class LineDict(dict[Any, Any]):
    """A YAML mapping: a plain dict that also knows the line of itself, of each key and of each value."""

    __slots__ = ("key_lines", "line", "value_lines")

    def __init__(self, line: int = 0) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[Any, int] = {}
        self.value_lines: dict[Any, int] = {}


class LineList(list[Any]):
    """A YAML sequence: a plain list that also knows the line of itself and of each item."""

    __slots__ = ("item_lines", "line")

    def __init__(self, line: int = 0) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []


@dataclass(frozen=True, slots=True)
class Document:
    """One flow file: its top-level mapping (None if unreadable) and the problems met reading it."""

    file: str
    data: LineDict | None
    problems: tuple[Problem, ...] = ()


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """Safe loading with lines; only true/false are booleans and dates stay text (YAML 1.2 style)."""

    yaml_implicit_resolvers: dict[Any, Any] = {}  # noqa: RUF012 - the class table PyYAML expects

    def __init__(self, stream: str, file: str) -> None:
        super().__init__(stream)
        self.file = file
        self.duplicates: list[Problem] = []


_DROPPED = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
for _first, _resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items():
    _Loader.yaml_implicit_resolvers[_first] = [(tag, rx) for tag, rx in _resolvers if tag not in _DROPPED]
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _map(loader: _Loader, node: yaml.MappingNode) -> Any:
    data = LineDict(_line(node))
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=False)
        if not isinstance(key, str | int | float | bool) or key is None:
            key = str(key)
        if key in data:
            loader.duplicates.append(Problem(
                f"the key '{key}' is written twice in the same place (first on line {data.key_lines[key]})",
                loader.file, _line(key_node), fix="keep only one of them",
            ))
        data[key] = loader.construct_object(value_node, deep=False)
        data.key_lines[key] = _line(key_node)
        data.value_lines[key] = _line(value_node)


def _seq(loader: _Loader, node: yaml.SequenceNode) -> Any:
    data = LineList(_line(node))
    yield data
    for item in node.value:
        data.append(loader.construct_object(item, deep=False))
        data.item_lines.append(_line(item))


_Loader.add_constructor("tag:yaml.org,2002:map", _map)
_Loader.add_constructor("tag:yaml.org,2002:omap", _map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _seq)

# PyYAML's wording -> what a shop owner can act on.
_PLAIN = (
    ("mapping values are not allowed", "a ':' inside a text needs the text in quotes",
     'put the whole text in quotes, e.g. say: "Giờ mở cửa: 8:00"'),
    ("could not find expected ':'", "a key is missing its ':' (or a quote is not closed on the line above)",
     "write 'key: value', and close every quote you open"),
    ("did not find expected key", "the line is indented differently from the one above",
     "line the keys of one step up under each other, using spaces"),
    ("expected <block end>", "the line is indented differently from the one above",
     "line the keys of one step up under each other, using spaces"),
    ("did not find expected '-'", "the line is indented differently from the list items above",
     "start each list item with '- ' at the same indentation"),
    ("found character '\\t'", "a tab is used for indentation", "indent with spaces, not tabs"),
    ("found unexpected end of stream", "a quote or bracket is opened but never closed",
     "close every \" ' [ and { you open"),
    ("while scanning a quoted scalar", "a quote is opened but never closed", "close the quote"),
    ("did not find expected ',' or ']'", "a list in [ ] is not closed or is missing a comma",
     "separate the items with commas and end the list with ]"),
    ("did not find expected ',' or '}'", "a mapping in { } is not closed or is missing a comma",
     "separate the entries with commas and end with }"),
    ("that cannot start any token", "a text starts with a character YAML reserves (@, ` or %)",
     "put the text in quotes"),
    ("found undefined alias", "a '*' at the start of a text looks like a YAML alias",
     'put the text in quotes, e.g. "*menu*"'),
    ("found unhashable key", "a key is a list or mapping", "keys must be plain words"),
)


def _syntax_problem(file: str, text_lines: list[str], err: yaml.YAMLError) -> Problem:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    line = int(mark.line) + 1 if mark is not None else 1
    text = f"{getattr(err, 'context', '') or ''} {getattr(err, 'problem', '') or str(err)}"
    if mark is not None and line <= len(text_lines) and "\t" in text_lines[line - 1][: int(mark.column) + 1]:
        text = "found character '\\t'"  # libyaml does not name the character
    for needle, message, fix in _PLAIN:
        if needle in text:
            return Problem(message, file, line, fix=fix)
    problem = getattr(err, "problem", None) or "the YAML cannot be read"
    return Problem(f"this line cannot be read as YAML ({problem})", file, line,
                   fix="check the indentation, colons and quotes on this line and the one above")


def parse(text: str, file: str) -> Document:
    """Parse one flow file's text; syntax errors become problems, never exceptions."""
    loader = _Loader(text, file)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as err:
        return Document(file, None, (_syntax_problem(file, text.splitlines(), err),))
    finally:
        loader.dispose()
    problems = list(loader.duplicates)
    if data is None:
        problems.append(Problem("the file is empty", file, 1,
                                fix="write at least one of: flows, replies, triggers, fallback, welcome_back"))
        return Document(file, None, tuple(problems))
    if not isinstance(data, LineDict):
        problems.append(Problem("the file must be a mapping with keys like 'flows:' and 'replies:'", file, 1,
                                fix="start the file with 'flows:' and indent the flows under it"))
        return Document(file, None, tuple(problems))
    return Document(file, data, tuple(problems))
