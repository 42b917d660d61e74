"""Turning a saved template and one recipient's data into the parts of an email.

A template version is compiled once (`CompiledTemplate`, cached by the service per
template id and version): the subject, preheader and text as text templates, the HTML
(MJML already compiled at save) as an autoescaped template with a slot for the hidden
preheader, and — when no text part was written — a text template derived from the HTML
with its Jinja tags kept, so each message costs Jinja renders and one CSS inlining only.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import css_inline
from jinja2 import Template
from jinja2.exceptions import TemplateError

from postillon.filters.facts import ContactFacts
from postillon.models import EmailTemplate
from postillon.templates import placeholders
from postillon.templates.plaintext import html_to_text
from postillon.templates.sandbox import RANGE_BUDGET, BoundedSandbox, budgeted_range

# The usual hidden first element of the body: clients show it beside the subject.
_PREHEADER = (
    '<div style="display:none;font-size:1px;color:#ffffff;line-height:1px;max-height:0;'
    'max-width:0;opacity:0;overflow:hidden;mso-hide:all;">{{ postillon_preheader }}</div>'
)
_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)

# Nothing is fetched while inlining: a template must not make the worker load URLs.
_INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    preheader: str
    html: str
    text: str


@dataclass(frozen=True)
class RenderFailure:
    reason: str


@dataclass(frozen=True)
class CompiledTemplate:
    """One version of a template, ready to render many times."""

    subject: Template
    preheader: Template | None
    html: Template
    text: Template
    inline_css: bool


@dataclass(frozen=True)
class Environments:
    html: BoundedSandbox
    text: BoundedSandbox


def compile_template(environments: Environments, template: EmailTemplate) -> CompiledTemplate:
    """Jinja templates for every part of `template` (checked at save, so this succeeds)."""
    html_source, inlined = pre_inline_css(insert_preheader_slot(template.compiled_html))
    if template.text_body:
        text_source = template.text_body
    else:
        protected, tags = placeholders.protect(template.compiled_html)
        text_source = placeholders.restore(html_to_text(protected), tags)
    return CompiledTemplate(
        subject=environments.text.from_string(template.subject),
        preheader=environments.text.from_string(template.preheader) if template.preheader else None,
        html=environments.html.from_string(html_source),
        text=environments.text.from_string(text_source),
        inline_css=not inlined,
    )


def pre_inline_css(html: str) -> tuple[str, bool]:
    """The template with its CSS inlined once for all messages, if that keeps every Jinja
    tag in place; else the template as it was, to be inlined message by message (which
    costs about a millisecond each for an MJML newsletter)."""
    if "<style" not in html.lower():
        return html, True
    protected, tags = placeholders.protect(html, statements_as_comments=True)
    inlined = inline_css(protected)
    if not placeholders.in_order(inlined, len(tags)):
        return html, False
    return placeholders.restore(inlined, tags), True


def insert_preheader_slot(html: str) -> str:
    found = _BODY_OPEN.search(html)
    if found is None:
        return _PREHEADER + html
    return html[: found.end()] + _PREHEADER + html[found.end() :]


def render(compiled: CompiledTemplate, variables: dict[str, Any]) -> RenderedEmail:
    """The parts of one email; raises TemplateError (or a sandbox error) on failure."""
    variables["range"] = budgeted_range([RANGE_BUDGET])
    subject = " ".join(compiled.subject.render(variables).split())
    preheader = " ".join(compiled.preheader.render(variables).split()) if compiled.preheader else ""
    html = compiled.html.render(variables, postillon_preheader=preheader)
    if compiled.inline_css:
        html = inline_css(html)
    text = compiled.text.render(variables)
    return RenderedEmail(subject=subject, preheader=preheader, html=html, text=text)


def inline_css(html: str) -> str:
    """Styles moved onto the elements; `@media` rules, which cannot be inlined, stay in a
    `<style>` element."""
    return str(_INLINER.inline(html))


def failure_of(error: Exception) -> RenderFailure:
    """A RenderFailure saying what went wrong without Python internals."""
    if isinstance(error, TemplateError):
        return RenderFailure(f"template error: {error.message or type(error).__name__}")
    return RenderFailure(f"template error: {type(error).__name__}: {error}")


def contact_variables(facts: ContactFacts) -> dict[str, Any]:
    """What `contact` means in a template."""
    row = facts.contact
    traits = dict(facts.traits or {})
    traits.pop("contact_id", None)
    variables = {
        "id": str(row["id"]),
        "email": row["email"],
        "first_name": row["first_name"],
        "last_name": row["last_name"],
        "phone": row["phone"],
        "locale": row["locale"],
        "timezone": row["timezone"],
        "score": row["score"],
        "lifecycle_stage": row["lifecycle_stage"],
        "tags": sorted(facts.tags),
        "consent": dict(facts.consents),
        "created_at": row["created_at"],
        "attributes": dict(row["attributes"] or {}),
        "traits": traits,
    }
    # Empty fields are left out, so that they are undefined and `default` applies.
    return {name: value for name, value in variables.items() if value is not None}


@dataclass(frozen=True)
class MessageData:
    """Everything one message's template may read beside the contact."""

    message_id: uuid.UUID
    sent_at: datetime
    event: Mapping[str, Any]
    unsubscribe_url: str
    preferences_url: str


def message_variables(
    contact: dict[str, Any], data: MessageData, functions: Mapping[str, Callable[..., Any]]
) -> dict[str, Any]:
    """The variables of one render: contact, event, message, links and functions."""
    return {
        "contact": contact,
        "event": data.event,
        "message": {"id": str(data.message_id), "sent_at": data.sent_at},
        "unsubscribe_url": data.unsubscribe_url,
        "preferences_url": data.preferences_url,
        **functions,
    }
