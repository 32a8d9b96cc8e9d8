"""The adaptor contract configuration file (YAML): which adaptor, its options, the fixtures
the suite needs, written exemptions, and optionally how to start its backend or simulator.

    type: csv_fallback
    options: {...}                       # the adaptor's options, as in a council file
    fixtures:
      postcode: LN1 1AA                  # a postcode with properties
      property_id: "00012345"            # a property that exists
      job: {sor_code: N631111, trade: plumbing, size: small}
    capabilities_exempt:
      test_timeout_is_honoured: "no network calls: reads a local file"
    backend:                             # optional: the plugin starts it on a free port
      command: [python, -m, adaptors.totalmobile.simulator, --port, "{port}"]
      ready_url: http://127.0.0.1:{port}/health

``{port}`` is replaced in ``backend.command``, ``backend.ready_url`` and ``options``;
``${ENV_VAR}`` in ``options`` is read from the environment (secrets stay out of the file).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from repairs_gateway_sdk.model import (
    DEFAULT_SIZE_MINUTES,
    JobSize,
    JobSpec,
    Priority,
    Property,
    Trade,
)


class SpecError(ValueError):
    """The contract configuration file is unusable; the message says why and where."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobFixture(_Strict):
    """A job the backend can schedule (an SoR code it knows, and its trade and size)."""

    sor_code: str | None = None
    trade: Trade = Trade.PLUMBING
    size: JobSize = JobSize.SMALL
    duration_minutes: int | None = Field(default=None, ge=1)
    priority: Priority = Priority.NORMAL

    def spec(self) -> JobSpec:
        minutes = self.duration_minutes or DEFAULT_SIZE_MINUTES[self.size]
        return JobSpec(
            sor_code=self.sor_code,
            trade=self.trade,
            size=self.size,
            duration_minutes=minutes,
            priority=self.priority,
        )


class PropertyFixture(_Strict):
    """The property handed to a Scheduler that is not also an AddressSource."""

    uprn: str | None = None
    address_lines: list[str] = Field(default_factory=lambda: ["1 Contract Test Street"])
    postcode: str | None = None


class TimeoutFixture(_Strict):
    """Option overrides that point the adaptor at a server that accepts connections and
    never answers: ``{blackhole}`` is replaced by its ``http://127.0.0.1:PORT`` URL and
    ``{blackhole_port}`` by its port. Give short timeouts here (e.g. 0.5 s)."""

    options: dict[str, Any]
    limit_seconds: float = Field(
        default=60.0, gt=0, description="a call still running after this long is a hang"
    )


class Fixtures(_Strict):
    postcode: str | None = Field(default=None, description="a postcode with properties")
    empty_postcode: str = Field(default="ZZ9 9ZZ", description="valid, no properties")
    property_id: str | None = Field(default=None, description="a property that exists")
    unknown_property_id: str = "NO-SUCH-PROPERTY-0"
    property: PropertyFixture = Field(default_factory=PropertyFixture)
    job: JobFixture = Field(default_factory=JobFixture)
    unknown_sor_code: str = "ZZ99999"
    start_in_days: int = Field(default=1, ge=0, description="availability from today + this")
    page_size: int = Field(default=3, ge=2, le=50)
    max_places_per_slot: int = Field(
        default=6, ge=1, le=50, description="bookings tried on one slot before it must be full"
    )
    timeout: TimeoutFixture | None = None
    capabilities_exempt: dict[str, str] = Field(default_factory=dict)


class Backend(_Strict):
    command: list[str] = Field(min_length=1)
    ready_url: str | None = Field(
        default=None, description="polled until it answers; default: wait for the port"
    )
    ready_timeout_seconds: float = Field(default=30.0, gt=0)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = Field(default=None, description="relative to the config file")


class AdaptorSpec(_Strict):
    type: str = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)
    fixtures: Fixtures = Field(default_factory=Fixtures)
    capabilities_exempt: dict[str, str] = Field(default_factory=dict)
    backend: Backend | None = None

    @model_validator(mode="after")
    def _exemptions_have_reasons(self) -> AdaptorSpec:
        merged = {**self.fixtures.capabilities_exempt, **self.capabilities_exempt}
        for test, reason in merged.items():
            if not isinstance(reason, str) or not reason.strip():
                raise ValueError(f"capabilities_exempt.{test}: an exemption needs a written reason")
        self.capabilities_exempt = merged
        return self

    @property
    def exemptions(self) -> dict[str, str]:
        return dict(self.capabilities_exempt)


def _no_reason_to_none(raw: Any) -> Any:
    """YAML ``test_x:`` (no reason) loads as None; keep it so the validator names it."""
    if isinstance(raw, dict):
        for section in (raw, raw.get("fixtures") or {}):
            ex = section.get("capabilities_exempt") if isinstance(section, dict) else None
            if isinstance(ex, dict):
                section["capabilities_exempt"] = {
                    k: ("" if v is None else v) for k, v in ex.items()
                }
    return raw


def load_spec(path: Path) -> AdaptorSpec:
    try:
        import yaml  # the testing extra; imported here so the plugin loads without it
    except ImportError:
        raise SpecError(
            f"{path}: reading a contract configuration needs PyYAML: "
            "pip install 'repairs-gateway-sdk[testing]'"
        ) from None
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping with type, options and fixtures")
    try:
        return AdaptorSpec.model_validate(_no_reason_to_none(raw))
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}" for e in exc.errors()
        ]
        raise SpecError(f"{path}: invalid contract configuration:\n" + "\n".join(lines)) from None


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def substitute(value: Any, replacements: dict[str, str], *, env: bool = True) -> Any:
    """Replace ``{name}`` placeholders (and ``${ENV}`` when ``env``) in every string."""
    import os

    if isinstance(value, str):
        out = value
        for key, repl in replacements.items():
            out = out.replace("{" + key + "}", repl)
        if env:

            def sub(m: re.Match[str]) -> str:
                found = os.environ.get(m.group(1))
                if found is None:
                    raise SpecError(f"environment variable {m.group(1)} is not set")
                return found

            out = _ENV.sub(sub, out)
        return out
    if isinstance(value, dict):
        return {k: substitute(v, replacements, env=env) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, replacements, env=env) for v in value]
    return value


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def scheduler_property(spec: AdaptorSpec) -> Property:
    """A property for schedulers that have no address source of their own."""
    fx = spec.fixtures
    return Property(
        id=fx.property_id or "00000001",
        uprn=fx.property.uprn,
        address_lines=fx.property.address_lines,
        postcode=fx.property.postcode or fx.postcode or "LN1 1AA",
    )
