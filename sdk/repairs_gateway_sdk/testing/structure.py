"""Structural checks for an adaptor type: usable from the suite and from any test.

Each function returns a list of problems (empty when the check passes), so a failing run
lists everything at once.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from repairs_gateway_sdk.adaptor import (
    CAPABILITIES,
    ENTRY_POINT_GROUP,
    Adaptor,
    AdaptorConfig,
    unguarded_methods,
)

GROUP = ENTRY_POINT_GROUP

CAPABILITY_BASES: tuple[type[Adaptor], ...] = tuple(
    dict.fromkeys(c.base for c in CAPABILITIES.values())
)
SECRET_NAME = re.compile(
    r"(^|_)(password|passwd|secret|passphrase|api_?key|private_key|access_token|"
    r"refresh_token|client_secret)$"
)


def load_entry_point(name: str) -> tuple[type[Adaptor] | None, list[str]]:
    """The class registered as ``name`` in the ``repairs_gateway.adaptors`` group."""
    found = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not found:
        installed = sorted({ep.name for ep in entry_points(group=GROUP)})
        return None, [
            f"no entry point {name!r} in group {GROUP!r} (installed: {', '.join(installed)}); "
            f'declare it under [project.entry-points."{GROUP}"] and install the package'
        ]
    if len({ep.value for ep in found}) > 1:
        return None, [f"entry point {name!r} is declared more than once: {found}"]
    try:
        cls = found[0].load()
    except Exception as exc:  # noqa: BLE001 - report any import failure as a problem
        return None, [f"entry point {name!r} ({found[0].value}) fails to load: {exc!r}"]
    if not (isinstance(cls, type) and issubclass(cls, Adaptor)):
        return None, [f"entry point {name!r} ({found[0].value}) is not an Adaptor subclass"]
    return cls, []


def check_bases(cls: type[Adaptor], name: str) -> list[str]:
    problems = []
    if not any(issubclass(cls, b) for b in CAPABILITY_BASES):
        problems.append(
            f"{cls.__qualname__} implements no capability: inherit from AddressSource, "
            "Scheduler and/or WorksOrderSink (repairs_gateway_sdk.adaptor)"
        )
    if inspect.isabstract(cls):
        missing = sorted(getattr(cls, "__abstractmethods__", ()))
        problems.append(f"{cls.__qualname__} leaves abstract methods unimplemented: {missing}")
    unknown = unguarded_methods(cls)
    if unknown:
        problems.append(
            f"{cls.__qualname__} has capability methods the gateway cannot guard: {unknown}"
        )
    if getattr(cls, "type_name", None) != name:
        problems.append(
            f"{cls.__qualname__}.type_name is {getattr(cls, 'type_name', None)!r}; it must "
            f"equal the entry-point name {name!r}"
        )
    for meth in ("start", "close", "check_health"):
        if not inspect.iscoroutinefunction(getattr(cls, meth, None)):
            problems.append(f"{cls.__qualname__}.{meth} must be async")
    return problems


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        out.extend(_models_in(arg))
    return out


def _is_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return bool(args) and all(_is_secret(a) for a in args)
    return False


def check_config(cls: type[Adaptor]) -> list[str]:
    """``Config`` is a pydantic model that forbids unknown keys (also in nested models) and
    holds secrets as ``SecretStr``."""
    config = getattr(cls, "Config", None)
    if not (isinstance(config, type) and issubclass(config, BaseModel)):
        return [
            f"{cls.__qualname__}.Config must be a pydantic model "
            "(repairs_gateway_sdk.adaptor.AdaptorConfig)"
        ]
    problems = []
    if not issubclass(config, AdaptorConfig):
        problems.append(
            f"{config.__qualname__} should subclass repairs_gateway_sdk.adaptor.AdaptorConfig"
        )
    seen: set[type[BaseModel]] = set()

    def walk(model: type[BaseModel], where: str) -> None:
        if model in seen:
            return
        seen.add(model)
        if model.model_config.get("extra") != "forbid":
            problems.append(
                f"{where} ({model.__qualname__}) must forbid unknown keys "
                '(model_config = ConfigDict(extra="forbid")) so typos are caught'
            )
        for fname, field in model.model_fields.items():
            if SECRET_NAME.search(fname) and not _is_secret(field.annotation):
                problems.append(f"{where}.{fname} looks like a secret: declare it as SecretStr")
            for sub in _models_in(field.annotation):
                walk(sub, f"{where}.{fname}")

    walk(config, "Config")
    return problems


def readme_path(cls: type[Adaptor]) -> Path:
    return Path(inspect.getfile(cls)).resolve().parent / "README.md"


def check_readme(cls: type[Adaptor]) -> list[str]:
    """A README.md beside the adaptor's package mentions every top-level option."""
    path = readme_path(cls)
    if not path.exists():
        # the class may live in a module of the package: look beside __init__ too
        pkg = cls.__module__.rsplit(".", 1)[0]
        mod = __import__(pkg, fromlist=["__file__"])
        alt = Path(getattr(mod, "__file__", "") or ".").resolve().parent / "README.md"
        if alt.exists():
            path = alt
        else:
            return [f"no README.md beside {inspect.getfile(cls)} describing the options"]
    text = path.read_text(encoding="utf-8")
    config = getattr(cls, "Config", None)
    if not (isinstance(config, type) and issubclass(config, BaseModel)):
        return []
    missing = [
        name
        for name in config.model_fields
        if not re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", text)
    ]
    if missing:
        return [f"{path} does not mention option(s): {', '.join(missing)}"]
    return []


def check_adaptor_type(name: str) -> list[str]:
    """Every structural check for the adaptor registered as ``name``."""
    cls, problems = load_entry_point(name)
    if cls is None:
        return problems
    return check_bases(cls, name) + check_config(cls) + check_readme(cls)
