"""Triage tables: a council's diagnosis tree per repair type, kept as data beside its SoR table.

A table is a YAML file with up to three trees, ``tenant``, ``communal`` and ``leasehold``. Each
tree is a list of locations; a location has problems; a problem may have issues (at most three
levels). Every option has a ``value`` (the key front ends send back, matched exactly) and a
``display`` (what residents read). A leaf either books a repair or ends the journey early:

    tenant:
      - value: kitchen
        display: Kitchen
        options:
          - value: cupboards
            display: Cupboards, including damaged cupboard doors
            options:
              - {value: doorHangingOff, display: Hanging door, sor_code: N373049}
              - {value: doorMissing, display: Missing door, outcome: unable_to_book}
          - {value: worktop, display: Damaged worktop, sor_code: N324123, priority: normal}
      - {value: heating, display: Heating or hot water, options: [
          {value: noHeating, display: No heating, outcome: emergency}]}

``outcome`` is one of ``emergency``, ``unable_to_book``, ``not_eligible``, ``contact_us``.
``priority`` (immediate | emergency | urgent | normal, or I/E/U/N) is optional: the SoR table's
priority, then normal, apply. Loading reports every problem with file and line; every SoR code
must be in the council's SoR table and bookable online.

Both Housing Repairs Online shapes can be imported (``repairs-gateway triage import``):
Redbridge's nested ``SoRConfig.json`` (``{location: {problem: "SOR" | {issue: "SOR"}}}``) and
Newark & Sherwood's ``SOR_CONFIGURATION_*`` arrays (``[{value, display, options?, sorCode?,
priority?}]``, early exits as the values ``Emergency``, ``UnableToBook``,
``NotEligibleNonEmergency``, ``ContactUs``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mappings.engine import LineError, MappingTableError, SorTable, normalise_code
from repairs_gateway_sdk.model import Priority, parse_priority

REPAIR_TYPES = ("tenant", "communal", "leasehold")
OUTCOMES = ("emergency", "unable_to_book", "not_eligible", "contact_us")
MAX_LEVELS = 3
KEYS = {"value", "display", "options", "sor_code", "priority", "outcome"}
# N&S early-exit values and the outcome each stands for
NS_OUTCOMES = {
    "Emergency": "emergency",
    "UnableToBook": "unable_to_book",
    "NotEligibleNonEmergency": "not_eligible",
    "ContactUs": "contact_us",
}


@dataclass(frozen=True)
class TriageOption:
    value: str
    display: str
    options: tuple[TriageOption, ...] = ()
    sor_code: str | None = None
    priority: Priority | None = None
    outcome: str | None = None
    line: int | None = None

    @property
    def is_leaf(self) -> bool:
        return not self.options

    def child(self, value: str) -> TriageOption | None:
        for o in self.options:
            if o.value == value:
                return o
        return None


class TriageLookupError(ValueError):
    """A choice the tree does not have: names the query/body field at fault."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class TriageTree:
    repair_type: str
    options: tuple[TriageOption, ...]

    def resolve(self, location: str, problem: str, issue: str | None = None) -> TriageOption:
        """The leaf chosen by these values (exact, case-sensitive, as HRO matches them)."""
        loc = next((o for o in self.options if o.value == location), None)
        if loc is None:
            raise TriageLookupError(
                f"unknown repair location {location!r} for a {self.repair_type} repair",
                "repairLocation",
            )
        prob = loc.child(problem)
        if prob is None:
            raise TriageLookupError(
                f"unknown repair problem {problem!r} in {location!r}", "repairProblem"
            )
        if prob.is_leaf:
            if issue:
                raise TriageLookupError(
                    f"the problem {problem!r} has no issues to choose from", "repairIssue"
                )
            return prob
        if not issue:
            raise TriageLookupError(f"choose an issue for the problem {problem!r}", "repairIssue")
        leaf = prob.child(issue)
        if leaf is None:
            raise TriageLookupError(
                f"unknown repair issue {issue!r} for {location!r} / {problem!r}", "repairIssue"
            )
        if not leaf.is_leaf:
            raise TriageLookupError("the triage table is deeper than three levels", "repairIssue")
        return leaf

    def path_of(
        self, location: str, problem: str, issue: str | None
    ) -> tuple[TriageOption, TriageOption, TriageOption | None]:
        """The options (with their display text) along a resolved path."""
        self.resolve(location, problem, issue)
        loc = next(o for o in self.options if o.value == location)
        prob = loc.child(problem)
        assert prob is not None
        return loc, prob, (prob.child(issue) if issue else None)

    def leaves(self) -> Iterator[TriageOption]:
        def walk(opts: tuple[TriageOption, ...]) -> Iterator[TriageOption]:
            for o in opts:
                if o.is_leaf:
                    yield o
                else:
                    yield from walk(o.options)

        return walk(self.options)


@dataclass
class TriageSet:
    trees: dict[str, TriageTree] = field(default_factory=dict)
    source: str = "<triage>"

    def tree(self, repair_type: str) -> TriageTree | None:
        return self.trees.get(repair_type.lower())


# -- parsing -------------------------------------------------------------------------------


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _scalar(node: yaml.Node) -> str | None:
    if isinstance(node, yaml.ScalarNode):
        return str(node.value)
    return None


def _parse_options(
    node: yaml.Node, level: int, where: str, source: str, errors: list[LineError]
) -> tuple[TriageOption, ...]:
    if not isinstance(node, yaml.SequenceNode):
        errors.append(LineError(source, _line(node), where, "expected a list of options"))
        return ()
    if not node.value:
        errors.append(LineError(source, _line(node), where, "no options"))
        return ()
    result: list[TriageOption] = []
    seen: dict[str, int] = {}
    for item in node.value:
        opt = _parse_option(item, level, where, source, errors)
        if opt is None:
            continue
        if opt.value in seen:
            errors.append(
                LineError(
                    source,
                    _line(item),
                    f"{where}.value",
                    f"duplicate value {opt.value!r} (first on line {seen[opt.value]})",
                )
            )
            continue
        seen[opt.value] = _line(item)
        result.append(opt)
    return tuple(result)


def _parse_option(
    node: yaml.Node, level: int, parent: str, source: str, errors: list[LineError]
) -> TriageOption | None:
    line = _line(node)
    if not isinstance(node, yaml.MappingNode):
        errors.append(LineError(source, line, parent, "expected an option (value, display, ...)"))
        return None
    fields: dict[str, yaml.Node] = {}
    for k, v in node.value:
        key = _scalar(k) or ""
        if key not in KEYS:
            errors.append(
                LineError(source, _line(k), key, f"unknown key (one of {', '.join(sorted(KEYS))})")
            )
            continue
        fields[key] = v
    value = _scalar(fields["value"]) if "value" in fields else None
    display = _scalar(fields["display"]) if "display" in fields else None
    where = f"{parent}.{value}" if value else parent
    ok = True
    if not value or not value.strip():
        errors.append(LineError(source, line, "value", "every option needs a value"))
        ok = False
    if not display or not display.strip():
        errors.append(LineError(source, line, "display", "every option needs display text"))
        ok = False
    children: tuple[TriageOption, ...] = ()
    if "options" in fields:
        if level >= MAX_LEVELS:
            errors.append(
                LineError(
                    source, _line(fields["options"]), where, "at most three levels of options"
                )
            )
            ok = False
        else:
            children = _parse_options(fields["options"], level + 1, where, source, errors)
    sor = _scalar(fields["sor_code"]) if "sor_code" in fields else None
    outcome = _scalar(fields["outcome"]) if "outcome" in fields else None
    priority: Priority | None = None
    if "priority" in fields:
        text = _scalar(fields["priority"]) or ""
        try:
            priority = parse_priority(text)
        except ValueError:
            errors.append(
                LineError(source, _line(fields["priority"]), "priority", f"bad priority {text!r}")
            )
            ok = False
    if "options" in fields:
        if sor or outcome or priority:
            errors.append(
                LineError(
                    source,
                    line,
                    where,
                    "an option with options cannot also be a leaf (sor_code, priority, outcome)",
                )
            )
            ok = False
    elif level == 1:
        errors.append(LineError(source, line, where, "a location needs options (its problems)"))
        ok = False
    elif bool(sor) == bool(outcome):
        errors.append(
            LineError(source, line, where, "a leaf needs exactly one of sor_code and outcome")
        )
        ok = False
    elif outcome is not None and outcome not in OUTCOMES:
        errors.append(
            LineError(
                source,
                _line(fields["outcome"]),
                "outcome",
                f"unknown outcome {outcome!r} (one of {', '.join(OUTCOMES)})",
            )
        )
        ok = False
    elif outcome is not None and priority is not None:
        errors.append(LineError(source, line, where, "an early exit has no priority"))
        ok = False
    if not ok:
        return None
    assert value is not None and display is not None
    return TriageOption(
        value=value,
        display=display,
        options=children,
        sor_code=normalise_code(sor) if sor else None,
        priority=priority,
        outcome=outcome,
        line=line,
    )


def parse_triage(
    text: str, source: str = "<triage>", sor_table: SorTable | None = None
) -> tuple[TriageSet, list[LineError]]:
    """Parse a triage table; with ``sor_table``, also check every SoR code against it."""
    errors: list[LineError] = []
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return TriageSet(source=source), [
            LineError(source, mark.line + 1 if mark else 1, None, f"not valid YAML: {exc}")
        ]
    if not isinstance(root, yaml.MappingNode):
        return TriageSet(source=source), [
            LineError(source, 1, None, f"expected a mapping of {', '.join(REPAIR_TYPES)}")
        ]
    trees: dict[str, TriageTree] = {}
    for k, v in root.value:
        name = (_scalar(k) or "").lower()
        if name not in REPAIR_TYPES:
            errors.append(
                LineError(
                    source,
                    _line(k),
                    _scalar(k),
                    f"unknown repair type (one of {', '.join(REPAIR_TYPES)})",
                )
            )
            continue
        if name in trees:
            errors.append(LineError(source, _line(k), name, "repair type given twice"))
            continue
        trees[name] = TriageTree(name, _parse_options(v, 1, name, source, errors))
    if not trees and not errors:
        errors.append(LineError(source, 1, None, "no repair types"))
    result = TriageSet(trees, source)
    if sor_table is not None:
        errors.extend(check_sor_codes(result, sor_table))
    return result, errors


def check_sor_codes(triage: TriageSet, table: SorTable) -> list[LineError]:
    """Every leaf's SoR code must be in the council's SoR table and bookable online."""
    errors: list[LineError] = []
    for tree in triage.trees.values():
        for leaf in tree.leaves():
            if leaf.sor_code is None:
                continue
            mapping = table.get(leaf.sor_code)
            if mapping is None:
                errors.append(
                    LineError(
                        triage.source,
                        leaf.line or 1,
                        "sor_code",
                        f"SoR code {leaf.sor_code!r} is not in the SoR table {table.source}",
                    )
                )
            elif not mapping.enabled:
                errors.append(
                    LineError(
                        triage.source,
                        leaf.line or 1,
                        "sor_code",
                        f"SoR code {leaf.sor_code!r} is disabled in {table.source}",
                    )
                )
    return errors


def load_triage(path: Path, sor_table: SorTable | None = None) -> TriageSet:
    """Load a table, raising ``MappingTableError`` listing every problem."""
    triage, errors = parse_triage(path.read_text(encoding="utf-8-sig"), str(path), sor_table)
    if errors:
        raise MappingTableError(errors)
    return triage


# -- serving and writing -------------------------------------------------------------------


def option_to_dict(o: TriageOption) -> dict[str, Any]:
    """The standard form (as in the YAML file, snake_case)."""
    d: dict[str, Any] = {"value": o.value, "display": o.display}
    if o.options:
        d["options"] = [option_to_dict(c) for c in o.options]
    if o.sor_code:
        d["sor_code"] = o.sor_code
    if o.priority:
        d["priority"] = o.priority.value
    if o.outcome:
        d["outcome"] = o.outcome
    return d


def dump_triage(trees: dict[str, list[dict[str, Any]]]) -> str:
    return yaml.safe_dump(trees, sort_keys=False, allow_unicode=True, width=100)


# -- importing the Housing Repairs Online shapes --------------------------------------------


def _humanise(value: str) -> str:
    """``doorHangingOff`` -> ``Door hanging off`` (Redbridge's SoRConfig has no display text)."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", value).replace("_", " ").split()
    text = " ".join(words).lower()
    return text[:1].upper() + text[1:] if text else value


class ImportError_(ValueError):
    """An HRO configuration that cannot be imported; lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def import_redbridge(config: Any, displays: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Redbridge's ``SoRConfig.json``: ``{location: {problem: "SOR" | {issue: "SOR"}}}``."""
    problems: list[str] = []
    shown = displays or {}

    def option(value: str, body: Any, path: str, level: int) -> dict[str, Any] | None:
        d: dict[str, Any] = {"value": value, "display": shown.get(value) or _humanise(value)}
        if isinstance(body, str) and level > 1:
            d["sor_code"] = body.strip()
        elif isinstance(body, dict) and body and level < MAX_LEVELS:
            children = [option(k, v, f"{path}.{k}", level + 1) for k, v in body.items()]
            d["options"] = [c for c in children if c is not None]
        else:
            problems.append(f"{path}: expected an SoR code or an object of further choices")
            return None
        return d

    if not isinstance(config, dict) or not config:
        raise ImportError_(["expected an object of locations (Redbridge SoRConfig.json)"])
    result = [option(k, v, k, 1) for k, v in config.items()]
    if problems:
        raise ImportError_(problems)
    return [r for r in result if r is not None]


def import_ns(config: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """An N&S ``SOR_CONFIGURATION_*`` array; returns the tree and warnings (priorities the
    gateway does not know are left out, so the SoR table's priority applies)."""
    problems: list[str] = []
    warnings: list[str] = []

    def option(o: Any, path: str, level: int) -> dict[str, Any] | None:
        if not isinstance(o, dict) or not isinstance(o.get("value"), str):
            problems.append(f"{path}: expected an object with a value")
            return None
        value = o["value"]
        where = f"{path}.{value}" if path else value
        d: dict[str, Any] = {"value": value, "display": str(o.get("display") or value)}
        options = o.get("options")
        if options:
            if not isinstance(options, list) or level >= MAX_LEVELS:
                problems.append(f"{where}: options must be a list, at most three levels deep")
                return None
            kids = [option(c, where, level + 1) for c in options]
            d["options"] = [k for k in kids if k is not None]
            return d
        sor = o.get("sorCode")
        if sor:
            d["sor_code"] = str(sor).strip()
            pr = o.get("priority")
            if pr not in (None, ""):
                try:
                    d["priority"] = parse_priority(str(pr)).value
                except ValueError:
                    warnings.append(
                        f"{where}: priority {pr!r} is not one the gateway knows; left out "
                        "(the SoR table's priority applies)"
                    )
            return d
        if value in NS_OUTCOMES:
            d["outcome"] = NS_OUTCOMES[value]
            return d
        problems.append(f"{where}: a leaf needs a sorCode or an early-exit value")
        return None

    if not isinstance(config, list) or not config:
        raise ImportError_(["expected a JSON array of options (N&S SOR_CONFIGURATION_*)"])
    result = [option(o, "", 1) for o in config]
    if problems:
        raise ImportError_(problems)
    return [r for r in result if r is not None], warnings


def import_any(config: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """Either HRO shape, told apart by its JSON type (object: Redbridge, array: N&S)."""
    if isinstance(config, dict):
        return import_redbridge(config), []
    return import_ns(config)
