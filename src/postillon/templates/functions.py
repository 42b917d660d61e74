"""The functions a template calls — `content`, `content_variants`, `voucher` — bound to one
message from what was decided for the whole batch beforehand."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from markupsafe import Markup

from postillon.templates.blocks import CompiledVariant
from postillon.templates.plaintext import html_to_text
from postillon.templates.rendering import RenderProblem
from postillon.templates.sandbox import render_capped
from postillon.vouchers.service import Voucher

# Most variants content_variants() gives, whatever `top` asks.
MAX_TOP = 50

Functions = dict[str, Callable[..., Any]]


def bind_functions(
    variables: dict[str, Any],
    variants: Mapping[str, list[CompiledVariant]],
    vouchers: Mapping[str, Voucher | str],
) -> tuple[Functions, Functions]:
    """The functions of the HTML part and those of the text part, for one message.
    `variants` holds the matching variants of each block that could be decided, `vouchers`
    each pool's voucher or why there is none."""

    def matching(key: str) -> list[CompiledVariant]:
        found = variants.get(key)
        if found is None:
            raise RenderProblem(f"content block {key!r} cannot be decided")
        return found

    def render_variant(variant: CompiledVariant) -> Markup:
        content = variant.content
        return Markup(render_capped(content, content.new_context(variables)))

    def content(key: str) -> Markup:
        best = matching(key)
        return render_variant(best[0]) if best else Markup("")

    def content_variants(key: str, top: int = 3) -> list[dict[str, Any]]:
        best = matching(key)[: max(0, min(int(top), MAX_TOP))]
        return [
            {"key": one.key, "priority": one.priority, "content": render_variant(one)}
            for one in best
        ]

    def voucher(key: str) -> Voucher:
        found = vouchers.get(key)
        if found is None:
            raise RenderProblem(f"voucher pool {key!r} was not prepared for this message")
        if isinstance(found, str):
            raise RenderProblem(found)
        return found

    def text_content(key: str) -> str:
        return html_to_text(content(key)).strip()

    def text_content_variants(key: str, top: int = 3) -> list[dict[str, Any]]:
        return [
            {**one, "content": html_to_text(one["content"]).strip()}
            for one in content_variants(key, top)
        ]

    html_functions: Functions = {
        "content": content,
        "content_variants": content_variants,
        "voucher": voucher,
    }
    text_functions: Functions = {
        "content": text_content,
        "content_variants": text_content_variants,
    }
    return html_functions, text_functions
