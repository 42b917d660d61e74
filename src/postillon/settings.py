"""One typed configuration for every process, read from POSTILLON_* environment variables."""

from __future__ import annotations

import secrets
from datetime import time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_INSECURE_SECRET = "change-me"


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POSTILLON_", extra="ignore")

    env: Environment = Environment.development
    data_dir: Path = Field(default=Path("postillon-data"))
    database_url: str | None = None
    secret_key: str = _INSECURE_SECRET
    host: str = "127.0.0.1"
    port: int = 8000
    run_worker: bool = True
    worker_poll_seconds: float = 1.0
    max_page_size: int = 500
    max_batch_size: int = 5000
    import_batch_rows: int = 5000
    # How long the events of a visitor who has not identified are kept (ISO 8601 or seconds).
    anonymous_retention: timedelta = timedelta(hours=3)
    # Tracking API rate limit, per write key and client address, in requests per second.
    ingest_rate_per_second: float = 100.0
    ingest_burst: int = 200
    # Computed traits: purchases are the events of this name; the worker refreshes
    # everyone's traits this often (ISO 8601 or seconds).
    purchase_event: str = "Order Completed"
    traits_refresh_interval: timedelta = timedelta(hours=1)
    # Segments are also fully recomputed this often, for conditions relative to the time
    # ("within the last 30 days", birthdays); changes to contacts apply within seconds.
    segment_refresh_interval: timedelta = timedelta(hours=1)
    # `serve` loads the demo shop when the database has no contacts; unset: only in
    # development (not in tests, not in production).
    demo_data: bool | None = None
    demo_contacts: int = Field(default=10_000, ge=1)
    # When (UTC) the worker decays the scores of inactive contacts, daily.
    score_decay_time: time = time(3, 0)
    # The time zone of contacts without one (an IANA name): their local day and week
    # for frequency caps, their quiet hours when the journey names no zone.
    default_timezone: str = "UTC"
    # Date and schedule triggers: entries a worker missed (it was down) are still made
    # this long after their moment, late; older ones are left out.
    journey_trigger_grace: timedelta = timedelta(days=1)

    # Where recipients reach this installation: tracking, unsubscribe and preference
    # links in emails are made absolute with it.
    public_url: str = "http://127.0.0.1:8000"

    # Email. The sender of messages whose template names none.
    email_from: str = "Postillon <postillon@localhost>"
    # The SMTP relay every message goes through (security: none, starttls or tls).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_timeout_seconds: float = 30.0
    # Persistent connections kept open to the relay, and the most messages a second
    # handed to it (the relay's or the ISP's limit).
    smtp_connections: int = Field(default=4, ge=1, le=64)
    smtp_rate_per_second: float = Field(default=100.0, gt=0)
    # Speak SMTP from a child process, so a worker prepares the next messages on another
    # core while the last ones are sent (`channels/email/process.py`): for dedicated
    # workers on machines with cores to spare. Off: the connections live on a thread.
    smtp_process: bool = False
    # DKIM: messages are signed when a domain, a selector and a private key file are set.
    dkim_domain: str | None = None
    dkim_selector: str | None = None
    dkim_private_key_file: Path | None = None
    # Bounces come back to `bounce+<message token>@bounce_domain` (VERP); the bounce
    # server listens here for them (DSNs and ARF complaint reports).
    bounce_domain: str = "localhost"
    bounce_server_host: str = "127.0.0.1"
    bounce_server_port: int = 2525
    # Appended to the links of marketing messages unless a link already has them.
    email_utm: bool = True
    email_utm_source: str = "postillon"
    email_utm_medium: str = "email"
    # A message that could not be handed over (4xx, connection errors) is retried with
    # exponential backoff for this long, then failed.
    send_retry_for: timedelta = timedelta(days=2)
    # A message claimed for sending longer ago than this was being handed over by a worker
    # that died: it becomes `unknown` (reported, never re-sent blindly).
    send_lease: timedelta = timedelta(minutes=10)
    # Messages one send round claims (and hands over concurrently) at most.
    send_batch_size: int = Field(default=500, ge=1, le=10_000)
    # Broadcast recipients put in the outbox per worker step (one transaction each).
    broadcast_chunk_size: int = Field(default=2000, ge=1, le=100_000)
    # Webhooks called by rules and journeys (automations/webhooks.py): the time a call may
    # take, how often a failing one is tried (with exponential backoff) before it fails,
    # how long a worker may hold a call before it counts as `unknown` (never repeated
    # blindly), and the calls one worker round makes at most.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_max_attempts: int = Field(default=8, ge=1, le=50)
    webhook_lease: timedelta = timedelta(minutes=5)
    webhook_batch_size: int = Field(default=100, ge=1, le=10_000)

    # Compliance (subscriptions/, bounces/, messages/tracking.py).
    # Sources whose "subscribed" on email becomes "pending" until the contact follows the
    # confirmation link mailed to them (e.g. ["form", "api"]; the consent's own source,
    # else the writer's: api, import, tracking …).
    double_opt_in_sources: list[str] = Field(default_factory=list)
    double_opt_in_valid_for: timedelta = timedelta(days=7)
    # Run the bounce server inside `serve` and `worker` (`postillon bounce-server` runs
    # it alone).
    bounce_server_enabled: bool = False
    # Opens this soon after sending are prefetches (security gateways, privacy proxies);
    # clicks this soon are link scanners. Both are recorded, neither counts.
    email_machine_open_seconds: float = Field(default=2.0, ge=0)
    email_machine_click_seconds: float = Field(default=10.0, ge=0)

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            message = f"unknown time zone {value!r} (an IANA name such as Europe/Berlin)"
            raise ValueError(message) from None
        return value

    @model_validator(mode="after")
    def _refuse_default_secret_in_production(self) -> Settings:
        if self.env is Environment.production and self.secret_key == _INSECURE_SECRET:
            raise ValueError("POSTILLON_SECRET_KEY must be set in production")
        return self

    @property
    def loads_demo_data(self) -> bool:
        if self.demo_data is not None:
            return self.demo_data
        return self.env is Environment.development

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'postillon.db').resolve()}"

    def ensure_secret_key(self) -> Settings:
        """Outside production, keep a random secret in the data directory, not a default."""
        if self.secret_key != _INSECURE_SECRET:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key_file = self.data_dir / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(48))
            key_file.chmod(0o600)
        return self.model_copy(update={"secret_key": key_file.read_text().strip()})


def load_settings(**overrides: object) -> Settings:
    """Read the environment, apply overrides, and make sure a real secret key is in place."""
    return Settings(**overrides).ensure_secret_key()  # type: ignore[arg-type]
