"""Process settings: one pydantic-settings class, read from the environment (prefix-less names
kept short and conventional: DATABASE_URL, GATEWAY_*)."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    config_dir: Path = Path("deploy/config")
    data_dir: Path = Path("data")
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    secret_key: str | None = None  # signs slot tokens and cursors
    # older secrets still accepted for tokens while new ones use secret_key (rotation);
    # comma-separated in GATEWAY_SECRET_KEYS_PREVIOUS
    secret_keys_previous: str = ""
    token_lifetime_seconds: int = Field(4 * 3600, ge=60)  # slot tokens and page cursors
    require_api_keys: bool = True
    outbox_poll_seconds: float = 1.0
    outbox_max_attempts: int = 12
    reconcile_after_seconds: float = 120.0  # a booking with no recorded outcome is checked
    request_budget_seconds: float = 25.0
    breaker_threshold: int = 5  # consecutive failures that open an adaptor's circuit
    breaker_cooldown_seconds: float = 30.0  # rest before a half-open probe
    max_body_bytes: int = 64 * 1024
    log_level: str = "info"

    @model_validator(mode="after")
    def _reconcile_after_the_budget(self) -> Settings:
        # The crash reconciler must never judge a booking whose request may still be running.
        if self.reconcile_after_seconds <= self.request_budget_seconds:
            raise ValueError("reconcile_after_seconds must exceed request_budget_seconds")
        return self

    def previous_secret_keys(self) -> list[str]:
        return [k.strip() for k in self.secret_keys_previous.split(",") if k.strip()]

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'gateway.db').resolve()}"

    def resolved_secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(32)
        path.write_text(key)
        path.chmod(0o600)
        return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
