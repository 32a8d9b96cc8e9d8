"""The scaffold writes an adaptor that passes the suite, and an out-of-tree adaptor package
installed through its entry point serves a council through the API."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from contract_tests.structure import check_config
from gateway.scaffold import ScaffoldError, new_adaptor, render
from tests.contract.kit import REPO, SideEnv, output, run_kit, served_gateway

EXAMPLE = REPO / "examples" / "hello_adaptor"


@pytest.mark.parametrize(
    ("kind", "parts"),
    [
        ("hms", ["hms.py", "simulator/hms.py"]),
        ("scheduler", ["scheduling.py", "simulator/diary.py"]),
        ("both", ["hms.py", "scheduling.py", "simulator/hms.py", "simulator/diary.py"]),
    ],
)
def test_scaffold_renders_every_part(kind: str, parts: list[str]) -> None:
    files = render("acme_hms", kind)
    common = ["config.py", "client.py", "mapping.py", "base.py", "adaptor.py", "README.md"]
    for part in [*common, "contract.yaml", "simulator/__main__.py", *parts]:
        assert f"acme_hms/{part}" in files, part
    for test in ["__init__.py", "conftest.py", "test_adaptor.py", "test_contract.py"]:
        assert f"acme_hms/tests/{test}" in files, test  # the tests inside the folder
    assert 'exclude = ["acme_hms.tests", "acme_hms.tests.*"]' in files["pyproject.toml"]
    assert 'acme_hms = "acme_hms:AcmeHmsAdaptor"' in files["pyproject.toml"]
    # only the SDK: no gateway, no FastAPI, no SQLAlchemy
    assert 'dependencies = ["repairs-gateway-sdk>=1.0,<2"]' in files["pyproject.toml"]
    generated = "\n".join(files.values())
    for heavy in ("gateway.", "fastapi", "sqlalchemy", "contract_tests"):
        assert f"import {heavy}" not in generated and f"from {heavy}" not in generated
    other = {"hms": "scheduling.py", "scheduler": "hms.py"}.get(kind)
    assert other is None or f"acme_hms/{other}" not in files


def test_scaffold_refuses_an_unknown_kind() -> None:
    with pytest.raises(ScaffoldError, match="--kind must be one of hms, scheduler, both"):
        render("acme_hms", "crm")


@pytest.mark.parametrize("bad", ["Acme", "1acme", "acme-hms", "json", "class", "x"])
def test_scaffold_refuses_bad_names(bad: str) -> None:
    with pytest.raises(ScaffoldError):
        render(bad)


def test_scaffold_does_not_overwrite(tmp_path: Path) -> None:
    new_adaptor("acme_hms", tmp_path)
    with pytest.raises(ScaffoldError, match="already exists"):
        new_adaptor("acme_hms", tmp_path)


@pytest.mark.parametrize(("kind", "passed"), [("hms", 16), ("scheduler", 16), ("both", 26)])
def test_scaffold_output_passes_the_suite(
    tmp_path: Path, side_env: SideEnv, kind: str, passed: int
) -> None:
    name = f"acme_{kind}"
    new_adaptor(name, tmp_path, kind=kind)
    project = tmp_path / name
    side_env.install(project)
    config = project / name / "contract.yaml"
    done = run_kit("--adaptor-config", str(config), python=side_env.python, cwd=tmp_path)
    assert done.returncode == 0, output(done)
    assert f"{passed} passed" in done.stdout and "exempt" not in done.stdout, output(done)
    # the generated tests run too (the adaptor against its simulator; structure in-process,
    # the kit in a subprocess), found through the package's testpaths (NAME/tests)
    done = subprocess.run(  # noqa: S603
        [side_env.python, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, output(done)


def test_scaffold_cli_takes_the_kind(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gateway.cli import app as cli

    done = CliRunner().invoke(
        cli, ["new-adaptor", "acme_diary", "--kind", "scheduler", "--dest", str(tmp_path)]
    )
    assert done.exit_code == 0, done.output
    # it says what to do next: install the package with its test extra and run its tests
    assert "pip install -e" in done.output and "acme_diary/tests" in done.output
    assert (tmp_path / "acme_diary" / "acme_diary" / "scheduling.py").is_file()
    assert not (tmp_path / "acme_diary" / "acme_diary" / "hms.py").exists()


def test_out_of_tree_adaptor_through_its_entry_point(tmp_path: Path, side_env: SideEnv) -> None:
    source = tmp_path / "hello_src"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    side_env.install(source)
    # the suite sees it through the entry point, like any in-tree adaptor
    cfg = source / "hello_adaptor" / "contract.yaml"
    done = run_kit("--adaptor-config", str(cfg), python=side_env.python, cwd=tmp_path)
    assert done.returncode == 0, output(done)
    # and a council routed to it answers through the standard API
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "sor.csv").write_text((REPO / "mappings/examples/demo-sor.csv").read_text())
    hello = yaml.safe_load(cfg.read_text())
    council = {
        "name": "Hello Borough Council",
        "mappings": "sor.csv",
        "adaptors": {"hello_hms": {"type": "hello", "options": hello["options"]}},
        "routes": {"addresses": "hello_hms"},
    }
    (config_dir / "hello.yaml").write_text(yaml.safe_dump(council))
    with served_gateway(config_dir, tmp_path / "data", "hello", python=side_env.python) as gw:
        import httpx

        r = httpx.get(
            f"{gw.base_url}/v1/councils/hello/addresses",
            params={"postcode": "ex11aa"},
            headers={"Authorization": f"Bearer {gw.key}"},
            timeout=30,
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["postcode"] == "EX1 1AA"
    assert [a["id"] for a in body["addresses"]] == ["000001", "000002"]
    assert body["addresses"][0]["address_lines"][0] == "hi: 1 Example Road", json.dumps(body)


def test_structural_checks_catch_a_loose_config() -> None:
    from pydantic import BaseModel

    from repairs_gateway_sdk.adaptor import AddressSource

    class Loose(BaseModel):
        password: str

    class Bad(AddressSource):
        type_name = "bad"
        Config = Loose  # type: ignore[assignment]

    problems = "\n".join(check_config(Bad))
    assert "must forbid unknown keys" in problems and "password looks like a secret" in problems
