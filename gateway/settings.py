"""Process settings: one pydantic-settings class, read from the environment (prefix-less names
kept short and conventional: DATABASE_URL, GATEWAY_*)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sized
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LAZY_ABOVE_COUNCILS = 20
KEYGEN = "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    config_dir: Path = Path("deploy/config")
    data_dir: Path = Path("data")
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    secret_key: str | None = None  # signs slot tokens and cursors
    # older secrets still accepted for tokens while new ones use secret_key (rotation);
    # comma-separated in GATEWAY_SECRET_KEYS_PREVIOUS
    secret_keys_previous: str = ""
    token_lifetime_seconds: int = Field(default=4 * 3600, ge=60)  # slot tokens and page cursors
    require_api_keys: bool = True
    outbox_poll_seconds: float = 1.0
    outbox_max_attempts: int = 12
    reconcile_after_seconds: float = 120.0  # a booking with no recorded outcome is checked
    request_budget_seconds: float = 25.0
    breaker_threshold: int = 5  # consecutive failures that open an adaptor's circuit
    breaker_cooldown_seconds: float = 30.0  # rest before a half-open probe
    max_body_bytes: int = 64 * 1024
    # adaptors start concurrently, each attempt bounded; serving begins after this grace at
    # most, and adaptors not ready by then are retried in the background (gateway/lifecycle.py)
    adaptor_start_grace_seconds: float = 10.0
    # eager: every adaptor at start-up; lazy: each on its first call (a platform serving
    # hundreds of councils); auto: lazy above LAZY_ABOVE_COUNCILS councils
    adaptor_start: Literal["eager", "lazy", "auto"] = "auto"
    adaptor_start_timeout_seconds: float = 20.0
    log_level: str = "info"
    demo: bool = False  # the local demo (`repairs-gateway demo`): placeholder secrets allowed
    # `serve`/`worker` on PostgreSQL wait this long for `repairs-gateway migrate`, then refuse
    schema_wait_seconds: float = 30.0
    # /metrics: with an admin key on the API port; also open on this port when set (for a
    # scraper inside the cluster, the port kept off the Ingress by the NetworkPolicy)
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    shutdown_grace_seconds: float = 20.0  # `worker`: finish the batch in hand for this long
    # every adaptor's backend is probed (check_health) this often per process, jittered, each
    # probe bounded; /health and /metrics show the last result and its age (gateway/probes.py)
    probe_interval_seconds: float = Field(default=20.0, ge=0.5, le=300)
    probe_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    probe_concurrency: int = Field(default=4, ge=1, le=64)
    # a reload (SIGHUP or POST /v1/admin/reload, gateway/reload.py) closes the adaptors it
    # replaced once the requests and calls running on them have finished, at most this long
    # after the request budget
    reload_grace_seconds: float = Field(default=5.0, ge=0, le=300)
    # OpenTelemetry traces over OTLP/HTTP (gateway/tracing.py): off unless an endpoint is set
    # here or in OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
    otlp_endpoint: str | None = None

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

    def uses_postgres(self) -> bool:
        return self.resolved_database_url().split(":", 1)[0].split("+", 1)[0] in (
            "postgresql",
            "postgres",
        )

    def secret_key_problem(self) -> str | None:
        """Why the signing key cannot be used, or None. On PostgreSQL (several replicas) the
        key must be configured: a key generated per process would make one replica's slot
        tokens invalid on the next. Placeholders are refused outside the demo."""
        if not self.secret_key:
            if self.uses_postgres():
                return (
                    "GATEWAY_SECRET_KEY is not set: on PostgreSQL every replica must sign slot "
                    f"tokens with the same key. Set it to a long random value, e.g. from {KEYGEN}"
                )
            return None
        if self.demo:
            return None
        named = [("GATEWAY_SECRET_KEY", self.secret_key)] + [
            ("GATEWAY_SECRET_KEYS_PREVIOUS", k) for k in self.previous_secret_keys()
        ]
        for name, value in named:
            if looks_like_placeholder(value):
                return (
                    f"{name} holds a placeholder value, not a secret: set it to a long random "
                    f"value, e.g. from {KEYGEN}"
                )
        return None

    def lazy_start(self, councils: Sized) -> bool:
        if self.adaptor_start == "auto":
            return len(councils) > LAZY_ABOVE_COUNCILS
        return self.adaptor_start == "lazy"

    def unsafe_setting_problem(self) -> str | None:
        """Settings that would silently open the gateway up; refused outside the demo."""
        if not self.require_api_keys and not self.demo:
            return (
                "GATEWAY_REQUIRE_API_KEYS=false would make every caller an administrator of "
                "every council; it is allowed only in `repairs-gateway demo`. Create keys with "
                "`repairs-gateway keys create` instead"
            )
        return None

    def resolved_secret_key(self) -> str:
        problem = self.secret_key_problem()
        if problem is not None:
            raise SecretKeyError(problem)
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


class SecretKeyError(ValueError):
    """The configured signing key cannot be used (missing on PostgreSQL, or a placeholder)."""


_PLACEHOLDER = re.compile(
    r"^(secret|password|changeit|example|todo|fixme|x{4,}|<.*>|\$\{.*\})$"  # the whole value
    r"|^(replace[-_ ]?me|your[-_ ]|insert[-_ ]|example[-_ ])"  # how it starts
    r"|placeholder|change[-_ ]?me",  # anywhere
    re.IGNORECASE,
)


def looks_like_placeholder(value: str) -> bool:
    """An obvious stand-in (``change-me...``, ``<secret>``, ``${VAR}``, ``xxxx``), not a key."""
    return bool(_PLACEHOLDER.search(value.strip()))


@lru_cache
def get_settings() -> Settings:
    return Settings()
