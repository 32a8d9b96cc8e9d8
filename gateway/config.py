"""Council configuration: one YAML file per council in the config directory; the file name
(without ``.yaml``) is the council id.

    name: Demo Council
    mappings: demo-sor.csv            # SoR table, relative to the config directory
    adaptors:
      demo_csv:
        type: csv_fallback
        options: {...}                # "${ENV_VAR}" pulls a secret from the environment
    routes:
      addresses: demo_csv             # shorthand for {default: demo_csv}
      appointments:
        default: drs
        rules:
          - {use: tm, trade: [plumbing], percent: 25}
        shadow: tm                    # compared in the background, never seen by callers
      works_orders: uh                # optional: raise works orders after each booking
    hro: {auth: token, identifier: ${HRO_IDENTIFIER}, triage: x.triage.yaml}
                                      # optional: the HRO facade (gateway/hro/config.py)

Every problem is reported with the file, line and key at fault.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.hro.config import HroConfig
from gateway.notify import NotifyConfig
from repairs_gateway_sdk.adaptor import ROUTABLE
from repairs_gateway_sdk.model import Priority, Trade

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
COUNCIL_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
CAPABILITIES = ROUTABLE  # the capabilities a council's routes choose adaptors for


class RouteRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    use: str
    trade: list[Trade] | None = None
    priority: list[Priority] | None = None
    property_ids: list[str] | None = None
    postcodes: list[str] | None = Field(
        default=None, description="postcode areas (LN) or districts (LN1)"
    )
    percent: float | None = Field(default=None, ge=0, le=100)


class CapabilityRoute(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: str
    rules: list[RouteRule] = Field(default_factory=list)
    shadow: str | None = None


def _route(value: Any) -> Any:
    return {"default": value} if isinstance(value, str) else value


class Routes(BaseModel):
    model_config = ConfigDict(extra="forbid")

    addresses: CapabilityRoute
    appointments: CapabilityRoute | None = None
    bookings: CapabilityRoute | None = None  # bookings without a slot; default: appointments
    works_orders: CapabilityRoute | None = None

    _coerce = field_validator("*", mode="before")(classmethod(lambda cls, v: _route(v)))


class AdaptorEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str
    options: dict[str, Any] = Field(default_factory=dict)


class CouncilConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    mappings: str
    adaptors: dict[str, AdaptorEntry]
    routes: Routes
    accept_without_slot: bool = False
    notifications: NotifyConfig | None = None
    cors_origins: list[str] = Field(default_factory=list)
    page_size: int = Field(default=10, ge=1, le=50)
    hro: HroConfig | None = None  # the Housing Repairs Online facade (gateway/hro/)

    def route_names(self) -> list[tuple[tuple[Any, ...], str]]:
        """Every adaptor name the routes use, with where it is (a path into the YAML)."""
        out: list[tuple[tuple[Any, ...], str]] = []
        for cap in CAPABILITIES:
            route = getattr(self.routes, cap)
            if route is None:
                continue
            out.append((("routes", cap, "default"), route.default))
            out.extend(
                (("routes", cap, "rules", i, "use"), r.use) for i, r in enumerate(route.rules)
            )
            if route.shadow:
                out.append((("routes", cap, "shadow"), route.shadow))
        return out


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    line: int | None
    key: str
    message: str
    fatal: bool = True  # False: reported, but does not stop the other councils/adaptors

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"
        return text if self.fatal else f"{text} (warning)"


class ConfigError(Exception):
    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def _line_of(node: yaml.Node | None, path: tuple[Any, ...]) -> int | None:
    """Find the line of the YAML node at ``path`` (1-based), or of its nearest parent."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == str(part):
                    node, line = v, k.start_mark.line + 1
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def expand_env(
    value: Any, path: tuple[Any, ...], missing: list[tuple[tuple[Any, ...], str]]
) -> Any:
    if isinstance(value, str):
        if "${" not in value:  # nearly every value: no substitution to make
            return value

        def sub(m: re.Match[str]) -> str:
            env = os.environ.get(m.group(1))
            if env is None:
                missing.append((path, m.group(1)))
                return ""
            return env

        return _ENV.sub(sub, value)
    if isinstance(value, dict):
        return {k: expand_env(v, (*path, k), missing) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, (*path, i), missing) for i, v in enumerate(value)]
    return value


@dataclass
class LoadedCouncil:
    id: str
    path: Path
    config: CouncilConfig
    node: yaml.Node | None

    def line_of(self, *path: Any) -> int | None:
        return _line_of(self.node, path)


# libyaml's parser when PyYAML has it (its wheels do): the pure-Python one was most of the
# start-up time of a deployment serving hundreds of councils.
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse_yaml(text: str) -> tuple[yaml.Node | None, Any]:
    """The document's node tree (for line numbers) and its value, from one parse."""
    loader = _YAML_LOADER(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


def load_council_file(path: Path) -> LoadedCouncil:
    council_id = path.stem
    fname = str(path)
    if not COUNCIL_ID.match(council_id):
        raise ConfigError(
            [ConfigProblem(fname, None, "", "file name must be a council id: a-z, 0-9, - and _")]
        )
    from gateway.confighints import pydantic_message, suggest
    from gateway.textfiles import TextFileError, read_text

    try:
        text = read_text(path).text
    except TextFileError as exc:
        raise ConfigError([ConfigProblem(fname, exc.line, "", exc.message)]) from None
    try:
        node, raw = _parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise ConfigError([ConfigProblem(fname, line, "", f"not valid YAML: {exc}")]) from None
    if not isinstance(raw, dict):
        raise ConfigError([ConfigProblem(fname, 1, "", "expected a mapping at the top level")])
    missing: list[tuple[tuple[Any, ...], str]] = []
    raw = expand_env(raw, (), missing)
    problems = [
        ConfigProblem(
            fname,
            _line_of(node, p),
            ".".join(map(str, p)),
            f"environment variable {var} is not set",
        )
        for p, var in missing
    ]
    try:
        config = CouncilConfig.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(
                p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function"))
            )
            problems.append(
                ConfigProblem(
                    fname,
                    _line_of(node, loc),
                    ".".join(map(str, loc)),
                    pydantic_message(err, CouncilConfig, loc),
                )
            )
        raise ConfigError(problems) from None
    for where, name in config.route_names():
        if name not in config.adaptors:
            problems.append(
                ConfigProblem(
                    fname,
                    _line_of(node, where),
                    ".".join(map(str, where)),
                    f"names adaptor {name!r}, which is not defined under adaptors"
                    + suggest(name, config.adaptors),
                )
            )
    if problems:
        raise ConfigError(problems)
    return LoadedCouncil(council_id, path, config, node)


def council_files(config_dir: Path) -> list[Path]:
    if not config_dir.is_dir():
        raise ConfigError([ConfigProblem(str(config_dir), None, "", "config directory not found")])
    # *.triage.yaml beside the councils are triage tables (gateway/hro/), not councils
    return sorted(
        p for p in config_dir.glob("*.yaml") if p.is_file() and not p.name.endswith(".triage.yaml")
    )
