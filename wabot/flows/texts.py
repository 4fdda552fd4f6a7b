"""Texts while building: Localized values, Jinja syntax checks and WhatsApp length limits, with lines."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError

from wabot.errors import Problem
from wabot.flows.model import ANY, Localized
from wabot.flows.source import LineDict, LineList
from wabot.templates import FILTERS, Renderer, fresh_budget

# The rendering sandbox itself: compiling never folds author expressions outside its limits (issue 16)
_env = Renderer(timezone="UTC").env


def line_of(container: Any, key: Any, default: int = 1) -> int:
    """The line of `container[key]` as written in the YAML file."""
    if isinstance(container, LineDict):
        return container.value_lines.get(key, container.line)
    if isinstance(container, LineList) and isinstance(key, int) and 0 <= key < len(container.item_lines):
        return container.item_lines[key]
    return default


def suggest(word: str, names: Iterable[str]) -> str:
    """' — did you mean 'x'?' style hint, or ''."""
    close = difflib.get_close_matches(word, list(names), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


def is_template(source: str) -> bool:
    return "{{" in source or "{%" in source or "{#" in source


@dataclass(frozen=True, slots=True)
class Use:
    """A variable read by a template, and where."""

    name: str
    file: str
    line: int
    where: str


@dataclass(slots=True)
class Texts:
    """Collects problems and variable uses while texts are turned into model values."""

    problems: list[Problem] = field(default_factory=list)
    uses: list[Use] = field(default_factory=list)
    reply_uses: list[Use] = field(default_factory=list)  # `{reply: name}` messages
    env_uses: list[Use] = field(default_factory=list)  # `{{ env.NAME }}`: NAME, to check against bot.env
    _seen: dict[str, tuple[str, frozenset[str]] | None] = field(default_factory=dict)

    def problem(self, message: str, file: str, line: int, where: str, fix: str = "", *, warning: bool = False) -> None:
        self.problems.append(Problem(message, file, line, where, fix, "warning" if warning else "error"))

    def template(self, source: str, file: str, line: int, where: str, *, expression: bool = False) -> str:
        """Check a Jinja source (or expression); note the variables it reads."""
        if not expression and not is_template(source):
            return source
        key = ("E:" if expression else "T:") + source
        if key not in self._seen:
            self._seen[key] = _compile("{{ " + source + " }}" if expression else source)
        result = self._seen[key]
        if result is None:
            return source
        error, names = result
        if error and expression:
            error = error.replace("the template", "the condition").replace("'end of print statement'", "end")
        if error:
            fix = "check the {{ }} and {% %} pairs and the expression between them"
            if error.startswith("there is no filter"):
                name = error.split("'")[1]
                fix = suggest(name, [*FILTERS, *_env.filters]) or f"the filters are {', '.join(FILTERS)}"
            self.problem(error, file, line, where, fix)
        self.uses.extend(Use(name, file, line, where) for name in sorted(names) if not name.startswith("env."))
        self.env_uses.extend(Use(name[4:], file, line, where) for name in sorted(names) if name.startswith("env."))
        return source

    def text(self, raw: Any, file: str, line: int, where: str, *, limit: int = 0, what: str = "the text") -> Localized:
        """A plain or per-language text -> Localized, checking Jinja and (for literal text) the length."""
        if isinstance(raw, dict):
            pairs = [(str(lang), str(value), line_of(raw, lang, line)) for lang, value in raw.items()]
        else:
            pairs = [(ANY, str(raw), line)]
        result: dict[str, str] = {}
        for lang, value, at in pairs:
            self.template(value, file, at, where)
            if limit and not is_template(value) and len(value) > limit:
                self.problem(f"{what} is {len(value)} characters long; WhatsApp allows at most {limit}",
                             file, at, where, f"shorten it to {limit} characters: '{value[:limit]}…'")
            result[lang] = value
        return result


def _compile(source: str) -> tuple[str, frozenset[str]]:
    try:
        ast = _env.parse(source)
        template = _env.from_string(ast)
    except jinja2.TemplateSyntaxError as err:  # unknown filters too (TemplateAssertionError)
        message = err.message or str(err)
        if message.startswith("No filter named"):
            return "there is no filter " + message.removeprefix("No filter named ").rstrip("."), frozenset()
        return f"the template has a mistake: {message}", frozenset()
    if too_much := _too_much_work(template):
        return too_much, frozenset()
    names = meta.find_undeclared_variables(ast)
    # `x.y` reads x; `loop`, `range`... are Jinja's own
    read = frozenset(n for n in names if n not in _env.globals and n != "loop" and not _assigned(ast, n))
    return "", read | _env_names(ast) if "env" in read else read


def _env_names(ast: nodes.Template) -> frozenset[str]:
    """`env.NAME` and `env['NAME']` read in a template, as "env.NAME"."""
    found = {f"env.{node.attr}" for node in ast.find_all(nodes.Getattr)
             if isinstance(node.node, nodes.Name) and node.node.name == "env"}
    found |= {f"env.{node.arg.value}" for node in ast.find_all(nodes.Getitem)
              if isinstance(node.node, nodes.Name) and node.node.name == "env" and isinstance(node.arg, nodes.Const)}
    return frozenset(found)


def _too_much_work(template: jinja2.Template) -> str:
    """Render once with no variables, under the rendering budget: what is over it without data always is."""
    fresh_budget(_env)
    try:
        template.render()
    except SecurityError as err:
        return f"the template would do too much work when shown ({err})"
    except Exception:
        pass
    return ""


def _assigned(ast: nodes.Template, name: str) -> bool:
    return any(node.name == name for node in ast.find_all(nodes.Name) if node.ctx in ("store", "param"))

