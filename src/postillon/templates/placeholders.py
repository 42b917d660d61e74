"""Jinja tags hidden from HTML tools (MJML, the plain-text converter) and put back after.

MJML and HTML parsers do not know Jinja: they may escape `{{ }}` inside attributes, or
move `{% for %}` text around. Each tag is swapped for a plain word that survives anywhere
(text, attribute values, URLs), the tool runs, and the words become the tags again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_WORD = re.compile(r"(?:<!--)?pstljinja(\d{6})x(?:-->)?")


def protect(source: str, *, statements_as_comments: bool = False) -> tuple[str, list[str]]:
    """`source` with every Jinja tag replaced by a word, and the tags in order.

    With `statements_as_comments`, `{% %}` and `{# #}` between elements become HTML
    comments instead: an HTML parser moves text found between table rows out of the
    table ("foster parenting"), but leaves comments where they are.
    """
    tags: list[str] = []

    def hide(match: re.Match[str]) -> str:
        tags.append(match.group(0))
        word = f"pstljinja{len(tags) - 1:06d}x"
        if statements_as_comments and not match.group(0).startswith("{{"):
            start = match.start()
            if source.rfind("<", 0, start) <= source.rfind(">", 0, start):
                return f"<!--{word}-->"
        return word

    return _TAG.sub(hide, source), tags


def restore(text: str, tags: Sequence[str]) -> str:
    """`text` with the words of `protect` turned back into their tags."""
    return _WORD.sub(lambda match: tags[int(match.group(1))], text)


def in_order(text: str, count: int) -> bool:
    """Whether `text` holds the words of all `count` tags, each once and in order."""
    return [int(found) for found in _WORD.findall(text)] == list(range(count))


def surviving(text: str) -> set[int]:
    """The indexes of the tags whose words are still in `text`."""
    return {int(found) for found in _WORD.findall(text)}
