"""Saving templates: errors with field and line, MJML with placeholders intact, versions."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from postillon.errors import Conflict, InvalidInput
from postillon.runtime import Runtime
from postillon.templates.schemas import TemplateIn, TemplatePatch
from tests.templates.support import (
    NEWSLETTER_MJML,
    add_contact,
    queue_messages,
    save_template,
)


def _problems(error: pytest.ExceptionInfo[InvalidInput]) -> list[tuple[str, str]]:
    return [(p.location, p.message) for p in error.value.problems]


def test_unknown_variables_and_fields_are_reported_with_field_and_line(
    runtime: Runtime, session: Session
) -> None:
    body = "<p>Hello</p>\n" * 11 + "<p>{{ contct.first_name }}</p>\n<p>{{ contact.frist_name }}</p>"
    with pytest.raises(InvalidInput) as error:
        save_template(session, runtime, format="html", body=body, subject="{{ nope }}")
    assert _problems(error) == [
        ("subject", "line 1: unknown variable 'nope'"),
        ("body", "line 12: unknown variable 'contct'"),
        ("body", "line 13: unknown field 'contact.frist_name'"),
    ]


def test_syntax_errors_are_reported_with_their_line_even_in_mjml(
    runtime: Runtime, session: Session
) -> None:
    body = NEWSLETTER_MJML.replace("{% endfor %}", "{% endfo %}")
    line = NEWSLETTER_MJML[: NEWSLETTER_MJML.index("{% endfor %}")].count("\n") + 1
    with pytest.raises(InvalidInput) as error:
        save_template(session, runtime, body=body, preheader="{{ contact.first_name ")
    [preheader, mjml] = _problems(error)
    assert preheader[0] == "preheader" and preheader[1].startswith("line 1: ")
    assert mjml[0] == "body" and mjml[1].startswith(f"line {line}: ")


def test_names_set_in_the_template_are_known(runtime: Runtime, session: Session) -> None:
    body = (
        "{% set greeting = 'Hi' %}{% for item in event.cart %}{{ item.name }}{% endfor %}"
        "{% macro row(label) %}{{ label }}{% endmacro %}{{ row(greeting) }}"
    )
    save_template(session, runtime, format="html", body=body)


def test_mjml_keeps_placeholders_in_text_attributes_and_statements(
    runtime: Runtime, session: Session
) -> None:
    save_template(session, runtime)
    template = runtime.templates.get(session, "newsletter")
    html = template.compiled_html
    assert 'Hello {{ contact.first_name | default("friend") }},' in html
    assert "{% if contact.score > 10 %}" in html
    assert "{% for item in event.cart %}" in html and "{% endfor %}" in html
    assert 'href="https://shop.example.com/cart?c={{ contact.id }}&x=1"' in html
    assert '<a href="{{ unsubscribe_url }}">' in html


def test_mjml_that_would_drop_a_statement_is_refused_naming_the_line(
    runtime: Runtime, session: Session
) -> None:
    body = NEWSLETTER_MJML.replace("<mj-raw>{% for item in event.cart %}</mj-raw>", "").replace(
        "<mj-section>", "{% for item in event.cart %}<mj-section>"
    )
    with pytest.raises(InvalidInput) as error:
        save_template(session, runtime, body=body)
    [(where, message)] = _problems(error)
    assert where == "body" and "MJML drops '{% for item in event.cart %}'" in message
    assert message.startswith("line 9: ")


def test_a_change_raises_the_version_and_an_unchanged_save_does_not(
    runtime: Runtime, session: Session
) -> None:
    save_template(session, runtime)
    save_template(session, runtime)
    assert runtime.templates.get(session, "newsletter").version == 1
    runtime.templates.update(session, "newsletter", TemplatePatch(subject="New"))
    assert runtime.templates.get(session, "newsletter").version == 2


def test_a_template_messages_were_made_from_cannot_be_deleted(
    runtime: Runtime, session: Session
) -> None:
    template_id = save_template(session, runtime)
    save_template(session, runtime, key="unused")
    queue_messages(session, runtime, template_id, [add_contact(session, runtime)])
    with pytest.raises(Conflict):
        runtime.templates.delete(session, "newsletter")
    runtime.templates.delete(session, "unused")
    assert [t.key for t in runtime.templates.list_templates(session)] == ["newsletter"]


def test_functions_must_name_existing_blocks_and_pools(runtime: Runtime, session: Session) -> None:
    body = '{{ content("nowhere") }}\n{% set v = voucher("spring") %}\n{{ voucher(event.pool) }}'
    with pytest.raises(InvalidInput) as error:
        save_template(session, runtime, format="html", body=body)
    assert _problems(error) == [
        ("body", "line 1: content(): there is no content block 'nowhere'"),
        ("body", "line 2: voucher(): there is no voucher pool 'spring'"),
        ("body", "line 3: voucher() takes a key written as a string"),
    ]


def test_loading_templates_blocks_and_non_mjml_bodies_are_refused(
    runtime: Runtime, session: Session
) -> None:
    with pytest.raises(InvalidInput) as error:
        save_template(
            session, runtime, format="html", body="{% include 'x' %}\n{% block a %}{% endblock %}"
        )
    assert _problems(error) == [
        ("body", "line 1: templates cannot load other templates"),
        ("body", "line 2: blocks are not supported"),
    ]
    with pytest.raises(InvalidInput) as error:
        save_template(session, runtime, body="<p>Hello</p>")
    assert _problems(error) == [("body", "is not MJML: it must be an <mjml> document")]


def test_sender_and_reply_addresses_are_checked_when_saved(
    runtime: Runtime, session: Session
) -> None:
    def template(key: str, from_address: str, reply_to: str) -> TemplateIn:
        return TemplateIn(
            key=key, format="html", subject="Hi", body="<p>Hi</p>",
            from_address=from_address, reply_to=reply_to,
        )  # fmt: skip

    runtime.templates.save(
        session, template("senders", '"Müller, Hans" <hans@example.de>', "help@example.com")
    )
    with pytest.raises(InvalidInput) as refused:
        runtime.templates.save(
            session, template("bad", "a@example.com, b@example.com", "x\r\nBcc: y@example.com")
        )
    not_one = "'a@example.com, b@example.com' is not one address like 'Shop <shop@example.com>'"
    assert set(_problems(refused)) == {("from_address", not_one), ("reply_to", "must be one line")}
