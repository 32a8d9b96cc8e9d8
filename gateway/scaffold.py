"""``repairs-gateway new-adaptor NAME --kind hms|scheduler|both``: write a working adaptor.

The result is an installable package depending only on the SDK (its own ``pyproject.toml``
registering the adaptor in the ``repairs_gateway.adaptors`` entry-point group) with a config
schema, a transport client, a mapping module, one part per capability, a simulator speaking a
small JSON protocol over HTTP (``python -m NAME.simulator --port N``), a README of its options,
a contract configuration and its own tests inside the package folder (``NAME/tests``: the
simulator started on a free port, the adaptor against it, the kit), so that it passes the
contract kit from the first minute:

- ``hms``: an address source and works-order sink (a housing management system);
- ``scheduler``: availability in pages, book, reschedule, cancel and status, idempotent by
  the gateway's reference;
- ``both``: all of it against one backend.

    repairs-gateway new-adaptor acme_hms --kind hms --dest .
    pip install -e './acme_hms[test]'
    pytest acme_hms/acme_hms/tests
"""

from __future__ import annotations

import keyword
import re
import sys
import textwrap
from pathlib import Path
from string import Template

TEMPLATES = Path(__file__).resolve().parent / "scaffold_templates"
NAME = re.compile(r"^[a-z][a-z0-9_]{1,40}$")
KINDS = ("hms", "scheduler", "both")

# template file -> where it goes, relative to the new project directory ({name} substituted)
LAYOUT: dict[str, str] = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "init.py.tmpl": "{name}/__init__.py",
    "config.py.tmpl": "{name}/config.py",
    "client.py.tmpl": "{name}/client.py",
    "mapping.py": "{name}/mapping.py",  # composed: mapping_common + the kind's sections
    "base.py.tmpl": "{name}/base.py",
    "adaptor.py.tmpl": "{name}/adaptor.py",
    "simulator_init.py.tmpl": "{name}/simulator/__init__.py",
    "simulator_main.py.tmpl": "{name}/simulator/__main__.py",
    "README.md.tmpl": "{name}/README.md",
    "contract.yaml.tmpl": "{name}/contract.yaml",
    # the adaptor's own tests, inside its folder (as in-tree: adaptors/<name>/tests)
    "tests_init.py.tmpl": "{name}/tests/__init__.py",
    "conftest.py.tmpl": "{name}/tests/conftest.py",
    "test_adaptor.py.tmpl": "{name}/tests/test_adaptor.py",
    "test_contract.py.tmpl": "{name}/tests/test_contract.py",
}
# per side of the backend: the adaptor's part and the simulator's
HMS_FILES = {"hms.py.tmpl": "{name}/hms.py", "simulator_hms.py.tmpl": "{name}/simulator/hms.py"}
SCHEDULER_FILES = {
    "scheduling.py.tmpl": "{name}/scheduling.py",
    "simulator_diary.py.tmpl": "{name}/simulator/diary.py",
}

HMS_FIXTURES = """\
  postcode: LN2 5DQ               # has properties, one of them not reportable online
  property_id: "00012001"
  unknown_property_id: "99999999"
"""
SCHEDULER_FIXTURES = """\
  property_id: "00012001"
  property:
    uprn: "100030012001"
    address_lines: ["Flat 1, Rosemary Court", "14 Monks Road", "Lincoln"]
    postcode: LN2 5DQ
  page_size: 3
  max_places_per_slot: 3          # plumbing has two operatives per slot
"""
JOB_FIXTURE = "  job: {sor_code: N631111, trade: plumbing, size: small}\n"

HMS_ROUTES = """\
- `GET /properties?postcode=LN2 5DQ` the properties there; `GET /properties/{id}` one
  (404 if unknown); `GET /properties/{id}/alerts` its operative alerts
- `POST /works-orders` `{reference, property_id, sor_code, trade, priority, description,
  contact_phone, appointment_start, appointment_end, source}`: 201 with its `id`; the same
  reference again answers the order already raised (200); 422 `unknown-property`
- `GET /works-orders?reference=R`; `POST /works-orders/{id}/cancel` (twice is once)
"""
SCHEDULER_ROUTES = """\
- `GET /availability?location=&trade=&minutes=&from=YYYY-MM-DD&days=&limit=&after=SLOT_ID`:
  `{slots: [{id, start, end, places}], more}`, slots with places left, in time order
- `POST /bookings` `{reference, slot_id, location, trade, minutes, description, phone}`: 201;
  the same reference again answers the booking already made (200); 409 `slot-full`, 422
  `unknown-slot`
- `GET /bookings/{reference}`; `POST /bookings/{reference}/move` `{slot_id}` (409 keeps the
  old slot); `POST /bookings/{reference}/cancel` (twice is once, 404 if never booked)
"""


class ScaffoldError(ValueError):
    pass


def class_name(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def check_name(name: str) -> None:
    if not NAME.match(name) or keyword.iskeyword(name) or name.endswith("_"):
        raise ScaffoldError(
            f"{name!r} is not a valid adaptor name: use lower case letters, digits and "
            "underscores, starting with a letter (e.g. acme_hms)"
        )
    if name in sys.stdlib_module_names or name in {"adaptors", "gateway", "mappings", "tests"}:
        raise ScaffoldError(f"{name!r} would shadow an existing module; choose another name")


def _kind_values(name: str, kind: str, cls: str) -> dict[str, str]:
    """What differs between the kinds, as template values."""
    hms, sched = kind in ("hms", "both"), kind in ("scheduler", "both")
    parts = ([("hms", f"{cls}Records")] if hms else []) + (
        [("scheduling", f"{cls}Diary")] if sched else []
    )
    texts = (
        ["properties at a postcode and works orders in a housing management system"] if hms else []
    ) + (
        ["appointment slots, bookings, moves, cancellations and status from a scheduler"]
        if sched
        else []
    )
    caps = (
        ["**addresses** (AddressSource)", "**works_orders** (WorksOrderSink)"] if hms else []
    ) + (["**appointments** and **bookings** (Scheduler)"] if sched else [])
    config_fields = ""
    readme_options = ""
    example_options = ""
    routes = []
    layout = ""
    if hms:
        config_fields += (
            "    source_system: str = Field(\n"
            '        default="REPAIRSGW", min_length=1, description="recorded on works orders"\n'
            "    )\n"
        )
        readme_options += (
            "| `source_system` | `REPAIRSGW` | recorded on every works order as where it "
            "came from |\n"
        )
        example_options += "      source_system: REPAIRSGW\n"
        routes += [f"  addresses: {name}", f"  works_orders: {name}"]
        layout += (
            "- `hms.py` the housing management part: properties (AddressSource) and works "
            "orders (WorksOrderSink)\n"
        )
    if sched:
        config_fields += (
            '    search_days: int = Field(default=28, ge=1, le=90, description="horizon")\n'
            "    lead_time_days: int = Field(\n"
            '        default=1, ge=0, le=30, description="first bookable day: today + this"\n'
            "    )\n"
        )
        readme_options += (
            "| `search_days` | 28 | how many days from the first bookable day slots are "
            "searched |\n"
            "| `lead_time_days` | 1 | the first bookable day is today + this (or the day "
            "asked for, if later) |\n"
        )
        example_options += "      search_days: 28\n"
        routes += [f"  appointments: {name}"]
        layout += (
            "- `scheduling.py` the scheduling part (Scheduler): availability in pages, book, "
            "reschedule, cancel, status\n"
        )
    model_names = set()
    error_names = {"BackendRejected", "GatewayError", "InvalidInput", "NotFound", "SlotUnavailable"}
    extra_imports = []
    if hms:
        model_names |= {"Property", "PropertyKind", "WorksOrder"}
        extra_imports.append("from repairs_gateway_sdk.postcodes import normalise_postcode")
    if sched:
        model_names |= {
            "BookingConfirmation",
            "Property",
            "RepairStatus",
            "SchedulerStatus",
            "Trade",
            "VendorSlot",
        }
        extra_imports.append("from repairs_gateway_sdk.slots import label_for")
    mapping_imports = "\n".join(
        [
            "from repairs_gateway_sdk.errors import (\n"
            + "".join(f"    {n},\n" for n in sorted(error_names))
            + ")",
            "from repairs_gateway_sdk.model import (\n"
            + "".join(f"    {n},\n" for n in sorted(model_names))
            + ")",
            *sorted(extra_imports),
        ]
    )
    fixtures = (HMS_FIXTURES if hms else "") + (
        SCHEDULER_FIXTURES.replace('  property_id: "00012001"\n', "") if hms and sched else ""
    )
    if sched and not hms:
        fixtures = SCHEDULER_FIXTURES
    sims = (["hms"] if hms else []) + (["diary"] if sched else [])
    return {
        "kind": kind,
        "kind_text": " and ".join(texts),
        "capabilities": ", ".join(caps),
        "part_list": ", ".join(f"`{m}.py`" for m, _ in parts),
        "adaptor_imports": "\n".join(
            f"from .{m} import {c}" for m, c in sorted([("config", f"{cls}Config"), *parts])
        ),
        "kind_doc": textwrap.fill(" and ".join(texts), 92),
        "adaptor_bases": ", ".join(c for _, c in parts),
        "config_fields": config_fields,
        "readme_options": readme_options,
        "example_options": example_options,
        "example_routes": "\n".join(routes),
        "layout_parts": layout,
        "short": name,
        "mapping_stdlib": "from datetime import datetime\n" if sched else "",
        "mapping_imports": mapping_imports,
        "contract_fixtures": fixtures + JOB_FIXTURE,
        "sim_imports": "from . import " + ", ".join(sorted(sims)) + "  # the backend's parts",
        "sim_routes": ", ".join(f"{m}.route" for m in sims),
        "route_docs": (HMS_ROUTES if hms else "") + (SCHEDULER_ROUTES if sched else ""),
    }


def render(name: str, kind: str = "hms") -> dict[str, str]:
    """Relative path -> file text for adaptor ``name`` of ``kind`` (hms, scheduler, both)."""
    check_name(name)
    if kind not in KINDS:
        raise ScaffoldError(f"--kind must be one of {', '.join(KINDS)} (got {kind!r})")
    cls = class_name(name)
    values = {
        "name": name,
        "class_name": cls,
        "dist_name": f"repairs-gateway-{name.replace('_', '-')}",
        "upper": name.upper(),
        **_kind_values(name, kind, cls),
    }
    layout = dict(LAYOUT)
    if kind in ("hms", "both"):
        layout.update(HMS_FILES)
    if kind in ("scheduler", "both"):
        layout.update(SCHEDULER_FILES)

    def fill(template: str) -> str:
        return Template((TEMPLATES / template).read_text(encoding="utf-8")).substitute(values)

    out: dict[str, str] = {}
    for template, target in layout.items():
        if template == "mapping.py":
            text = fill("mapping_common.py.tmpl")
            if kind in ("hms", "both"):
                text += fill("mapping_hms.py.tmpl")
            if kind in ("scheduler", "both"):
                text += fill("mapping_scheduler.py.tmpl")
        else:
            text = fill(template)
        out[target.format(name=name)] = text
    return out


def new_adaptor(name: str, dest: Path, *, kind: str = "hms", force: bool = False) -> list[Path]:
    """Write the adaptor package to ``dest/name``; returns the files written."""
    files = render(name, kind)
    root = dest / name
    if root.exists() and any(root.iterdir()) and not force:
        raise ScaffoldError(f"{root} already exists and is not empty (use --force to overwrite)")
    written = []
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def next_steps(name: str, dest: Path) -> str:
    root = dest / name
    return f"next: pip install -e '{root}[test]' && pytest {root / name / 'tests'}"
