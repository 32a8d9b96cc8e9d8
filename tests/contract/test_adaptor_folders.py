"""Each in-tree adaptor folder is a package of its own in waiting: it imports only itself, the
SDK and the third-party packages its README declares (its own tests, in ``tests/``, the test
libraries too), carries its contract configuration and its tests, and passes the kit and its
own tests when copied out under another name and installed."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from tests.contract.kit import ADAPTORS, SideEnv, contract_config, output, run_kit

IN_TREE = ["civica_uh", "csv_fallback", "kirona_drs", "totalmobile"]

# what the SDK brings: its own dependencies, and each extra's
SDK_CORE = {"repairs_gateway_sdk", "pydantic", "httpx"}
SDK_EXTRAS = {
    "soap": {"zeep", "lxml"},
    "store": {"sqlalchemy", "aiosqlite"},
    "simulator": {"starlette", "uvicorn"},
}
# what an adaptor's own tests (adaptors/<name>/tests) may import besides: the SDK's testing
# extra (pytest, PyYAML) and respx
TEST_LIBRARIES = {"pytest", "yaml", "respx"}
SDK_LINE = re.compile(
    r"^SDK: targets repairs-gateway-sdk (?P<major>\d+)\.x \(`>=(?P<low>[\d.]+),<(?P<high>\d+)`\)"
    r"(?:, extras? (?P<extras>[a-z ,]+?))?(?:; also needs (?P<needs>[^.]+))?\.$",
    re.MULTILINE,
)


def _words(text: str | None) -> set[str]:
    return {w for w in re.split(r"[ ,]+|\band\b", re.sub(r"\(.*?\)", "", text or "")) if w}


def declared(adaptor: str) -> tuple[set[str], set[str]]:
    """(SDK extras, other packages) from the README's one SDK line."""
    readme = (ADAPTORS / adaptor / "README.md").read_text(encoding="utf-8")
    m = SDK_LINE.search(readme)
    assert m, (
        f"adaptors/{adaptor}/README.md has no line 'SDK: targets repairs-gateway-sdk 1.x "
        "(`>=1.0,<2`), extras ...; also needs ...'"
    )
    return _words(m.group("extras")), _words(m.group("needs"))


def imports(folder: Path) -> dict[str, set[str]]:
    """Top-level module -> files importing it (absolute imports only)."""
    found: dict[str, set[str]] = {}
    for f in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                found.setdefault(name, set()).add(str(f.relative_to(folder)))
    return found


@pytest.mark.parametrize("adaptor", IN_TREE)
def test_folder_imports_only_itself_the_sdk_and_what_its_readme_declares(adaptor: str) -> None:
    extras, needs = declared(adaptor)
    unknown_extras = extras - set(SDK_EXTRAS)
    assert not unknown_extras, f"README names SDK extras that do not exist: {unknown_extras}"
    allowed = SDK_CORE | needs | {m for e in extras for m in SDK_EXTRAS[e]}
    problems = []
    for name, files in imports(ADAPTORS / adaptor).items():
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top == "__future__":
            continue
        if top == "adaptors":
            if not (name == f"adaptors.{adaptor}" or name.startswith(f"adaptors.{adaptor}.")):
                problems.append(f"{name} (outside the folder) in {sorted(files)}")
            continue
        in_tests = all(f.startswith("tests/") for f in files)
        if top not in allowed and not (top in TEST_LIBRARIES and in_tests):
            problems.append(f"{top} (not declared in the README's SDK line) in {sorted(files)}")
    assert not problems, f"adaptors/{adaptor}: " + "; ".join(problems)


@pytest.mark.parametrize("adaptor", IN_TREE)
def test_contract_config_is_in_the_folder(adaptor: str) -> None:
    config = contract_config(adaptor)
    assert config.is_file(), f"{config} is missing"
    text = config.read_text(encoding="utf-8")
    assert "../" not in text, f"{config} reaches outside its folder"


def copy_as(adaptor: str, new: str, dest: Path) -> Path:
    """adaptors/<adaptor> as the package ``new``: imports, type name, contract config and an
    own pyproject.toml (dependencies from the README's SDK line, the entry point)."""
    (ep,) = [e for e in entry_points(group="repairs_gateway.adaptors") if e.name == adaptor]
    class_name = ep.value.split(":")[1]
    root = dest / f"{new}_src"
    shutil.copytree(
        ADAPTORS / adaptor, root / new, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    for f in (root / new).rglob("*"):
        if f.suffix not in (".py", ".yaml", ".md"):
            continue
        text = f.read_text(encoding="utf-8")
        text = text.replace(f"adaptors.{adaptor}", new).replace(f"adaptors/{adaptor}", new)
        text = re.sub(rf'\btype_name = "{adaptor}"', f'type_name = "{new}"', text)
        text = re.sub(rf"^type: {adaptor}$", f"type: {new}", text, flags=re.MULTILINE)
        f.write_text(text, encoding="utf-8")
    extras, needs = declared(adaptor)
    deps = [f"repairs-gateway-sdk[{','.join(sorted(extras))}]>=1.0,<2", *sorted(needs)]
    (root / "pyproject.toml").write_text(
        f"""[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "repairs-gateway-{new.replace("_", "-")}"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = {deps!r}

[project.entry-points."repairs_gateway.adaptors"]
{new} = "{new}:{class_name}"

[tool.setuptools.packages.find]
include = ["{new}*"]

[tool.setuptools.package-data]
"*" = ["*.md", "*.yaml", "*.csv", "*.wsdl", "*.xsd"]

[tool.pytest.ini_options]
testpaths = ["{new}/tests"]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
""".replace("'", '"'),
        encoding="utf-8",
    )
    return root


def test_kirona_drs_copied_as_another_package_passes_the_kit(
    tmp_path: Path, side_env: SideEnv
) -> None:
    root = copy_as("kirona_drs", "acme_drs", tmp_path)
    side_env.install(root)
    config = root / "acme_drs" / "contract.yaml"
    assert "acme_drs.simulator" in config.read_text() and "kirona" not in config.read_text()
    done = run_kit("--adaptor-config", str(config), python=side_env.python, cwd=tmp_path)
    assert done.returncode == 0, output(done)
    assert "acme_drs is not an AddressSource" in done.stdout, output(done)  # the copy ran
    assert " passed" in done.stdout, output(done)
    assert "failed" not in done.stdout.splitlines()[-1], output(done)
    # the folder's own tests came with it, and pass against the copy and its simulator
    own = subprocess.run(  # noqa: S603 - our interpreter, our arguments
        [side_env.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:schemathesis"],
        cwd=root,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert own.returncode == 0, output(own)
    summary = own.stdout.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) > 50 and "failed" not in summary, output(own)
