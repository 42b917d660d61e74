"""Rendering messages: contact fields, defaults, the event's cart, conditions, escaping."""

from __future__ import annotations

from sqlalchemy.orm import Session

from postillon.runtime import Runtime
from postillon.templates.rendering import RenderedEmail, collapse_indentation
from tests.templates.support import add_contact, queue_messages, save_template


def test_a_newsletter_renders_contact_fields_defaults_loops_and_conditions(
    runtime: Runtime, session: Session
) -> None:
    template_id = save_template(session, runtime)
    ada = add_contact(session, runtime, score=20)
    nameless = add_contact(session, runtime, email="x@example.com", first_name=None)
    cart = {"cart": [{"name": "Teapot", "price": 30}, {"name": "Cup", "price": 8}]}
    messages = queue_messages(session, runtime, template_id, [ada, nameless], context=cart)

    results = runtime.templates.render_messages(session, messages)

    by_contact = {m.contact_id: results[m.id] for m in messages}
    first, second = by_contact[ada], by_contact[nameless]
    assert isinstance(first, RenderedEmail) and isinstance(second, RenderedEmail)
    assert first.subject == "Hi Ada"
    assert second.subject == "Hi there"
    assert "Hello Ada," in first.html and "Hello friend," in second.html
    assert "Thanks for being a regular." in first.html
    assert "regular" not in second.html
    assert "Teapot: 30 EUR" in first.html and "Cup: 8 EUR" in first.html
    assert f"https://shop.example.com/cart?c={ada}&amp;x=1" in first.html
    message = next(m for m in messages if m.contact_id == ada)
    assert runtime.links.unsubscribe_url(message.id) in first.html
    # The preheader is the hidden first element of the body.
    assert first.preheader == "Your cart, Ada"
    assert first.html.index("Your cart, Ada") < first.html.index("Hello Ada")
    # CSS inlined, media queries kept.
    assert "color: #333333" in first.html or "color:#333333" in first.html
    assert "@media (max-width: 480px)" in first.html
    # The text part: readable, links as text (url).
    assert "Hello Ada," in first.text and "Teapot: 30 EUR" in first.text
    assert f"Back to the cart (https://shop.example.com/cart?c={ada}&x=1)" in first.text
    assert "<" not in first.text


def test_contact_fields_with_html_are_escaped_in_html_but_not_in_text(
    runtime: Runtime, session: Session
) -> None:
    template_id = save_template(
        session, runtime, format="html", subject="{{ contact.first_name }}",
        body="<p>Hi {{ contact.first_name }}</p>", preheader=None,
    )  # fmt: skip
    contact = add_contact(session, runtime, first_name="<script>alert(1)</script>")
    [message] = queue_messages(session, runtime, template_id, [contact])

    rendered = runtime.templates.render_messages(session, [message])[message.id]

    assert isinstance(rendered, RenderedEmail)
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert rendered.subject == "<script>alert(1)</script>"


def test_event_items_means_the_events_items_and_undefined_paths_render_empty(
    runtime: Runtime, session: Session
) -> None:
    body = (
        "{% for item in event.items %}[{{ item.name }}]{% endfor %}"
        "<p>{{ event.missing.deeper }}|{{ contact.attributes.nope.x | default('none') }}</p>"
    )
    template_id = save_template(session, runtime, format="html", body=body, preheader=None)
    contact = add_contact(session, runtime)
    context = {"items": [{"name": "Teapot"}, {"name": "Cup"}]}
    [message] = queue_messages(session, runtime, template_id, [contact], context=context)

    rendered = runtime.templates.render_messages(session, [message])[message.id]

    assert isinstance(rendered, RenderedEmail)
    assert "[Teapot][Cup]<p>|none</p>" in rendered.html


def test_css_is_inlined_without_splitting_a_loop_from_the_rows_it_repeats(
    runtime: Runtime, session: Session
) -> None:
    body = (
        "<html><head><style>td { color: red } @media (max-width: 400px) { td { color: blue } }"
        "</style></head><body><table>{% for item in event.items %}<tr><td>{{ item }}</td></tr>"
        "{% endfor %}</table></body></html>"
    )
    template_id = save_template(session, runtime, format="html", body=body, preheader=None)
    [message] = queue_messages(
        session, runtime, template_id, [add_contact(session, runtime)], context={"items": [1, 2]}
    )

    rendered = runtime.templates.render_messages(session, [message])[message.id]

    assert isinstance(rendered, RenderedEmail)
    assert rendered.html.count("<tbody>") == 1
    assert rendered.html.count('<td style="color: red;">') == 2
    assert "@media (max-width: 400px)" in rendered.html


def test_indentation_is_collapsed_except_where_whitespace_is_content() -> None:
    html = (
        "<div>\n    <p>Hello   {{ contact.first_name }},</p>  \n\n      <p>{% if x %}\n"
        "        a{{ 'b\n   c' }}{% endif %}</p>\n"
        "<!--[if mso]>\n    <table>\n      <tr>\n<![endif]-->\n"
        "  <pre>\n  keep\n    this</pre>\n   <TEXTAREA>\n  as\n   is</TEXTAREA>\n</div>"
    )
    assert collapse_indentation(html) == (
        "<div>\n<p>Hello   {{ contact.first_name }},</p>\n<p>{% if x %}\n"
        "a{{ 'b\n   c' }}{% endif %}</p>\n"
        "<!--[if mso]>\n    <table>\n      <tr>\n<![endif]-->\n"
        "<pre>\n  keep\n    this</pre>\n<TEXTAREA>\n  as\n   is</TEXTAREA>\n</div>"
    )
