"""The pages recipients see (unsubscribe, preferences, opt-in confirmation), and the
form token that binds a preference form to its contact.

Templates live beside this module and are rendered by a sandboxed Jinja environment with
autoescape on: names and addresses shown on the pages are contact data.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from jinja2 import FileSystemLoader
from jinja2.sandbox import SandboxedEnvironment

from postillon.clock import Clock

_TEMPLATES = SandboxedEnvironment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
)
# A preference form posted later than this after it was shown is refused (reload it).
FORM_VALID_FOR = timedelta(days=1)


def render(page: str, **values: Any) -> str:
    """One of the pages (`unsubscribe`, `done`, `preferences`, `confirm`) as HTML."""
    return _TEMPLATES.get_template(f"{page}.html").render(**values)


class FormTokens:
    """CSRF tokens for the preference form: signed (contact, time shown), with a salt of
    their own, so neither a token from another contact's page nor a link token works."""

    def __init__(self, secret_key: str, clock: Clock) -> None:
        self.clock = clock
        self._serializer = URLSafeSerializer(
            secret_key,
            salt="postillon.form.preferences",
            signer_kwargs={"digest_method": hashlib.sha256},
        )

    def issue(self, contact_id: uuid.UUID) -> str:
        return str(self._serializer.dumps([contact_id.hex, int(self.clock.now().timestamp())]))

    def problem(self, token: str | None, contact_id: uuid.UUID) -> str | None:
        """Why a posted token does not fit the contact, or None if it does."""
        if not token:
            return "the form carries no form token: reload the page and save again"
        try:
            payload = self._serializer.loads(token)
        except (BadSignature, UnicodeDecodeError, ValueError):
            return "the form token is not valid: reload the page and save again"
        if not (isinstance(payload, list) and len(payload) == 2) or payload[0] != contact_id.hex:
            return "the form token belongs to another page: reload the page and save again"
        issued = payload[1]
        if not isinstance(issued, int):
            return "the form token is not valid: reload the page and save again"
        if self.clock.now() - datetime.fromtimestamp(issued, UTC) > FORM_VALID_FOR:
            return "the form has expired: reload the page and save again"
        return None
