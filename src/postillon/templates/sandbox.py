"""The Jinja environments every template is compiled in: sandboxed, immutable, bounded.

A template is written by a user of Postillon and rendered with contacts' data, so it must
never reach Python internals (the sandbox refuses `_` attributes, unsafe callables and
format-string tricks) nor make the worker run or allocate without end. So, beside the
immutable sandbox:

- every `for` loop draws its steps from a budget of the render (loops are rewritten when
  compiled to go through `postillon_loop`), as does `range`, so loops inside loops stop
  with an error instead of running for hours;
- `*` and `**`, the string methods and filters that widen text (`center`, `ljust`,
  `format` widths, `replace`, `join`, `indent`, `batch` …) refuse results beyond a size;
- the output of a render is capped as it is produced.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import ChainableUndefined, Template, nodes, pass_eval_context
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

# The largest text or list one operation may build, and the largest power.
MAX_BUILT_LENGTH = 100_000
MAX_POWER_DIGITS = 100
# How many loop steps (and numbers from `range`) one render may take in all.
LOOP_BUDGET = 100_000
# The largest part (HTML, text …) a render may produce.
MAX_OUTPUT_LENGTH = 2_000_000
# Widths in format strings (`{:>99999}`, `%99999s`) from this many digits are refused.
_WIDE = re.compile(r"\{[^{}]*:[^{}]*(?:\d{5}|\{)|%[-+ #0]*(?:\d{5}|\*)")
_WIDENING_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs"})
LOOP_FUNCTION = "postillon_loop"


class TemplateLimitExceeded(SecurityError):
    """A template asked for more than a message may cost."""


class LoopBudget:
    """The steps one render may still take; `loop` and `range` draw from it."""

    def __init__(self, steps: int = LOOP_BUDGET) -> None:
        self.steps = steps

    def loop(self, iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            self.steps -= 1
            if self.steps < 0:
                raise TemplateLimitExceeded(f"a render may take {LOOP_BUDGET} loop steps")
            yield item

    def range(self, *arguments: int) -> range:
        numbers = range(*arguments)
        self.steps -= len(numbers)
        if self.steps < 0:
            raise TemplateLimitExceeded(f"a render may take {LOOP_BUDGET} loop steps")
        return numbers


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with sizes checked before they are built."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Context, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            return _power(left, right)
        if operator_name == "*":
            return _repeat(left, right)
        if operator_name == "%" and isinstance(left, str):
            _check_format(left)
        return super().call_binop(context, operator_name, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        """`a.b` on a mapping of data (contact, event …) reads its item `b` first: the data
        hold nothing of Python, `event.items` means the event's items rather than the
        dict method, and no attribute lookup has to fail first."""
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)

    def call(self, context: Context, callee: Any, /, *args: Any, **kwargs: Any) -> Any:
        target = getattr(callee, "__wrapped__", callee)
        owner = getattr(target, "__self__", None)
        if isinstance(owner, str):
            _check_str_method(owner, getattr(target, "__name__", ""), args, kwargs)
        return super().call(context, callee, *args, **kwargs)

    def from_source(self, source: str) -> Template:
        """A template whose loops draw from the render's budget."""
        tree = self.parse(source)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Call(
                nodes.Name(LOOP_FUNCTION, "load", lineno=loop.lineno),
                [loop.iter],
                [],
                None,
                None,
                lineno=loop.lineno,
            )
        return self.from_string(tree)


def render_capped(template: Template, context: Context) -> str:
    """The template rendered in `context`, stopped once it exceeds MAX_OUTPUT_LENGTH."""
    parts: list[str] = []
    length = 0
    for part in template.root_render_func(context):
        length += len(part)
        if length > MAX_OUTPUT_LENGTH:
            raise TemplateLimitExceeded(f"a part may be at most {MAX_OUTPUT_LENGTH} characters")
        parts.append(part)
    return "".join(parts)


def _power(base: Any, exponent: Any) -> Any:
    # The digits of base ** exponent are about exponent * digits(base): refuse before computing.
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and abs(base) > 1
        and exponent * len(str(abs(base))) > MAX_POWER_DIGITS
    ):
        raise TemplateLimitExceeded(f"{base} ** {exponent} is too large")
    return operator.pow(base, exponent)


def _repeat(left: Any, right: Any) -> Any:
    for sequence, times in ((left, right), (right, left)):
        if (
            isinstance(sequence, str | list | tuple)
            and isinstance(times, int)
            and len(sequence) * times > MAX_BUILT_LENGTH
        ):
            raise TemplateLimitExceeded("a repeated text or list would be too long")
    return operator.mul(left, right)


def _check_size(size: int) -> None:
    if size > MAX_BUILT_LENGTH:
        raise TemplateLimitExceeded("a text built in the template would be too long")


def _check_format(text: str) -> None:
    if _WIDE.search(text):
        raise TemplateLimitExceeded("format widths are limited to 4 digits")


def _check_replace(text: str, old: Any, new: Any) -> None:
    if isinstance(old, str) and isinstance(new, str):
        count = text.count(old) if old else len(text) + 1
        _check_size(len(text) + count * len(new))


def _check_str_method(text: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    values = (*args, *kwargs.values())
    if name in _WIDENING_METHODS:
        for value in values:
            if isinstance(value, int):
                _check_size(value * (len(text) if name == "expandtabs" else 1))
    elif name in {"format", "format_map"}:
        _check_format(text)
    elif name == "replace" and len(args) >= 2:
        _check_replace(text, args[0], args[1])
    elif name == "join" and args:
        items = list(args[0]) if not isinstance(args[0], str) else args[0]
        _check_size(sum(len(str(item)) for item in items) + len(text) * len(items))


def _bounded_filters(environment: BoundedSandbox) -> None:
    filters = environment.filters
    center, indent, format_, join = (filters[n] for n in ("center", "indent", "format", "join"))
    replace, batch, slice_ = filters["replace"], filters["batch"], filters["slice"]

    def bounded_center(value: Any, width: int = 80) -> Any:
        _check_size(width if isinstance(width, int) else 0)
        return center(value, width)

    def bounded_indent(value: Any, width: Any = 4, *args: Any, **kwargs: Any) -> Any:
        lines = str(value).count("\n") + 1
        _check_size(lines * (width if isinstance(width, int) else len(str(width))))
        return indent(value, width, *args, **kwargs)

    def bounded_format(value: Any, *args: Any, **kwargs: Any) -> Any:
        _check_format(str(value))
        return format_(value, *args, **kwargs)

    @pass_eval_context
    def bounded_replace(eval_ctx: Any, value: Any, old: Any, new: Any, *args: Any) -> Any:
        _check_replace(str(value), old, new)
        return replace(eval_ctx, value, old, new, *args)

    @pass_eval_context
    def bounded_join(eval_ctx: Any, value: Any, separator: Any = "", *args: Any) -> Any:
        items = list(value)
        _check_size(sum(len(str(i)) for i in items) + len(str(separator)) * len(items))
        return join(eval_ctx, items, separator, *args)

    def bounded_batch(value: Any, linecount: int, *args: Any) -> Any:
        _check_size(linecount if isinstance(linecount, int) else 0)
        return batch(value, linecount, *args)

    def bounded_slice(value: Any, slices: int, *args: Any) -> Any:
        _check_size(slices if isinstance(slices, int) else 0)
        return slice_(value, slices, *args)

    filters.update(
        center=bounded_center,
        indent=bounded_indent,
        format=bounded_format,
        replace=bounded_replace,
        join=bounded_join,
        batch=bounded_batch,
        slice=bounded_slice,
    )


def _empty_for_none(value: Any) -> Any:
    return "" if value is None else value


def build_environments() -> tuple[BoundedSandbox, BoundedSandbox]:
    """The HTML environment (autoescaped) and the text one (subject, preheader, text)."""
    options: dict[str, Any] = {
        "undefined": ChainableUndefined,
        "finalize": _empty_for_none,
        "cache_size": 0,
    }
    html = BoundedSandbox(autoescape=True, **options)
    text = BoundedSandbox(autoescape=False, **options)
    for environment in (html, text):
        # `range` is bound per render to the loop budget; `lipsum` writes any amount of
        # text and has no place in an email.
        environment.globals.pop("range", None)
        environment.globals.pop("lipsum", None)
        _bounded_filters(environment)
    return html, text


def render_budget() -> dict[str, Callable[..., Any]]:
    """The loop function and `range` of one render, sharing one budget."""
    budget = LoopBudget()
    return {LOOP_FUNCTION: budget.loop, "range": budget.range}
