"""The simulator, the adaptor and the folder's openapi.yaml describe the same API."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from fastapi.routing import APIRoute

from adaptors.totalmobile.simulator.app import create_app, op_for

from .conftest import make_adaptor

HERE = Path(__file__).resolve().parents[1]  # the adaptor's folder
DOC = yaml.safe_load((HERE / "openapi.yaml").read_text())
METHODS = {"get", "post", "put", "patch", "delete"}


def documented() -> set[tuple[str, str]]:
    return {(m.upper(), path) for path, item in DOC["paths"].items() for m in item if m in METHODS}


def test_simulator_routes_match_the_document() -> None:
    app = create_app()
    served = {
        (m, r.path)
        for r in app.routes
        if isinstance(r, APIRoute) and r.include_in_schema
        for m in (r.methods or ())
        if m != "HEAD"
    }
    assert served == documented()


def test_operation_ids_name_the_simulator_fault_points() -> None:
    for path, item in DOC["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        for method, op in item.items():
            if method in METHODS:
                assert op_for(method.upper(), concrete) == op["operationId"], (method, path)


async def test_adaptor_paths_are_documented(tmp_path: Path) -> None:
    a = make_adaptor(tmp_path, "https://tm.example")
    await a.close()
    templates = [re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$") for p in DOC["paths"]]
    used = [
        a.client.tokens._url,
        a.client.jobs_path,
        f"{a.client.jobs_path}/GW-1",
        f"{a.client.sc_path}/Availability/Browse",
        f"{a.client.sc_path}/Booking",
    ]
    for path in used:
        assert any(t.match(path) for t in templates), path


def test_document_is_openapi_3_1_with_schemas_resolving() -> None:
    assert DOC["openapi"].startswith("3.1")
    text = (HERE / "openapi.yaml").read_text()
    for ref in set(re.findall(r'\$ref: "#/components/(\w+)/(\w+)"', text)):
        assert ref[1] in DOC["components"][ref[0]], ref


def test_readme_example_is_a_valid_configuration() -> None:
    from adaptors.totalmobile import TotalmobileConfig

    text = (HERE / "README.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    council = yaml.safe_load(block)
    opts = dict(council["adaptors"]["tm"]["options"])
    opts["client_secret"] = "from-the-environment"
    config = TotalmobileConfig.model_validate(opts)
    assert config.work_type_map["carpentry"].work_type == "CARPENTRY"  # type: ignore[index]
    assert config.work_type_map["gas"].skills == ["GAS-SAFE"]  # type: ignore[index]
    assert "from-the-environment" not in repr(config)
