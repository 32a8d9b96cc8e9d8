"""Plain wording for configuration mistakes: "did you mean" for misspelt keys and names."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` or `` (one of: a, b, c)``, or nothing when there are none."""
    options = sorted(set(choices))
    if not options:
        return ""
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not close:
        close = [o for o in options if o.lower() == word.lower()]
    if close:
        return f" (did you mean {close[0]!r}?)"
    shown = ", ".join(options[:12]) + (", ..." if len(options) > 12 else "")
    return f" (one of: {shown})"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is None:
        return []
    if origin in (typing.Union, types.UnionType, list, tuple, set, frozenset):
        return [m for a in typing.get_args(annotation) for m in _models_in(a)]
    if origin is dict:
        args = typing.get_args(annotation)
        return _models_in(args[1]) if len(args) == 2 else []
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    return []


def model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that holds the key at ``loc`` (without the key itself): list indexes
    and dictionary keys are stepped over."""
    current: type[BaseModel] | None = root
    pending: list[type[BaseModel]] = []  # models reached through a dict or list, by key/index
    for part in loc:
        if current is None:
            if not pending:
                return None
            current, pending = pending[0], []
            continue
        field = current.model_fields.get(str(part)) if isinstance(part, str) else None
        if field is None:
            return None
        inner = _models_in(field.annotation)
        if not inner:
            return None
        origin = typing.get_origin(field.annotation)
        args = typing.get_args(field.annotation)
        wrapped = origin in (list, dict, tuple, set) or any(
            typing.get_origin(a) in (list, dict) for a in args
        )
        if wrapped:
            current, pending = None, inner
        else:
            current = inner[0]
    return current


def unknown_key(root: type[BaseModel] | None, loc: tuple[Any, ...]) -> str:
    """The wording for an ``extra_forbidden`` error at ``loc``."""
    key = str(loc[-1]) if loc else ""
    model = model_at(root, loc[:-1]) if root is not None else None
    hint = suggest(key, model.model_fields) if model is not None else ""
    return f"unknown key {key!r}{hint}"


def pydantic_message(err: Any, root: type[BaseModel] | None, loc: tuple[Any, ...]) -> str:
    """A pydantic error in council IT's words (no "Value error," prefix, unknown keys named
    with a suggestion)."""
    if err.get("type") == "extra_forbidden":
        return unknown_key(root, loc)
    msg = str(err.get("msg", ""))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    return msg
