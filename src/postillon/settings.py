"""One typed configuration for every process, read from POSTILLON_* environment variables."""

from __future__ import annotations

import secrets
from datetime import time, timedelta
from enum import StrEnum
from pathlib import Path

from pydantic import Field, model_validator
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
