"""The seed scenarios (issue 6, item 7), each run by `Simulation` — the mechanism of
`postillon simulate` — on the virtual clock, with the mails received by a real SMTP
server on loopback: who got which mail, and when (the clock's time when the send task
ran, which the mail carries as its Date)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from postillon.automations.simulation import PlannedEvent
from postillon.clock import VirtualClock
from postillon.models import VoucherCode
from postillon.runtime import Runtime
from postillon.scoring.schemas import ScoreModelPatch, ScoringRuleIn
from postillon.settings import Settings
from postillon.vouchers.schemas import VoucherPoolIn
from tests.automations.scenario_support import Scenario, mails_to, received
from tests.support.smtp import SmtpSink


@pytest.fixture
def settings(settings: Settings, sink: SmtpSink) -> Settings:
    return settings.model_copy(
        update={
            "smtp_port": sink.port,
            "smtp_rate_per_second": 1000.0,
            "public_url": "https://mail.example.com",
        }
    )


@pytest.fixture
def scenario(runtime: Runtime, clock: VirtualClock, sink: SmtpSink) -> Scenario:
    return Scenario(runtime, clock)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


# --- 1. the abandoned cart ---

CART = """\
kind: journey
key: abandoned-cart
name: Abandoned cart
trigger: {event: cart_abandoned}
entry: {policy: unlimited, key: cart_id}
goal: {event: order_completed}
steps:
  - {id: wait-1h, wait: 1h}
  - {id: reminder, send: cart-reminder}
  - id: bought
    wait_for: {event: order_completed, timeout: 23h}
    on_event: done
  - {id: second, send: cart-voucher}
  - {id: done, exit: {}}
"""


def test_the_abandoned_cart_reminds_after_an_hour_and_gives_a_voucher_after_a_day(
    scenario: Scenario, runtime: Runtime, sink: SmtpSink
) -> None:
    """cart_abandoned → 1 h → a reminder; a purchase within the hour: no mail, a
    conversion; no purchase within 24 h: a second reminder with a code of a voucher
    pool. (`journeys/test_scenario_cart.py` drives the same journey by hand, round by
    round; this is the simulation's run, with the voucher.)"""
    with runtime.database.transaction() as session:
        runtime.vouchers.create_pool(session, VoucherPoolIn(key="cart-10", kind="imported"))
        runtime.vouchers.import_codes(session, "cart-10", ["CART-7K2Q", "CART-9XPL", "CART-4RTM"])
    scenario.template("cart-reminder", "Your cart {{ event.cart_id }} is waiting")
    scenario.template(
        "cart-voucher",
        "10% off your cart {{ event.cart_id }}",
        '{% set v = voucher("cart-10") %}<p>Your code: <b>{{ v.code }}</b></p>',
    )
    scenario.publish(CART)
    buyer = scenario.contact("buyer@example.com")
    browser = scenario.contact("browser@example.com")
    late = scenario.contact("late@example.com")
    t0 = scenario.start
    scenario.run_until(
        t0 + hours(30),
        [
            PlannedEvent(t0, "cart_abandoned", {"cart_id": "c-1"}, contact_id=buyer),
            PlannedEvent(t0, "cart_abandoned", {"cart_id": "c-2"}, contact_id=browser),
            PlannedEvent(t0, "cart_abandoned", {"cart_id": "c-3"}, contact_id=late),
            # The same cart reported again starts nothing new.
            PlannedEvent(t0 + hours(0.2), "cart_abandoned", {"cart_id": "c-2"}, contact_id=browser),
            PlannedEvent(t0 + hours(0.5), "order_completed", {"total": 80}, contact_id=buyer),
            PlannedEvent(t0 + hours(5), "order_completed", {"total": 120}, contact_id=late),
        ],
    )

    assert mails_to(sink, "buyer@example.com") == []
    assert mails_to(sink, "late@example.com") == [("Your cart c-3 is waiting", t0 + hours(1))]
    assert mails_to(sink, "browser@example.com") == [
        ("Your cart c-2 is waiting", t0 + hours(1)),
        ("10% off your cart c-2", t0 + hours(24)),
    ]
    with runtime.database.transaction(read_only=True) as session:
        codes = dict(
            session.execute(
                select(VoucherCode.contact_id, VoucherCode.code).where(
                    VoucherCode.contact_id.is_not(None)
                )
            ).all()
        )
    assert list(codes) == [browser]  # a voucher only for who got the second mail
    [voucher_mail] = [m for m in received(sink) if m.subject.startswith("10%")]
    assert f"Your code: <b>{codes[browser]}</b>" in voucher_mail.html

    assert [(r.state, r.end_reason) for r in scenario.runs("abandoned-cart", buyer)] == [
        ("converted", f"reached the goal: order_completed at {(t0 + hours(0.5)).isoformat()}")
    ]
    assert [r.state for r in scenario.runs("abandoned-cart", late)] == ["converted"]
    assert [r.state for r in scenario.runs("abandoned-cart", browser)] == ["completed"]
    buyer_history = scenario.history("abandoned-cart", buyer)
    assert [outcome for _, outcome, _ in buyer_history] == ["entered", "waited", "converted"]


# --- 2. the signup drip ---

DRIP = """\
kind: journey
key: signup-drip
name: Signup drip
trigger: {contact_created: true}
entry: {policy: once}
steps:
  - {id: welcome, send: welcome}
  - id: opened-welcome
    wait_for: {event: email_opened, message_step: welcome, timeout: 3d}
    on_event: tips
    on_timeout: resend
  - {id: resend, send: welcome-again, next: quiet}
  - {id: tips, send: tips}
  - id: quiet
    wait_for: {event: order_completed, timeout: 8w}
    on_event: to-customers
    on_timeout: miss-you
  - {id: miss-you, send: we-miss-you, next: done}
  - {id: to-customers, move_to: customers}
  - {id: done, exit: {}}
"""

CUSTOMERS = """\
kind: journey
key: customers
name: New customers
trigger: {tag_added: customer}
entry: {policy: once}
steps:
  - {id: thanks, send: customer-thanks}
  - {id: a-week, wait: 7d}
  - {id: review, send: review-request}
"""


def test_the_signup_drip_follows_opens_and_purchases(scenario: Scenario, sink: SmtpSink) -> None:
    """Welcome at once; the welcome opened within 3 days: tips, else the welcome again
    with another subject; then 8 weeks without a purchase: "we miss you"; a purchase
    moves the contact to the customers journey. Ann opens and buys, Bob does neither."""
    for key, subject in [
        ("welcome", "Welcome, {{ contact.first_name }}"),
        ("welcome-again", "{{ contact.first_name }}, did you see our welcome?"),
        ("tips", "Three tips for a good start"),
        ("we-miss-you", "We miss you, {{ contact.first_name }}"),
        ("customer-thanks", "Thank you for your first order"),
        ("review-request", "How do you like it?"),
    ]:
        scenario.template(key, subject)
    scenario.publish(DRIP, CUSTOMERS)
    t0 = scenario.start
    ann = scenario.contact("ann@example.com", first_name="Ann")
    scenario.contact("bob@example.com", first_name="Bob")
    opened, bought = t0 + timedelta(days=1, hours=2), t0 + timedelta(days=10)
    scenario.run_until(
        t0 + timedelta(days=70),
        [
            PlannedEvent(opened, "email_opened", message_step="welcome", contact_id=ann),
            PlannedEvent(bought, "order_completed", {"total": 59}, contact_id=ann),
        ],
    )

    assert mails_to(sink, "ann@example.com") == [
        ("Welcome, Ann", t0),
        ("Three tips for a good start", opened),
        ("Thank you for your first order", bought),
        ("How do you like it?", bought + timedelta(days=7)),
    ]
    assert mails_to(sink, "bob@example.com") == [
        ("Welcome, Bob", t0),
        ("Bob, did you see our welcome?", t0 + timedelta(days=3)),
        ("We miss you, Bob", t0 + timedelta(days=3, weeks=8)),
    ]
    [drip] = scenario.runs("signup-drip", ann)
    assert (drip.state, drip.end_reason) == ("moved", "moved to customers")
    [customer] = scenario.runs("customers", ann)
    assert (customer.source, customer.state) == ("move:signup-drip", "completed")
    steps = [(step, outcome) for step, outcome, _ in scenario.history("signup-drip", ann)]
    assert steps == [
        ("welcome", "entered"),
        ("welcome", "sent"),
        ("opened-welcome", "waited"),
        ("opened-welcome", "resumed"),
        ("tips", "sent"),
        ("quiet", "waited"),
        ("quiet", "resumed"),
        ("to-customers", "moved"),
    ]


# --- 3. birthdays ---

BIRTHDAY = """\
kind: journey
key: birthday
name: Birthday
trigger: {date: {attribute: birthday, at: "09:00"}}
timezone: Europe/Berlin
steps:
  - {id: greet, send: birthday-mail}
"""


def test_birthday_mails_arrive_at_nine_local_time_once_a_year(
    runtime: Runtime, clock: VirtualClock, sink: SmtpSink
) -> None:
    """Two years on the clock: a contact in Berlin and one in New York each get one
    mail a year, at 09:00 on their birthday where they live (Ned's in summer time).
    No periodic job matters here, so the clock need not stop every day for them."""
    scenario = Scenario(runtime, clock, wake_every=timedelta(days=30))
    scenario.template("birthday-mail", "Happy birthday, {{ contact.first_name }}!")
    scenario.publish(BIRTHDAY)
    zones = {"ada@example.com": "Europe/Berlin", "ned@example.com": "America/New_York"}
    scenario.contact(
        "ada@example.com", first_name="Ada", timezone="Europe/Berlin",
        attributes={"birthday": "1990-03-15"},
    )  # fmt: skip
    scenario.contact(
        "ned@example.com", first_name="Ned", timezone="America/New_York",
        attributes={"birthday": "1985-07-01"},
    )  # fmt: skip
    scenario.run_until(scenario.start + timedelta(days=2 * 365))

    local = [(m.to, m.subject, m.local(zones[m.to]).isoformat()) for m in received(sink)]
    assert local == [
        ("ada@example.com", "Happy birthday, Ada!", "2026-03-15T09:00:00+01:00"),
        ("ned@example.com", "Happy birthday, Ned!", "2026-07-01T09:00:00-04:00"),
        ("ada@example.com", "Happy birthday, Ada!", "2027-03-15T09:00:00+01:00"),
        ("ned@example.com", "Happy birthday, Ned!", "2027-07-01T09:00:00-04:00"),
    ]


# --- 4. a lead reaching 50 points ---

MQL = """\
kind: rule
key: lead-to-mql
name: Lead reached 50 points
trigger: {score_reached: 50}
once_per_contact: true
actions:
  - {stage: mql}
  - notify: {subject: "A lead is marketing-qualified", fallback: sales@shop.example.com}
"""


def test_a_lead_reaching_50_points_is_notified_to_its_owner_once_and_becomes_an_mql(
    scenario: Scenario, runtime: Runtime, sink: SmtpSink
) -> None:
    """Points come from scoring rules on what the lead does; the rule notifies the owner
    when the score first passes 50 and makes the lead an MQL; passing 50 again (after a
    drop) notifies nobody. (`test_notify.py` checks the notification's content.)"""
    with runtime.database.transaction() as session:
        runtime.scoring.update_model(session, "main", ScoreModelPatch(thresholds=[50]))
        for name, event, points in [("views", "page_viewed", 20), ("ticket", "complaint", -40)]:
            runtime.scoring.create_rule(
                session, ScoringRuleIn(name=name, event=event, points=points)
            )
        runtime.users.create(session, email="olga@shop.example.com", name="Olga", password=None)
    scenario.publish(MQL)
    t0 = scenario.start
    ann = scenario.contact(
        "ann@example.com", first_name="Ann", owner="olga@shop.example.com",
        lifecycle_stage="lead",
    )  # fmt: skip
    views = [t0 + hours(n) for n in (1, 2, 3, 26, 50, 51)]
    scenario.run_until(
        t0 + timedelta(days=4),
        [
            *(PlannedEvent(moment, "page_viewed", contact_id=ann) for moment in views),
            PlannedEvent(t0 + hours(25), "complaint", contact_id=ann),  # 60 → 20
        ],
    )

    # 20, 40, 60 (past 50: notified), 20, 40, 60, 80 (past 50 again: nobody).
    assert [(m.to, m.subject, m.at) for m in received(sink)] == [
        ("olga@shop.example.com", "A lead is marketing-qualified", views[2])
    ]
    with runtime.database.transaction(read_only=True) as session:
        contact = runtime.contacts.get(session, ann)
    assert (contact.lifecycle_stage, contact.score) == ("mql", 80)
    fired, again = scenario.history("lead-to-mql", ann)
    assert fired[1] == "fired" and fired[2].endswith(
        "2 of 2 actions done — stage: stage lead → mql; notify: notified olga@shop.example.com"
    )
    assert again[1:] == ("skipped", "once per contact: fired before, at 2026-01-05 12:00 UTC")


# --- 5. two journeys under a cap of one marketing email a day ---

BROWSE = """\
kind: journey
key: browse-abandon
name: Browsed, did not buy
trigger: {event: product_viewed}
entry: {policy: once}
on_cap: wait
quiet_hours: {start: "21:00", end: "08:00", action: hold}
steps:
  - {id: seen, send: browse-1}
  - {id: wait, wait: 2h}
  - {id: still, send: browse-2}
"""

CART_SKIP = """\
kind: journey
key: cart-nudge
name: Cart nudge
trigger: {event: cart_abandoned}
entry: {policy: once}
on_cap: skip
steps:
  - {id: nudge, send: cart-1}
  - {id: wait, wait: 2d}
  - {id: again, send: cart-2}
"""


def test_two_journeys_under_a_cap_of_one_email_a_day_send_one_a_day(
    scenario: Scenario, sink: SmtpSink
) -> None:
    """A burst of activity starts two journeys; with at most one marketing email a
    local day, the first mail goes, the browse journey (on_cap: wait) holds its second
    mail until the next day (and its quiet hours' end), the cart journey (on_cap:
    skip) skips its nudge and sends its second mail on a day with room."""
    zone = "Europe/Berlin"
    for key in ("browse-1", "browse-2", "cart-1", "cart-2"):
        scenario.template(key, key)
    scenario.cap("email", per_day=1, per_week=None)
    scenario.publish(BROWSE, CART_SKIP)
    t0 = scenario.start  # Monday 10:00 in Berlin
    ann = scenario.contact("ann@example.com", timezone=zone)
    scenario.run_until(
        t0 + timedelta(days=4),
        [
            PlannedEvent(t0, "page_viewed", contact_id=ann),
            PlannedEvent(t0 + timedelta(minutes=1), "product_viewed", contact_id=ann),
            PlannedEvent(t0 + timedelta(minutes=2), "cart_abandoned", contact_id=ann),
        ],
    )

    mails = received(sink)
    assert [(m.subject, m.local(zone).strftime("%a %H:%M")) for m in mails] == [
        ("browse-1", "Mon 10:01"),
        ("browse-2", "Tue 08:00"),  # held past midnight, then past the quiet hours
        ("cart-2", "Wed 10:02"),
    ]
    assert len({m.local_day(zone) for m in mails}) == len(mails)  # one a local day
    cap = "1 marketing email today (cap 1 per day)"
    browse = scenario.history("browse-abandon", ann)
    assert ("still", "held", f"held until 2026-01-06T07:00:00+00:00: {cap}, then quiet hours "
            "21:00\u201308:00 Europe/Berlin") in browse  # fmt: skip
    assert [(step, outcome) for step, outcome, _ in browse][-2:] == [
        ("still", "sent"), ("still", "completed"),
    ]  # fmt: skip
    cart = scenario.history("cart-nudge", ann)
    assert ("nudge", "skipped", f"not sent: {cap}") in cart
    assert ("again", "sent") in [(step, outcome) for step, outcome, _ in cart]


# --- 6. an exclusive journey queued behind another ---


def exclusive(key: str, trigger: str, priority: int, *waits: str) -> str:
    """A journey of two mails, `waits[0]` apart, and then any further waits."""
    steps = [f"{{id: first, send: {key}-1}}", f"{{id: wait, wait: {waits[0]}}}"]
    steps.append(f"{{id: second, send: {key}-2}}")
    steps += [f"{{id: wait-{n}, wait: {wait}}}" for n, wait in enumerate(waits[1:], 1)]
    return f"""\
kind: journey
key: {key}
name: {key}
trigger: {{event: {trigger}}}
entry: {{policy: once}}
exclusive: {{priority: {priority}, on_busy: queue}}
steps:
""" + "".join(f"  - {step}\n" for step in steps)


def test_an_exclusive_journey_waits_for_the_one_in_progress_to_end(
    scenario: Scenario, sink: SmtpSink
) -> None:
    """Ann is onboarding (exclusive) when she downloads the whitepaper: the nurture
    journey (exclusive too) queues and starts when onboarding ends, a day after its
    last mail; its mails come after onboarding's. Bob, in no exclusive journey, starts
    nurture at once."""
    for key in ("onboarding-1", "onboarding-2", "nurture-1", "nurture-2"):
        scenario.template(key, key)
    scenario.publish(
        exclusive("onboarding", "signed_up", 10, "2d", "1d"),
        exclusive("nurture", "whitepaper_downloaded", 1, "1d"),
    )
    t0 = scenario.start
    ann = scenario.contact("ann@example.com")
    bob = scenario.contact("bob@example.com")
    downloaded = t0 + hours(5)
    scenario.run_until(
        t0 + timedelta(days=7),
        [
            PlannedEvent(t0, "signed_up", contact_id=ann),
            PlannedEvent(downloaded, "whitepaper_downloaded", contact_id=ann),
            PlannedEvent(downloaded, "whitepaper_downloaded", contact_id=bob),
        ],
    )

    ended = t0 + timedelta(days=3)  # onboarding's last wait is over
    assert mails_to(sink, "ann@example.com") == [
        ("onboarding-1", t0),
        ("onboarding-2", t0 + timedelta(days=2)),
        ("nurture-1", ended),
        ("nurture-2", ended + timedelta(days=1)),
    ]
    assert mails_to(sink, "bob@example.com") == [
        ("nurture-1", downloaded),
        ("nurture-2", downloaded + timedelta(days=1)),
    ]
    [queued] = scenario.runs("nurture", ann)
    assert (queued.entered_at, queued.state) == (downloaded, "completed")
    assert scenario.history("nurture", ann)[:2] == [
        ("first", "queued", "waits until the contact's exclusive journey onboarding ends"),
        ("first", "entered", "started: the contact's exclusive journey before it ended"),
    ]
    [onboarding] = scenario.runs("onboarding", ann)
    assert (onboarding.state, onboarding.ended_at) == ("completed", ended)
