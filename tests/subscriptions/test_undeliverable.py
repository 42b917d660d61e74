"""The send check: suppressed addresses (every kind), no consent and left topics
(marketing) — for a whole batch at once."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from postillon.models import Message
from postillon.privacy import repository as privacy_repository
from postillon.privacy.suppression import address_digest
from postillon.runtime import Runtime
from postillon.subscriptions.service import Undeliverable
from tests.conftest import TEST_SECRET
from tests.messages.email_support import create_contact, create_template, sent_message


def test_who_may_be_mailed(runtime: Runtime, session: Session) -> None:
    newsletter = create_template(session, runtime, key="news", topic="newsletter")
    no_topic = create_template(session, runtime, key="promo", topic=None)
    receipt = create_template(session, runtime, key="receipt", kind="transactional", topic=None)
    ok = create_contact(session, runtime, email="ok@example.com")
    left = create_contact(session, runtime, email="left@example.com")
    unsubscribed = create_contact(session, runtime, email="out@example.com", consent="unsubscribed")
    never = create_contact(session, runtime, email="never@example.com", consent=None)
    pending = create_contact(session, runtime, email="pending@example.com", consent="pending")
    bounced = create_contact(session, runtime, email="gone@example.com")
    runtime.subscriptions.save_preferences(
        session, left, subscribed_topics=["offers", "product-news"], unsubscribe_all=False
    )
    privacy_repository.suppress(
        session,
        digest=address_digest(TEST_SECRET, "email", "gone@example.com"),
        channel="email",
        reason="bounced",
        now=runtime.clock.now(),
    )
    ids = {
        "ok news": sent_message(session, runtime, ok, newsletter),
        "ok promo": sent_message(session, runtime, ok, no_topic),
        "left news": sent_message(session, runtime, left, newsletter),
        "left promo": sent_message(session, runtime, left, no_topic),
        "out news": sent_message(session, runtime, unsubscribed, newsletter),
        "out receipt": sent_message(session, runtime, unsubscribed, receipt),
        "never news": sent_message(session, runtime, never, newsletter),
        "pending news": sent_message(session, runtime, pending, newsletter),
        "pending receipt": sent_message(session, runtime, pending, receipt),
        "gone news": sent_message(session, runtime, bounced, newsletter),
        "gone receipt": sent_message(session, runtime, bounced, receipt),
    }
    messages = list(session.scalars(select(Message)))
    refused = runtime.subscriptions.undeliverable(session, messages)
    by_name = {name: refused.get(message_id) for name, message_id in ids.items()}
    assert by_name == {
        "ok news": None,
        "ok promo": None,
        "left news": Undeliverable.topic_left,
        "left promo": None,
        "out news": Undeliverable.no_consent,
        "out receipt": None,
        "never news": Undeliverable.no_consent,
        "pending news": Undeliverable.no_consent,
        "pending receipt": None,
        "gone news": Undeliverable.suppressed,
        "gone receipt": Undeliverable.suppressed,
    }
