import hashlib
import uuid

from itsdangerous import URLSafeSerializer

from postillon.messages.links import LinkKind, LinkSigner


def test_a_click_link_reads_back_its_message_and_target() -> None:
    signer = LinkSigner("secret", "https://mail.example.com/")
    message_id = uuid.uuid4()
    url = signer.click_url(message_id, "https://shop.example.com/a?b=1")
    assert url.startswith("https://mail.example.com/e/c/")
    token = url.rsplit("/", 1)[1]
    assert signer.read_click(token) == (message_id, "https://shop.example.com/a?b=1")


def test_a_tampered_token_or_another_secret_or_kind_reads_nothing() -> None:
    signer = LinkSigner("secret", "https://mail.example.com")
    message_id = uuid.uuid4()
    token = signer.token(LinkKind.open, message_id.hex)
    assert signer.read_message_id(LinkKind.open, token) == message_id
    assert signer.read_message_id(LinkKind.open, token[:-2] + "xx") is None
    assert LinkSigner("other", "https://x").read_message_id(LinkKind.open, token) is None
    # The same payload signed for opens is not an unsubscribe token.
    assert signer.read_message_id(LinkKind.unsubscribe, token) is None
    assert signer.read_click(signer.token(LinkKind.click, "not a pair")) is None
    assert signer.read_click("garbage") is None


def test_a_bounce_address_names_its_message_and_cannot_be_forged() -> None:
    signer = LinkSigner("secret", "https://mail.example.com")
    message_id = uuid.uuid4()
    local_part = signer.verp_local_part(message_id)
    assert len(local_part) <= 64
    assert signer.read_verp_local_part(local_part) == message_id
    assert signer.read_verp_local_part(local_part.upper()) == message_id
    forged = f"bounce+{uuid.uuid4().hex}.{local_part.rsplit('.', 1)[1]}"
    assert signer.read_verp_local_part(forged) is None
    assert signer.read_verp_local_part("postmaster") is None


def test_tokens_are_the_ones_itsdangerous_makes_and_reads() -> None:
    signer = LinkSigner("a secret for links", "https://mail.example.com")
    message_id = uuid.uuid4()
    reference = URLSafeSerializer(
        "a secret for links",
        salt="postillon.link.open",
        signer_kwargs={"digest_method": hashlib.sha256},
    )
    # Short payloads are never compressed by itsdangerous: the very same token.
    assert signer.token(LinkKind.open, message_id.hex) == reference.dumps(message_id.hex)
    target = "https://shop.example.com/p/straw-hat?ref=news&utm_source=postillon&ü=1"
    token = signer.token(LinkKind.click, [message_id.hex, target])
    assert signer.read_click(token) == (message_id, target)
    assert signer.read(LinkKind.open, token) is None  # another kind's salt
