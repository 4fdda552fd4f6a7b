"""The sandboxed Jinja environment, the Vietnamese filters, and rendering of flow texts.

Flow texts are written by shop owners, so a template must never crash the engine, reach
Python internals, or run for long: the sandbox blocks attribute escapes, and a per-render
budget caps loop iterations, calls, ranges and the size of repeated strings and lists.
Customer text is only ever put in the context, never compiled.
"""

from __future__ import annotations

import logging
import math
import operator
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import ChainableUndefined, Template, TemplateError, Undefined, nodes, pass_eval_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.filters import do_join
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import generate_lorem_ipsum

from wabot import urls
from wabot.text import e164

log = logging.getLogger(__name__)

MAX_RANGE = 10_000  # items in range(...)
MAX_SIZE = 100_000  # characters or items a single operation may produce
MAX_OPERATIONS = 200_000  # loop iterations plus calls in one render
MAX_POWER = 1_000_000  # largest result magnitude of `a ** b` we compute
CACHE_SIZE = 512


class _Budget:
    """Counts the work one render does; past the limit the render stops."""

    def __init__(self) -> None:
        self.left = MAX_OPERATIONS

    def spend(self, n: int = 1) -> None:
        self.left -= n
        if self.left < 0:
            raise SecurityError("the template does too much work")


class _Codegen(CodeGenerator):
    """Wraps every `{% for %}` iterable so each iteration is counted against the budget."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        node.iter = nodes.Call(nodes.EnvironmentAttribute("guard_iter"), [node.iter], [], None, None)
        super().visit_For(node, frame)


    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple) else 0


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox plus limits on the operations that can allocate or loop without bound."""

    code_generator_class = _Codegen
    intercepted_binops = frozenset({"*", "**", "%", "+", "-", "/", "//"})
    intercepted_unops = frozenset({"-", "+"})

    def __init__(self, finalize: Callable[[Any], Any] | None = None) -> None:
        super().__init__(autoescape=False, undefined=ChainableUndefined, keep_trailing_newline=False,
                         finalize=finalize or self.limit_output)
        self.optimized = False  # Jinja's optimizer would run author expressions at compile time, unbudgeted
        self.budget = _Budget()
        self.globals["range"] = self.safe_range
        self.globals["lipsum"] = self.safe_lipsum
        self.filters["join"] = self.safe_join

    def limit_output(self, value: Any) -> Any:
        """Every `{{ value }}`: a list of long strings must not be printed into gigabytes."""
        if self.measure(value) > MAX_SIZE:
            raise SecurityError(f"a value shown in a text is limited to {MAX_SIZE} characters")
        return value

    def measure(self, value: Any, depth: int = 0) -> int:
        """Roughly how long `str(value)` would be, counting every item looked at against the budget."""
        if isinstance(value, str | bytes):
            return len(value)
        if depth > 50:
            raise SecurityError("values are nested too deeply")
        if isinstance(value, Mapping):
            value = [*value.keys(), *value.values()]
        if isinstance(value, list | tuple | set | frozenset):
            self.budget.spend(len(value))
            total = 2 * len(value)
            for item in value:
                total += self.measure(item, depth + 1)
                if total > MAX_SIZE:
                    break
            return total
        return 24

    def safe_lipsum(self, n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
        if n * max > 2_000:
            raise SecurityError("lipsum is limited to 2000 words")
        return str(generate_lorem_ipsum(n=n, html=html, min=min, max=max))

    @staticmethod
    @pass_eval_context
    def safe_join(context: EvalContext, value: Any, d: str = "", attribute: Any = None) -> str:
        env = context.environment
        assert isinstance(env, _Sandbox)
        items = list(env.guard_iter(value))
        if env.measure(items) + len(d) * len(items) > MAX_SIZE:
            raise SecurityError(f"join is limited to {MAX_SIZE} characters")
        return str(do_join(context, items, d, attribute))

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        raise SecurityError(f"the template may not use {attribute!r}")

    def safe_range(self, *args: int) -> range:
        rng = range(*args)
        if len(rng) > MAX_RANGE:
            raise SecurityError(f"range is limited to {MAX_RANGE} items")
        self.budget.spend()
        return rng

    def guard_iter(self, iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            self.budget.spend()
            yield item

    def concat(self, parts: Iterable[Any]) -> str:
        """The `~` operator, and every render's output: joins like Jinja does, within the size limit."""
        parts = list(parts)
        if all(type(part) is str for part in parts):  # a render's output: texts, their lengths are their sizes
            if sum(map(len, parts)) > MAX_SIZE:
                raise SecurityError(f"strings are limited to {MAX_SIZE} characters")
            return "".join(parts)
        if sum(self.measure(part) for part in parts) > MAX_SIZE:
            raise SecurityError(f"strings are limited to {MAX_SIZE} characters")
        texts = [str(part) for part in parts]
        if sum(map(len, texts)) > MAX_SIZE:
            raise SecurityError(f"strings are limited to {MAX_SIZE} characters")
        return "".join(texts)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        __self.budget.spend()
        _check_call(__obj, args, kwargs)
        if sum(__self.measure(a) for a in (*args, *kwargs.values())) > MAX_SIZE:
            raise SecurityError(f"values passed to a call are limited to {MAX_SIZE} characters")
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Context, operator_: str, left: Any, right: Any) -> Any:
        self.budget.spend()
        if isinstance(left, Formatted) or isinstance(right, Formatted):
            return _formatted_arithmetic(operator_, left, right)
        if operator_ == "-":
            return operator.sub(left, right)
        if operator_ == "/":
            return operator.truediv(left, right)
        if operator_ == "*":
            count = right if _size(left) else left if _size(right) else None
            if isinstance(count, int) and _size(left) * count + _size(right) * count > MAX_SIZE:
                raise SecurityError(f"repetition is limited to {MAX_SIZE} items")
            return operator.mul(left, right)
        if operator_ == "**":
            _check_power(left, right)
            return operator.pow(left, right)
        if operator_ == "%":
            if isinstance(left, str):
                _check_format(left)
                _check_ints(right if isinstance(right, tuple) else (right,))
                if self.measure(right) > MAX_SIZE:
                    raise SecurityError(f"strings are limited to {MAX_SIZE} characters")
            return operator.mod(left, right)
        if _size(left) + _size(right) > MAX_SIZE:
            raise SecurityError(f"strings and lists are limited to {MAX_SIZE} items")
        return operator.add(left, right)


def fresh_budget(env: Any) -> None:
    """Give a sandbox from this module a full budget before a render."""
    env.budget = _Budget()


def _check_power(base: Any, exponent: Any) -> None:
    if isinstance(base, int | float) and isinstance(exponent, int | float):
        b, e = abs(float(base)), float(exponent)
        if b > 1 and e > 0 and e * math.log10(b) > math.log10(MAX_POWER) + 6:
            raise SecurityError("the power is too large")


_PERCENT_SPEC = re.compile(r"%[#0\- +]*(\d*)(?:\.(\d*))?")
_BRACE_SPEC = re.compile(r"\{[^{}]*?:([^{}]*)\}")


def _check_format(spec: str) -> None:
    """`'%0999999999d' % 1` or `'{:>999999999}'.format(1)` would allocate gigabytes."""
    widths = [n for m in _PERCENT_SPEC.finditer(spec) for n in m.groups() if n]
    widths += re.findall(r"\d+", " ".join(_BRACE_SPEC.findall(spec)))
    if any(int(n) > MAX_SIZE for n in widths):
        raise SecurityError("format widths are limited")


def _check_ints(values: Iterable[Any]) -> None:
    if any(isinstance(v, int) and not isinstance(v, bool) and v > MAX_SIZE for v in values):
        raise SecurityError("widths are limited")


_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "format", "format_map"})


def _check_call(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    method = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format at attribute access
    owner = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    if isinstance(owner, str):
        if name in _WIDTH_METHODS:
            _check_format(owner)
            _check_ints((*args, *kwargs.values()))
        replacement = args[1] if name == "replace" and len(args) >= 2 else ""
        if isinstance(replacement, str) and (len(owner) + 1) * len(replacement) > MAX_SIZE:
            raise SecurityError("replace would make a string too long")


def _limit_width(function: Callable[..., Any], *, check_value: bool = False) -> Callable[..., Any]:
    """Wrap a built-in filter whose integer arguments are widths (center, indent, wordwrap, ...)."""

    def limited(value: Any, *args: Any, **kwargs: Any) -> Any:
        _check_ints((*args, *kwargs.values()))
        if check_value and isinstance(value, str):
            _check_format(value)
        if isinstance(value, str) and any(isinstance(a, str) and len(a) * len(value) > MAX_SIZE for a in args):
            raise SecurityError("the result would be too long")
        return function(value, *args, **kwargs)

    return limited


class Formatted(str):
    """A number shown by `money` or `number`, remembering the number.

    Jinja binds a filter tighter than arithmetic, so authors' `quantity * price | money`
    means `quantity * (price | money)`; doing the arithmetic on the number (and formatting
    the result again) gives them what they meant instead of a repeated string.
    """

    value: int | float
    reformat: Callable[[Any], Any]

    @classmethod
    def of(cls, text: str, value: int | float, format_: Callable[[Any], Any]) -> Formatted:
        made = cls(text)
        made.value = value
        made.reformat = format_
        return made


_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "*": operator.mul, "+": operator.add, "-": operator.sub, "/": operator.truediv,
}


def _formatted_arithmetic(operator_: str, left: Any, right: Any) -> Any:
    shown = left if isinstance(left, Formatted) else right
    numbers = [v.value if isinstance(v, Formatted) else _as_number(v) for v in (left, right)]
    if operator_ not in _ARITHMETIC or numbers[0] is None or numbers[1] is None:
        raise TypeError(f"cannot use {operator_} on a formatted number and {type(right).__name__}")
    return shown.reformat(_ARITHMETIC[operator_](numbers[0], numbers[1]))


# --- filters ---------------------------------------------------------------------------------------


def _as_number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
    return None


def _group(number: int | float, decimals: int) -> str:
    """1234567.5 -> "1.234.567,5": dots between thousands, a comma before decimals (Vietnamese)."""
    text = f"{number:,.{decimals}f}"
    if decimals:
        text = text.rstrip("0").rstrip(".")
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def money(value: Any, symbol: str = "₫") -> Any:
    """150000 -> "150.000 ₫"."""
    number = _as_number(value)
    if number is None or number != number or number in (float("inf"), float("-inf")):
        return value
    return Formatted.of(f"{_group(round(number), 0)} {symbol}".rstrip(), number, lambda n: money(n, symbol))


def number(value: Any, decimals: int | None = None) -> Any:
    """1234.5 -> "1.234,5"; whole numbers without decimals; `decimals` fixes their count."""
    num = _as_number(value)
    if num is None or num != num or num in (float("inf"), float("-inf")):
        return value
    if decimals is not None:
        text = f"{num:,.{max(0, min(decimals, 10))}f}"
        text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    elif isinstance(num, int) or num.is_integer():
        text = _group(int(num), 0)
    else:
        text = _group(num, 6)
    return Formatted.of(text, num, lambda n: number(n, decimals))


DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"  # `now` and the date filters, unless bot.timezone says otherwise
DATE_FORMATS = {"date": "%d/%m/%Y", "datetime": "%d/%m/%Y %H:%M", "time": "%H:%M"}  # Vietnamese order
# wabot's own filters, beside Jinja's
FILTERS = ("money", "number", *DATE_FORMATS, "urlpath", "add_days", "weekday", "e164")
WEEKDAYS_VI = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ nhật")
WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class Renderer:
    """Compiles each Jinja source once (cached) and renders it in a sandbox."""

    def __init__(self, *, timezone: str = DEFAULT_TIMEZONE) -> None:
        try:
            self.zone: tzinfo = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("unknown time zone %r, dates are shown in UTC", timezone)
            self.zone = ZoneInfo("UTC")
        self.env = _Sandbox()
        self.url_env = _Sandbox(finalize=self._mark_url_value)
        for env in (self.env, self.url_env):
            for name in ("center", "indent", "wordwrap", "replace", "truncate", "format"):
                env.filters[name] = _limit_width(env.filters[name], check_value=name == "format")
            env.filters.update(money=money, number=number, urlpath=urls.PathValue, add_days=self._add_days,
                               e164=lambda phone: e164(str(phone)), weekday=self._weekday)
            env.filters.update({name: self._formatter(form) for name, form in DATE_FORMATS.items()})
        self._templates: OrderedDict[str, Template] = OrderedDict()
        self._urls: OrderedDict[str, Template] = OrderedDict()
        self._expressions: OrderedDict[str, Callable[..., Any]] = OrderedDict()

    def render(self, source: str, context: Mapping[str, Any]) -> str:
        """Render a flow text; on any error log a warning naming the text and return ""."""
        if "{" not in source:
            return source  # most texts are plain; skip the compile
        try:
            template = self._cached(self._templates, source, self._compile)
            self.env.budget = _Budget()
            return str(template.render(context))
        except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError, RecursionError,
                MemoryError, AttributeError) as exc:
            log.warning("could not render the text %r: %s", _short(source), _reason(exc))
            return ""

    def _compile(self, source: str) -> Template:
        template = self.env.from_string(source)
        # Jinja copies the template's globals into every render; kept as its ChainMap over the environment's,
        # that copy was a third of the time a short text took to render (issue 14 item 5's profile). The
        # environment's globals never change after __init__, so a plain dict holds the same names.
        template.globals = dict(template.globals)
        return template

    def render_url(self, source: str, context: Mapping[str, Any]) -> str:
        """Render an http step's URL: each value after the host is encoded as one path segment or query value."""
        if "{" not in source:
            return source.strip()
        try:
            template = self._cached(self._urls, source, self.url_env.from_string)
            self.url_env.budget = _Budget()
            return urls.assemble(str(template.render(context)))
        except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError, RecursionError,
                MemoryError, AttributeError) as exc:
            log.warning("could not render the address %r: %s", _short(source), _reason(exc))
            return ""

    def _mark_url_value(self, value: Any) -> str:
        return urls.mark(self.url_env.limit_output(value))

    def evaluate(self, expression: str, context: Mapping[str, Any]) -> Any:
        """Evaluate a Jinja expression (`quantity > 10`) to a Python value; None on any error."""
        try:
            compiled = self._cached(self._expressions, expression, self.env.compile_expression)
            self.env.budget = _Budget()
            value = compiled(**context)
        except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError, RecursionError,
                MemoryError, AttributeError) as exc:
            log.warning("could not evaluate the expression %r: %s", _short(expression), _reason(exc))
            return None
        return None if isinstance(value, ChainableUndefined) else value

    def now(self, timestamp: float) -> datetime:
        """The unix time `timestamp` as an aware datetime in the bot's time zone."""
        return datetime.fromtimestamp(timestamp, self.zone)

    def _cached(self, cache: OrderedDict[str, Any], source: str, compile_: Callable[[str], Any]) -> Any:
        found = cache.get(source)
        if found is None:
            found = cache[source] = compile_(source)
            if len(cache) > CACHE_SIZE:
                cache.popitem(last=False)
        else:
            cache.move_to_end(source)
        return found

    def _add_days(self, value: Any, days: Any = 1) -> Any:
        """`{{ now | add_days(1) | date }}`: a date or moment `days` later (earlier when negative)."""
        moment = _as_moment(value, self.zone)
        steps = _as_number(days)
        if moment is None or steps is None or abs(steps) > 36600:
            return value
        return moment + timedelta(days=steps)

    def _weekday(self, value: Any, lang: str = "vi") -> Any:
        """`{{ day | weekday }}` -> "Thứ Sáu" ("Friday" with weekday('en'))."""
        moment = _as_moment(value, self.zone)
        if moment is None:
            return value
        names = WEEKDAYS_EN if lang == "en" else WEEKDAYS_VI
        return names[moment.weekday()]

    def _formatter(self, pattern: str) -> Callable[..., Any]:
        zone = self.zone

        def format_(value: Any, fmt: str | None = None) -> Any:
            moment = _as_moment(value, zone)
            if moment is None:
                return value
            return moment.strftime(fmt or pattern)

        format_.__name__ = pattern
        return format_


def _as_moment(value: Any, zone: tzinfo) -> datetime | date | None:
    """A date or a datetime in `zone` from a date, datetime, ISO string or unix time; None if none."""
    if isinstance(value, datetime):
        return value.astimezone(zone) if value.tzinfo else value.replace(tzinfo=zone)
    if isinstance(value, date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, zone)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return date.fromisoformat(text)
            return _as_moment(datetime.fromisoformat(text.replace("Z", "+00:00")), zone)
        except ValueError:
            return None
    return None


def _short(source: str) -> str:
    return source if len(source) <= 80 else source[:77] + "..."


def _reason(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {exc}"[:200]
