"""The Jinja environments every template is compiled in: sandboxed, immutable, bounded.

A template is written by a user of Postillon and rendered with contacts' data, so it must
never reach Python internals (the sandbox refuses `_` attributes, unsafe callables and
format-string tricks) nor make the worker run or allocate without end: powers and
repetitions of strings and lists are capped, and `range` draws from a per-render budget,
so loops inside loops over `range` stop with an error instead of running for hours.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from jinja2 import ChainableUndefined
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

# The largest string or list one `*` may build, and the largest power.
MAX_REPEAT_LENGTH = 100_000
MAX_POWER_DIGITS = 100
# How many numbers all the `range` calls of one render may yield together.
RANGE_BUDGET = 10_000


class TemplateLimitExceeded(SecurityError):
    """A template asked for more than a message may cost."""


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with `*` and `**` checked before they compute."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            return _power(left, right)
        if operator_name == "*":
            return _repeat(left, right)
        return super().call_binop(context, operator_name, left, right)


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
            and len(sequence) * times > MAX_REPEAT_LENGTH
        ):
            raise TemplateLimitExceeded("a repeated text or list would be too long")
    return operator.mul(left, right)


def budgeted_range(budget: list[int]) -> Callable[..., range]:
    """A `range` that draws from `budget` (one number a render), so nested loops over
    ranges cannot multiply into billions of steps."""

    def bounded(*arguments: int) -> range:
        numbers = range(*arguments)
        budget[0] -= len(numbers)
        if budget[0] < 0:
            raise TemplateLimitExceeded(f"loops over range() may yield {RANGE_BUDGET} numbers")
        return numbers

    return bounded


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
        # `range` is bound per render (see `budgeted_range`); the other default globals
        # (lipsum, cycler, joiner, namespace, dict) are harmless in the sandbox.
        environment.globals.pop("range", None)
    return html, text
