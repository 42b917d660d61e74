"""The template API over real HTTP: save, errors with lines, preview, delete."""

from __future__ import annotations

import httpx

from tests.templates.support import NEWSLETTER_MJML


def test_templates_are_saved_checked_previewed_and_deleted(api: httpx.Client) -> None:
    contact = api.post(
        "/api/contacts", json={"email": "ada@example.com", "first_name": "<b>Ada</b>"}
    )
    assert contact.status_code in {200, 201}, contact.text
    document = {"key": "cart", "subject": "Hi {{ contact.first_name }}", "body": NEWSLETTER_MJML}

    created = api.post("/api/templates", json=document)
    assert created.status_code == 201, created.text
    assert api.post("/api/templates", json=document).status_code == 409
    bad = api.put("/api/templates/cart", json={**document, "subject": "{{ contct }}"})
    assert bad.status_code == 422
    assert bad.json()["problems"] == [
        {"loc": "subject", "msg": "line 1: unknown variable 'contct'"}
    ]
    changed = api.patch("/api/templates/cart", json={"preheader": "For {{ contact.first_name }}"})
    assert changed.json()["version"] == 2

    preview = api.post(
        "/api/templates/cart/preview",
        json={"email": "ada@example.com", "context": {"cart": [{"name": "Teapot", "price": 3}]}},
    )
    assert preview.status_code == 200, preview.text
    shown = preview.json()
    assert shown["subject"] == "Hi <b>Ada</b>"
    assert "Hello &lt;b&gt;Ada&lt;/b&gt;," in shown["html"] and "Teapot: 3 EUR" in shown["text"]
    unknown = api.post("/api/templates/cart/preview", json={"email": "nobody@example.com"})
    assert unknown.status_code == 422 and unknown.json()["problems"][0]["loc"] == "email"

    assert [t["key"] for t in api.get("/api/templates").json()] == ["cart"]
    assert api.delete("/api/templates/cart").status_code == 204
    assert api.get("/api/templates/cart").status_code == 404


def test_voucher_pools_import_csv_with_line_numbers(api: httpx.Client) -> None:
    assert api.post("/api/voucher-pools", json={"key": "ean", "kind": "imported",
                                                "barcode": "ean13"}).status_code == 201  # fmt: skip
    csv_body = "code\n4006381333931\n4006381333932\n"
    bad = api.post(
        "/api/voucher-pools/ean/codes", content=csv_body, headers={"content-type": "text/csv"}
    )
    assert bad.status_code == 422 and bad.json()["problems"][0]["loc"] == "line 3"
    good = api.post("/api/voucher-pools/ean/codes", json={"codes": ["4006381333931"]})
    assert good.json()["added"] == 1 and good.json()["pool"]["free"] == 1
    generated = api.post("/api/voucher-pools/ean/generate", json={"count": 5})
    assert generated.json()["pool"]["free"] == 6


def test_content_blocks_over_http_and_delete_refused_while_used(api: httpx.Client) -> None:
    block = {
        "key": "offers",
        "variants": [
            {"key": "vip", "priority": 5, "content": "<b>VIP</b>",
             "filter": {"field": "score", "op": ">=", "value": 50}},
            {"key": "all", "content": "For all"},
        ],
    }  # fmt: skip
    assert api.post("/api/content-blocks", json=block).status_code == 201
    assert api.post("/api/content-blocks", json=block).status_code == 409
    bad = {**block, "variants": [{"key": "x", "content": "{% if %}"}]}
    refused = api.put("/api/content-blocks/offers", json=bad)
    assert refused.status_code == 422
    assert refused.json()["problems"][0]["loc"] == "variants[0].content"
    template = {"key": "t", "format": "html", "subject": "S", "body": '{{ content("offers") }}'}
    assert api.post("/api/templates", json=template).status_code == 201
    assert api.delete("/api/content-blocks/offers").status_code == 409
    assert api.delete("/api/templates/t").status_code == 204
    assert api.delete("/api/content-blocks/offers").status_code == 204
