"""Field normalisers: pure functions, no database."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from postillon.contacts import fields
from postillon.contacts.fields import AttributeType, FieldError


def _reference_email(value: str) -> str | None:
    """What email-validator alone makes of an address (lower-cased), or None if invalid."""
    try:
        return str(validate_email(value, check_deliverability=False).normalized).lower()
    except EmailNotValidError:
        return None


def _ours(value: str) -> str | None:
    try:
        return fields.normalise_email(value)
    except FieldError:
        return None


_local_chars = st.sampled_from(list("abcxyz019._+-!#~'ÄéAZ@ \""))
_domain_chars = st.sampled_from(list("abcxyz019-._Ä"))
_addresses = st.builds(
    lambda local, domain, tld: f"{local}@{domain}.{tld}",
    st.text(_local_chars, min_size=0, max_size=70),
    st.text(_domain_chars, min_size=0, max_size=70),
    st.sampled_from(["com", "de", "io", "test", "local", "x", "c0m", "museum", "", "123"]),
)


@settings(max_examples=3000, deadline=None)
@given(_addresses)
def test_the_fast_path_agrees_with_email_validator(address: str) -> None:
    assert _ours(address) == _reference_email(address.strip().lower())


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("Ann@Example.COM", "ann@example.com"),
        ("  bob.smith+news@mail.example.org ", "bob.smith+news@mail.example.org"),
        ("jörg@bücher.de", "jörg@bücher.de"),
    ],
)
def test_emails_are_normalised(raw: str, normal: str) -> None:
    assert fields.normalise_email(raw) == normal


@pytest.mark.parametrize("raw", ["", "ann", "ann@", "@example.com", "a@b", "ann@example..com"])
def test_invalid_emails_say_why(raw: str) -> None:
    with pytest.raises(FieldError):
        fields.normalise_email(raw)


def test_phone_numbers_become_e164() -> None:
    assert fields.normalise_phone("+49 151 1234 5678") == "+4915112345678"
    assert fields.normalise_phone("0151 12345678", default_region="DE") == "+4915112345678"
    with pytest.raises(FieldError, match="\\+<country code>"):
        fields.normalise_phone("0151 12345678")
    with pytest.raises(FieldError, match="not a valid phone number"):
        fields.normalise_phone("+49 999 12345678")
    with pytest.raises(FieldError, match="too short"):
        fields.normalise_phone("+49 1")


def test_time_zones_and_locales() -> None:
    assert fields.normalise_timezone("Europe/Berlin") == "Europe/Berlin"
    with pytest.raises(FieldError, match="IANA"):
        fields.normalise_timezone("Mars/Olympus")
    assert fields.normalise_locale("de_de") == "de-DE"
    assert fields.normalise_locale("zh-hant-tw") == "zh-Hant-TW"
    with pytest.raises(FieldError):
        fields.normalise_locale("not a locale")


def test_attribute_types_are_inferred_from_json_values() -> None:
    assert fields.infer_attribute_type(True) is AttributeType.boolean
    assert fields.infer_attribute_type(3.5) is AttributeType.number
    assert fields.infer_attribute_type(["a"]) is AttributeType.list
    assert fields.infer_attribute_type("1990-04-01") is AttributeType.date
    assert fields.infer_attribute_type("1990-13-01") is AttributeType.string
    assert fields.infer_attribute_type("Berlin") is AttributeType.string


def test_attribute_values_are_coerced_to_their_type() -> None:
    assert fields.coerce_attribute("42", AttributeType.number, from_text=True) == 42
    assert fields.coerce_attribute("4.5", AttributeType.number, from_text=True) == 4.5
    assert fields.coerce_attribute("yes", AttributeType.boolean, from_text=True) is True
    assert fields.coerce_attribute("a, b", AttributeType.list, from_text=True) == ["a", "b"]
    assert fields.coerce_attribute("2024-02-29T10:00:00", AttributeType.date) == "2024-02-29"
    with pytest.raises(FieldError, match="expected a number"):
        fields.coerce_attribute("42", AttributeType.number)
    with pytest.raises(FieldError, match="expected a number"):
        fields.coerce_attribute(True, AttributeType.number)
    with pytest.raises(FieldError, match="finite"):
        fields.coerce_attribute(float("nan"), AttributeType.number)
    with pytest.raises(FieldError, match="YYYY-MM-DD"):
        fields.coerce_attribute("01.04.1990", AttributeType.date)
    with pytest.raises(FieldError, match="list items"):
        fields.coerce_attribute([{"a": 1}], AttributeType.list)


def test_attribute_names_may_not_shadow_contact_fields() -> None:
    with pytest.raises(FieldError, match="contact field"):
        fields.check_attribute_name("email")
    with pytest.raises(FieldError, match="letters"):
        fields.check_attribute_name("9lives")
