"""The recipient's pages in headless Chromium: the unsubscribe link clicked, the
preference page saved."""

from __future__ import annotations

import uuid

from playwright.sync_api import Browser

from postillon.runtime import Runtime
from tests.messages.email_support import (
    create_contact,
    create_template,
    email_consent,
    message_row,
    path_of,
    sent_message,
    topic_statuses,
)


def _message(runtime: Runtime, topic: str | None) -> uuid.UUID:
    with runtime.database.transaction() as session:
        contact_id = create_contact(session, runtime, first_name="<b>Ada</b>")
        template_id = create_template(session, runtime, topic=topic)
        return sent_message(session, runtime, contact_id, template_id)


def test_the_unsubscribe_link_clicked_in_a_browser(
    runtime: Runtime, server_url: str, browser: Browser
) -> None:
    message_id = _message(runtime, "newsletter")
    contact_id = message_row(runtime, message_id).contact_id
    page = browser.new_page()
    try:
        page.goto(server_url + path_of(runtime.links.unsubscribe_url(message_id)))
        assert "Newsletter" in page.content()
        assert topic_statuses(runtime, contact_id) == {}  # opening the page changes nothing
        page.click("#unsubscribe")
        page.wait_for_selector("#done")
        assert "no more Newsletter emails" in page.inner_text("#done")
    finally:
        page.close()
    assert topic_statuses(runtime, contact_id) == {"newsletter": "unsubscribed"}
    assert email_consent(runtime, contact_id) == ("subscribed", "test")
    assert message_row(runtime, message_id).unsubscribed_at is not None


def test_the_preference_page_leaves_only_the_unticked_topic(
    runtime: Runtime, server_url: str, browser: Browser
) -> None:
    message_id = _message(runtime, "newsletter")
    contact_id = message_row(runtime, message_id).contact_id
    page = browser.new_page()
    try:
        page.goto(server_url + path_of(runtime.links.preferences_url(contact_id)))
        assert page.is_checked("input[value=offers]")
        page.uncheck("input[value=offers]")
        page.click("#save")
        page.wait_for_selector("#saved")
        assert not page.is_checked("input[value=offers]")
        assert page.is_checked("input[value=newsletter]")
        assert not page.is_checked("input[name=unsubscribe_all]")
        # Then unsubscribe from everything.
        page.check("input[name=unsubscribe_all]")
        page.click("#save")
        page.wait_for_selector("#saved")
    finally:
        page.close()
    assert topic_statuses(runtime, contact_id) == {"offers": "unsubscribed"}
    assert email_consent(runtime, contact_id) == ("unsubscribed", "preferences")
