"""Conditional content by filter and priority; vouchers assigned once, images served."""

from __future__ import annotations

import io
import threading
import uuid

import httpx
import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from postillon.errors import InvalidInput
from postillon.messages.links import LinkKind
from postillon.models import Message, VoucherCode
from postillon.runtime import Runtime
from postillon.templates.rendering import RenderedEmail, RenderFailure
from postillon.templates.schemas import ContentBlockIn
from postillon.vouchers.schemas import VoucherPoolIn
from tests.templates.support import add_contact, queue_messages, save_template

OFFERS = {
    "key": "summer-offers",
    "variants": [
        {"key": "vip", "priority": 10, "content": "<b>VIP {{ contact.first_name }}</b>",
         "filter": {"field": "score", "op": ">=", "value": 50}},
        {"key": "paris", "priority": 5, "content": "<i>Paris</i>",
         "filter": {"attribute": "city", "op": "=", "value": "Paris"}},
        {"key": "everyone", "priority": 0, "content": "Ten percent off", "filter": None},
    ],
}  # fmt: skip


def _render(
    session: Session, runtime: Runtime, template_id: uuid.UUID, contacts: list[uuid.UUID]
) -> dict[uuid.UUID, RenderedEmail | RenderFailure]:
    messages = queue_messages(session, runtime, template_id, contacts, key=str(uuid.uuid4()))
    results = runtime.templates.render_messages(session, messages)
    return {m.contact_id: results[m.id] for m in messages}


def test_content_blocks_pick_variants_by_filter_and_priority(
    runtime: Runtime, session: Session
) -> None:
    runtime.templates.blocks.save(session, ContentBlockIn.model_validate(OFFERS))
    body = (
        '<p>{{ content("summer-offers") }}</p><ul>{% for offer in '
        'content_variants("summer-offers", top=2) %}<li>{{ offer.key }}</li>{% endfor %}</ul>'
    )
    template_id = save_template(session, runtime, format="html", body=body)
    vip = add_contact(session, runtime, email="vip@example.com", score=80,
                      attributes={"city": "Paris"})  # fmt: skip
    parisian = add_contact(session, runtime, email="p@example.com", attributes={"city": "Paris"})
    other = add_contact(session, runtime, email="o@example.com", attributes={"city": "Lyon"})

    results = _render(session, runtime, template_id, [vip, parisian, other])

    html = {contact: r.html for contact, r in results.items() if isinstance(r, RenderedEmail)}
    assert "<b>VIP Ada</b>" in html[vip] and "<li>vip</li><li>paris</li>" in html[vip]
    assert "<p><i>Paris</i></p>" in html[parisian]
    assert "<li>paris</li><li>everyone</li>" in html[parisian]
    assert "<p>Ten percent off</p>" in html[other] and "<li>everyone</li></ul>" in html[other]
    text = results[vip]
    assert isinstance(text, RenderedEmail) and "VIP Ada" in text.text and "<b>" not in text.text


def test_a_variant_filter_with_an_error_is_refused_with_its_path(
    runtime: Runtime, session: Session
) -> None:
    bad = {"key": "b", "variants": [
        {"key": "x", "content": "ok", "filter": {"field": "score", "op": "nope", "value": 1}},
        {"key": "y", "content": "{{ contct }}"},
    ]}  # fmt: skip
    with pytest.raises(InvalidInput) as error:
        runtime.templates.blocks.save(session, ContentBlockIn.model_validate(bad))
    locations = [p.location for p in error.value.problems]
    assert locations[0].startswith("variants[0].filter")
    assert ("variants[1].content", "line 1: unknown variable 'contct'") in [
        (p.location, p.message) for p in error.value.problems
    ]


def _pool(session: Session, runtime: Runtime, **fields: object) -> None:
    data = {"key": "spring", "kind": "imported", **fields}
    runtime.vouchers.create_pool(session, VoucherPoolIn.model_validate(data))


def test_a_voucher_is_assigned_once_per_contact_and_kept_across_renders(
    runtime: Runtime, session: Session
) -> None:
    _pool(session, runtime)
    runtime.vouchers.import_codes(session, "spring", ["A-1", "A-2", "A-3"])
    body = '{% set v = voucher("spring") %}<p>{{ v.code }}</p><img src="{{ v.image_url }}">'
    template_id = save_template(session, runtime, format="html", body=body)
    ada = add_contact(session, runtime)
    bob = add_contact(session, runtime, email="bob@example.com")

    first = _render(session, runtime, template_id, [ada, bob])
    again = _render(session, runtime, template_id, [ada])

    codes = {c: r.html.split("<p>")[1].split("</p>")[0] for c, r in first.items()
             if isinstance(r, RenderedEmail)}  # fmt: skip
    assert len(set(codes.values())) == 2 and set(codes.values()) <= {"A-1", "A-2", "A-3"}
    assert isinstance(again[ada], RenderedEmail) and f"<p>{codes[ada]}</p>" in again[ada].html
    stored = session.execute(select(VoucherCode.contact_id, VoucherCode.code)).all()
    assert sorted((c, code) for c, code in stored if c) == sorted(codes.items())
    assert runtime.vouchers.get_pool(session, "spring").free == 1


def test_an_exhausted_pool_fails_the_message_naming_the_pool(
    runtime: Runtime, session: Session
) -> None:
    _pool(session, runtime)
    runtime.vouchers.import_codes(session, "spring", ["ONLY-ONE"])
    template_id = save_template(
        session, runtime, format="html", body='{{ voucher("spring").code }}'
    )
    contacts = [add_contact(session, runtime, email=f"c{i}@example.com") for i in range(2)]
    results = _render(session, runtime, template_id, contacts)
    failures = [r for r in results.values() if isinstance(r, RenderFailure)]
    assert [f.reason for f in failures] == ["voucher pool 'spring' has no free code left"]


def test_imported_ean_codes_are_checked_and_errors_name_their_index(
    runtime: Runtime, session: Session
) -> None:
    _pool(session, runtime, barcode="ean13")
    with pytest.raises(InvalidInput) as error:
        runtime.vouchers.import_codes(session, "spring", ["4006381333931", "4006381333932", ""])
    assert [p.location for p in error.value.problems] == ["codes[1]", "codes[2]"]
    added = runtime.vouchers.generate_codes(session, "spring", 50)
    assert added.added == 50 and added.pool.free == 50


def test_voucher_images_are_png_and_tampered_links_404(runtime: Runtime, server_url: str) -> None:
    codes = (("qr", "SPRING-1"), ("ean13", "4006381333931"), ("code128", "AB-12"))
    with httpx.Client(timeout=30) as client:
        for barcode, code in codes:
            token = runtime.links.token(LinkKind.voucher, [barcode, code])
            answer = client.get(f"{server_url}/e/v/{token}.png")
            assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
            image = Image.open(io.BytesIO(answer.content))
            image.load()
            assert image.format == "PNG" and image.size[0] > 50
            tampered = token[:-3] + ("abc" if not token.endswith("abc") else "xyz")
            assert client.get(f"{server_url}/e/v/{tampered}.png").status_code == 404
        forged = runtime.links.token(LinkKind.click, ["qr", "X"])
        assert client.get(f"{server_url}/e/v/{forged}.png").status_code == 404


def test_concurrent_renders_hand_each_contact_one_code(runtime: Runtime) -> None:
    with runtime.database.transaction() as session:
        _pool(session, runtime)
        runtime.vouchers.import_codes(session, "spring", [f"C-{n}" for n in range(10)])
        body = '<p>{{ voucher("spring").code }}</p>'
        template_id = save_template(session, runtime, format="html", body=body)
        contacts = [add_contact(session, runtime, email=f"c{n}@example.com") for n in range(6)]
        batches = [
            [m.id for m in queue_messages(session, runtime, template_id, contacts, key=key)]
            for key in ("first", "second")
        ]
    start = threading.Barrier(2)
    codes: list[dict[uuid.UUID, str]] = []

    def render(message_ids: list[uuid.UUID]) -> None:
        start.wait(timeout=30)
        with runtime.database.transaction() as session:
            messages = list(session.scalars(select(Message).where(Message.id.in_(message_ids))))
            results = runtime.templates.render_messages(session, messages)
            codes.append({m.contact_id: _code(results[m.id]) for m in messages})

    threads = [threading.Thread(target=render, args=(ids,)) for ids in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(codes) == 2 and codes[0] == codes[1]
    assert len(set(codes[0].values())) == 6
    with runtime.database.transaction(read_only=True) as session:
        assert runtime.vouchers.get_pool(session, "spring").free == 4


def _code(result: RenderedEmail | RenderFailure) -> str:
    assert isinstance(result, RenderedEmail), result
    return result.html.split("<p>")[1].split("</p>")[0]


def test_the_database_refuses_a_second_code_for_a_contact_in_a_pool(
    runtime: Runtime, session: Session
) -> None:
    _pool(session, runtime)
    runtime.vouchers.import_codes(session, "spring", ["A", "B"])
    contact = add_contact(session, runtime)
    now = runtime.clock.now()
    codes = session.scalars(select(VoucherCode).order_by(VoucherCode.code)).all()
    codes[0].contact_id, codes[0].assigned_at = contact, now
    session.flush()
    codes[1].contact_id, codes[1].assigned_at = contact, now
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()
