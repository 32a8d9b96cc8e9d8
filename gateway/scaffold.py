"""``repairs-gateway new-adaptor NAME``: write a working adaptor skeleton.

The skeleton is an installable package (its own ``pyproject.toml`` registering the adaptor in
the ``repairs_gateway.adaptors`` entry-point group) with a config schema, a transport client,
a vocabulary mapping, a simulator stub, a README of its options and a contract configuration
and test, so that it passes the contract suite from the first minute:

    repairs-gateway new-adaptor acme_hms --dest .
    pip install -e ./acme_hms
    pytest -p contract_tests.plugin --adaptor-config acme_hms/acme_hms/contract.yaml
"""

from __future__ import annotations

import argparse
import keyword
import re
import sys
from pathlib import Path
from string import Template

TEMPLATES = Path(__file__).resolve().parent / "scaffold_templates"
NAME = re.compile(r"^[a-z][a-z0-9_]{1,40}$")

# template file -> where it goes, relative to the new project directory ({name} substituted)
LAYOUT: dict[str, str] = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "init.py.tmpl": "{name}/__init__.py",
    "config.py.tmpl": "{name}/config.py",
    "client.py.tmpl": "{name}/client.py",
    "mapping.py.tmpl": "{name}/mapping.py",
    "adaptor.py.tmpl": "{name}/adaptor.py",
    "simulator_init.py.tmpl": "{name}/simulator/__init__.py",
    "simulator_main.py.tmpl": "{name}/simulator/__main__.py",
    "README.md.tmpl": "{name}/README.md",
    "contract.yaml.tmpl": "{name}/contract.yaml",
    "test_contract.py.tmpl": "tests/test_contract.py",
}


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


def render(name: str) -> dict[str, str]:
    """Relative path -> file text for adaptor ``name``."""
    check_name(name)
    values = {
        "name": name,
        "class_name": class_name(name),
        "dist_name": f"repairs-gateway-{name.replace('_', '-')}",
        "upper": name.upper(),
    }
    out: dict[str, str] = {}
    for template, target in LAYOUT.items():
        text = (TEMPLATES / template).read_text(encoding="utf-8")
        out[target.format(name=name)] = Template(text).substitute(values)
    return out


def new_adaptor(name: str, dest: Path, *, force: bool = False) -> list[Path]:
    """Write the skeleton to ``dest/name``; returns the files written."""
    files = render(name)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="repairs-gateway new-adaptor", description="write a working adaptor skeleton"
    )
    parser.add_argument("name", help="adaptor type name, e.g. acme_hms")
    parser.add_argument("--dest", type=Path, default=Path("."), help="parent directory")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    args = parser.parse_args(argv)
    try:
        written = new_adaptor(args.name, args.dest, force=args.force)
    except ScaffoldError as exc:
        print(exc, file=sys.stderr)
        return 1
    for path in written:
        print(path)
    print(
        f"next: pip install -e {args.dest / args.name} && pytest -p contract_tests.plugin "
        f"--adaptor-config {args.dest / args.name / args.name / 'contract.yaml'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
