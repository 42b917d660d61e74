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
from typing import Any, Protocol

import css_inline
from jinja2 import Template, meta
from jinja2.exceptions import TemplateError

from postillon.filters.facts import ContactFacts
from postillon.models import EmailTemplate
from postillon.templates import placeholders
from postillon.templates.checks import function_calls
from postillon.templates.plaintext import html_to_text
from postillon.templates.sandbox import BoundedSandbox, render_budget, render_capped

# The usual hidden first element of the body: clients show it beside the subject.
_PREHEADER = (
    '<div style="display:none;font-size:1px;color:#ffffff;line-height:1px;max-height:0;'
    'max-width:0;opacity:0;overflow:hidden;mso-hide:all;">{{ postillon_preheader }}</div>'
)
_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_TAG_OR_WORD = re.compile(r"<(?P<tag>/?[a-zA-Z][a-zA-Z0-9:-]*)|(?P<word>pstljinja\d{6}x)")
_EMPTY_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*)+\n")

# Nothing is fetched while inlining: a template must not make the worker load URLs.
_INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


class MessageToRender(Protocol):
    """What rendering reads of an outbox message (the send path's claimed rows have it)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def contact_id(self) -> uuid.UUID: ...
    @property
    def template_id(self) -> uuid.UUID | None: ...
    @property
    def context(self) -> dict[str, Any] | None: ...


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
    # The variables and functions the template reads: links cost a signature each, so
    # only those a template shows are made.
    reads: frozenset[str]
    # The content blocks and voucher pools it names.
    blocks: frozenset[str]
    pools: frozenset[str]


@dataclass(frozen=True)
class Environments:
    html: BoundedSandbox
    text: BoundedSandbox


def compile_template(environments: Environments, template: EmailTemplate) -> CompiledTemplate:
    """Jinja templates for every part of `template` (checked at save, so this succeeds)."""
    html_source, inlined = pre_inline_css(insert_preheader_slot(template.compiled_html))
    html_source = collapse_indentation(html_source)
    if template.text_body:
        text_source = template.text_body
    else:
        protected, tags = placeholders.protect(template.compiled_html)
        text_source = placeholders.restore(html_to_text(protected), tags)
    sources = (template.subject, template.preheader or "", html_source, text_source)
    trees = [environments.text.parse(source) for source in sources]
    reads = frozenset(name for tree in trees for name in meta.find_undeclared_variables(tree))
    calls = [call for tree in trees for call in function_calls(tree) if call.key is not None]
    html = environments.html
    return CompiledTemplate(
        subject=html.from_source(as_text(template.subject)),
        preheader=html.from_source(as_text(template.preheader)) if template.preheader else None,
        html=html.from_source(html_source),
        text=html.from_source(as_text(text_source)),
        inline_css=not inlined,
        reads=reads,
        blocks=frozenset(c.key for c in calls if c.function != "voucher" and c.key),
        pools=frozenset(c.key for c in calls if c.function == "voucher" and c.key),
    )


# The text parts are compiled in the HTML environment, unescaped and with the text versions
# of the content functions, so that one context serves all four parts of a message.
_TEXT_OPEN = (
    "{% autoescape false %}{% with content=postillon_text_content, "
    "content_variants=postillon_text_content_variants %}"
)
_TEXT_CLOSE = "{% endwith %}{% endautoescape %}"


def as_text(source: str) -> str:
    """`source` as a text part (checked on its own at save, so it cannot close these)."""
    return f"{_TEXT_OPEN}{source}{_TEXT_CLOSE}"


def pre_inline_css(html: str) -> tuple[str, bool]:
    """The template with its CSS inlined once for all messages, if that keeps every Jinja
    tag in place; else the template as it was, to be inlined message by message (which
    costs about a millisecond each for an MJML newsletter)."""
    if "<style" not in html.lower():
        return html, True
    protected, tags = placeholders.protect(html, statements_as_comments=True)
    inlined = inline_css(protected)
    # The parser may also add elements the HTML implies (a <tbody> in a table), which
    # must not land between a loop's tags and what they enclose.
    if not placeholders.in_order(inlined, len(tags)) or _neighbours(inlined) != _neighbours(
        protected
    ):
        return html, False
    return placeholders.restore(inlined, tags), True


# What must keep its whitespace as written: preformatted text, form fields, scripts and
# every comment (Outlook's conditional comments included).
_KEEP_AS_WRITTEN = re.compile(
    r"<!--.*?-->|<(pre|textarea|script)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL
)
# A line break with the blanks around it: MJML's indentation.
_INDENTED_BREAK = re.compile(r"[ \t]*\n[ \t\r\n]*")


def collapse_indentation(html: str) -> str:
    """`html` with every line break and the blanks around it turned into one line break.

    MJML indents its output deeply; the indentation is a third of a newsletter, and every
    byte of it is sent to every recipient. A run of whitespace that holds a line break
    renders as one space wherever it is collapsed here, so the page looks the same; line
    breaks stay, so lines stay short for SMTP. Jinja tags, comments, `<pre>`, `<textarea>`
    and `<script>` are left as they are."""
    protected, tags = placeholders.protect(html)
    pieces: list[str] = []
    at = 0
    for kept in _KEEP_AS_WRITTEN.finditer(protected):
        pieces.append(_INDENTED_BREAK.sub("\n", protected[at : kept.start()]))
        pieces.append(kept.group(0))
        at = kept.end()
    pieces.append(_INDENTED_BREAK.sub("\n", protected[at:]))
    return placeholders.restore("".join(pieces), tags)


def _neighbours(html: str) -> list[tuple[str, str]]:
    """For each protected Jinja tag, the elements opened or closed just before and after."""
    found: list[tuple[str, str]] = []
    previous = ""
    waiting = 0  # tags whose following element is still to be read
    for match in _TAG_OR_WORD.finditer(html):
        if match.group("word"):
            found.append((previous, ""))
            waiting += 1
            continue
        previous = match.group("tag").lower()
        for index in range(len(found) - waiting, len(found)):
            found[index] = (found[index][0], previous)
        waiting = 0
    return found


def insert_preheader_slot(html: str) -> str:
    found = _BODY_OPEN.search(html)
    if found is None:
        return _PREHEADER + html
    return html[: found.end()] + _PREHEADER + html[found.end() :]


class RenderProblem(Exception):
    """A message cannot be rendered as asked: a voucher its pool could not give, a content
    block whose filter no longer holds (a segment it names was deleted) …"""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def render(
    compiled: CompiledTemplate,
    variables: dict[str, Any],
    text_functions: Mapping[str, Callable[..., Any]] | None = None,
) -> RenderedEmail:
    """The parts of one email; raises TemplateError (or a sandbox error) on failure.
    `text_functions` are the text versions of `content` and `content_variants`."""
    variables.update(render_budget())
    text_functions = text_functions or {}
    for name in ("content", "content_variants"):
        variables[f"postillon_text_{name}"] = text_functions.get(name, variables.get(name))
    # One context for all four parts: creating one costs about as much as a subject.
    context = compiled.html.new_context(variables)
    subject = " ".join(render_capped(compiled.subject, context).split())
    preheader = (
        " ".join(render_capped(compiled.preheader, context).split()) if compiled.preheader else ""
    )
    context.vars["postillon_preheader"] = preheader
    html = render_capped(compiled.html, context)
    if compiled.inline_css:
        html = inline_css(html)
    text = render_capped(compiled.text, context)
    # Lines that held only Jinja statements leave runs of empty lines behind.
    text = _EMPTY_LINES.sub("\n\n", text).strip() + "\n"
    return RenderedEmail(subject=subject, preheader=preheader, html=html, text=text)


def inline_css(html: str) -> str:
    """Styles moved onto the elements; `@media` rules, which cannot be inlined, stay in a
    `<style>` element."""
    return str(_INLINER.inline(html))


def failure_of(error: Exception) -> RenderFailure:
    """A RenderFailure saying what went wrong without Python internals."""
    if isinstance(error, RenderProblem):
        return RenderFailure(error.reason)
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
    unsubscribe_url: str | None
    preferences_url: str | None


def message_variables(contact: dict[str, Any], data: MessageData) -> dict[str, Any]:
    """The variables of one render: contact, event, message and links."""
    return {
        "contact": contact,
        "event": data.event,
        "message": {"id": str(data.message_id), "sent_at": data.sent_at},
        "unsubscribe_url": data.unsubscribe_url,
        "preferences_url": data.preferences_url,
    }
