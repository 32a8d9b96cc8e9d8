"""A council's ``hro:`` block, and loading its triage table.

hro:
  auth: token                    # token: N&S (POST /authentication); none: Redbridge
  identifier: ${HRO_IDENTIFIER}  # the shared secret N&S sends (REPAIRS_API_IDENTIFIER),
                                 # or its hash: sha256:<64 hex> (repairs-gateway hro
                                 # hash-identifier), so the clear value is never at rest
  triage: demo.triage.yaml       # the triage table, relative to the config directory
  token_seconds: 60              # lifetime of the bearer token
  rate_per_minute: 600           # per source address
  retry_window_seconds: 600      # the same booking body again within this is a retry
  notify_wait_seconds: 5         # how long a booking waits to report govNotifyStatus
  photo_retention_days: 90       # photos are purged after this
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

if TYPE_CHECKING:
    from gateway.config import ConfigProblem, LoadedCouncil
    from mappings.engine import SorTable
    from mappings.triage import TriageSet

HASHED = re.compile(r"^sha256:[0-9a-f]{64}$")
MIN_IDENTIFIER = 16


def hash_identifier(identifier: str) -> str:
    return "sha256:" + hashlib.sha256(identifier.encode()).hexdigest()


class HroConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    auth: Literal["token", "none"]
    identifier: SecretStr | None = None
    triage: str
    token_seconds: int = Field(60, ge=10, le=3600)
    rate_per_minute: int = Field(600, ge=1, le=1_000_000)
    retry_window_seconds: int = Field(600, ge=0, le=86_400)
    notify_wait_seconds: float = Field(5.0, ge=0, le=20)
    photo_retention_days: int = Field(90, ge=1, le=3650)

    @model_validator(mode="after")
    def _identifier_for_tokens(self) -> HroConfig:
        if self.auth == "token":
            if self.identifier is None:
                raise ValueError("auth: token needs an identifier (the secret N&S sends)")
            text = self.identifier.get_secret_value()
            if not HASHED.match(text) and len(text) < MIN_IDENTIFIER:
                raise ValueError(
                    f"the identifier must be at least {MIN_IDENTIFIER} characters "
                    "(or sha256:<hex> of one)"
                )
            if re.search(r"[^A-Za-z0-9._~-]", text) and not HASHED.match(text):
                raise ValueError(
                    "the identifier travels in a query string unencoded: use only letters, "
                    "digits and . _ ~ -"
                )
        return self

    def identifier_hash(self) -> str | None:
        """The identifier as kept in memory: only its hash."""
        if self.identifier is None:
            return None
        text = self.identifier.get_secret_value()
        return text if HASHED.match(text) else hash_identifier(text)

    def identifier_matches(self, presented: str, expected_hash: str | None) -> bool:
        if expected_hash is None:
            return False
        return hmac.compare_digest(expected_hash, hash_identifier(presented))


def load_hro(
    loaded: LoadedCouncil, table: SorTable
) -> tuple[TriageSet | None, list[ConfigProblem]]:
    """The council's triage table (validated against its SoR table) and any problems, with
    file and line; ``auth: none`` is a warning."""
    from gateway.config import ConfigProblem
    from mappings.engine import MappingTableError
    from mappings.triage import load_triage

    hro = loaded.config.hro
    if hro is None:
        return None, []
    fname = str(loaded.path)
    problems: list[ConfigProblem] = []
    if hro.auth == "none":
        problems.append(
            ConfigProblem(
                fname,
                loaded.line_of("hro", "auth"),
                "hro.auth",
                "auth: none serves the HRO facade without any credentials: keep "
                "/hro/ on a private network reachable only by the front end's server",
                fatal=False,
            )
        )
    path = (loaded.path.parent / hro.triage).resolve()
    try:
        triage = load_triage(path, table if len(table) else None)
    except FileNotFoundError:
        problems.append(
            ConfigProblem(
                fname,
                loaded.line_of("hro", "triage"),
                "hro.triage",
                f"triage table {path} not found",
            )
        )
        return None, problems
    except MappingTableError as exc:
        problems.extend(
            ConfigProblem(e.source, e.line, e.column or "", e.message) for e in exc.errors
        )
        return None, problems
    return triage, problems


def council_hro(council: Any) -> tuple[HroConfig, TriageSet] | None:
    """The facade's view of a council: its config and triage, or None when not enabled."""
    hro = council.config.hro
    triage = getattr(council, "triage", None)
    if hro is None or triage is None:
        return None
    return hro, triage
