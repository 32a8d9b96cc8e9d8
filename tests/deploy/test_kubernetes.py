"""The Kubernetes manifests a council applies: rendered with `kubectl kustomize` and checked
against the Kubernetes schemas offline (kubernetes-validate), then for what matters to run
it safely: restricted pod security, probes on the health endpoints, pinned images, no
literal secrets, migrations before serving, and a council configuration that is valid."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from gateway.cli import app as cli
from gateway.settings import looks_like_placeholder
from tests.gatewaykit import DEMO_CONFIG

REPO = Path(__file__).resolve().parents[2]
KUBE = REPO / "deploy" / "kubernetes"
PRODUCTION = KUBE / "overlays" / "production"
K8S_VERSION = "1.30"  # the oldest Kubernetes these manifests are meant for
SECRET_NAME = "repairs-gateway-secrets"
SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|KEY|DATABASE_URL|CREDENTIAL", re.IGNORECASE)


def render(path: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed: `kubectl kustomize` renders the manifests")
    out = subprocess.run(  # noqa: S603
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.fixture(scope="module")
def production() -> list[dict[str, Any]]:
    return render(PRODUCTION)


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def deployment(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(d for d in of_kind(docs, "Deployment") if d["metadata"]["name"] == name)


def pod_specs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Deployment", "Job")]


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


@pytest.mark.parametrize("overlay", [KUBE / "base", PRODUCTION], ids=["base", "production"])
def test_every_resource_is_valid_against_the_kubernetes_schemas(overlay: Path) -> None:
    import kubernetes_validate

    docs = render(overlay)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # raises on any error
    example = yaml.safe_load((PRODUCTION / "secret.example.yaml").read_text())
    kubernetes_validate.validate(example, K8S_VERSION, strict=True)


def test_the_production_overlay_has_the_whole_topology(production: list[dict[str, Any]]) -> None:
    kinds = {d["kind"] for d in production}
    assert {
        "Namespace",
        "Deployment",
        "Service",
        "Ingress",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ConfigMap",
        "PersistentVolumeClaim",
    } <= kinds
    ns = of_kind(production, "Namespace")[0]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"

    api = deployment(production, "repairs-gateway")
    assert api["spec"]["replicas"] >= 2
    gateway = api["spec"]["template"]["spec"]["containers"][0]
    assert gateway["args"][:2] == ["serve", "--no-worker"]
    worker = deployment(production, "repairs-gateway-worker")
    assert worker["spec"]["template"]["spec"]["containers"][0]["args"][0] == "worker"
    for d in (api, worker):  # migrations first (advisory lock: pods starting together are safe)
        inits = d["spec"]["template"]["spec"]["initContainers"]
        assert [c["args"] for c in inits] == [["migrate"]]

    hpa = of_kind(production, "HorizontalPodAutoscaler")[0]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "repairs-gateway"
    assert hpa["spec"]["minReplicas"] >= 2
    api_labels = api["spec"]["template"]["metadata"]["labels"]
    pdbs = of_kind(production, "PodDisruptionBudget")
    assert any(p["spec"]["selector"]["matchLabels"].items() <= api_labels.items() for p in pdbs)
    policy = of_kind(production, "NetworkPolicy")[0]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= api_labels.items()
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    service = of_kind(production, "Service")[0]
    assert service["spec"]["selector"].items() <= api_labels.items()


def test_pods_meet_the_restricted_pod_security_standard(production: list[dict[str, Any]]) -> None:
    for pod in pod_specs(production):
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] != 0
        assert psc["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod.get("automountServiceAccountToken") is False
        assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
        volumes = {v["name"]: v for v in pod["volumes"]}
        for c in containers(pod):
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True, c["name"]
            assert sc["allowPrivilegeEscalation"] is False, c["name"]
            assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add")
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", c["name"]
            assert sc["readOnlyRootFilesystem"] is True, c["name"]
            assert not sc.get("privileged")
            for m in c.get("volumeMounts", []):
                if not m.get("readOnly"):  # every writable path is an emptyDir
                    assert "emptyDir" in volumes[m["name"]], (c["name"], m)
            assert "memory" in c["resources"]["limits"]


def test_probes_use_the_health_endpoints(production: list[dict[str, Any]]) -> None:
    pod = deployment(production, "repairs-gateway")["spec"]["template"]["spec"]
    gateway = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in gateway["ports"]}
    assert gateway["args"][gateway["args"].index("--port") + 1] == str(ports["http"])
    for probe, path in (
        ("startupProbe", "/health/live"),
        ("livenessProbe", "/health/live"),
        ("readinessProbe", "/health/ready"),
    ):
        assert gateway[probe]["httpGet"] == {"path": path, "port": "http"}, probe
    worker = deployment(production, "repairs-gateway-worker")["spec"]["template"]["spec"]
    assert "livenessProbe" in worker["containers"][0]


def test_images_are_pinned(production: list[dict[str, Any]]) -> None:
    images = [c["image"] for pod in pod_specs(production) for c in containers(pod)]
    assert images
    for image in images:
        name, _, tag = image.rpartition(":") if "@" not in image else (image, "", "digest")
        assert name and tag and tag != "latest", image
    assert len(set(images)) == 1  # migrate, serve and worker from one release


def test_no_literal_secrets(production: list[dict[str, Any]]) -> None:
    assert not of_kind(production, "Secret")  # the council creates it; only an example ships
    for pod in pod_specs(production):
        for c in containers(pod):
            refs = [e["secretRef"]["name"] for e in c.get("envFrom", []) if "secretRef" in e]
            assert refs == [SECRET_NAME], c["name"]
            for env in c.get("env", []):
                assert "value" not in env or not SECRETISH.search(env["name"]), env
    for cm in of_kind(production, "ConfigMap"):
        for key, value in cm.get("data", {}).items():
            assert not SECRETISH.search(key), key
            for line in value.splitlines():  # council files name ${VARIABLES}, never values
                m = re.match(r"\s*(\w*(password|secret)\w*):\s*(\S+)", line, re.IGNORECASE)
                if m:
                    assert m.group(3).startswith("${"), line
    example = yaml.safe_load((PRODUCTION / "secret.example.yaml").read_text())
    assert example["metadata"]["name"] == SECRET_NAME
    for key, value in example["stringData"].items():
        assert looks_like_placeholder(value), f"{key} in the example must be a placeholder"


def test_ingress_exposes_only_the_api(production: list[dict[str, Any]]) -> None:
    ingress = of_kind(production, "Ingress")[0]
    paths = [p["path"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]]
    assert "/v1" in paths
    assert not [p for p in paths if p in ("/", "/metrics") or p.startswith("/health")]
    assert ingress["spec"]["tls"]


def test_the_council_configmap_is_a_valid_configuration(
    production: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    councils = next(
        cm
        for cm in of_kind(production, "ConfigMap")
        if cm["metadata"]["name"].startswith("repairs-gateway-councils")
    )
    pod = deployment(production, "repairs-gateway")["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_volume = next(n for n, v in volumes.items() if "configMap" in v)
    assert mounts[config_volume] == "/config"
    assert councils["metadata"]["name"] == volumes[config_volume]["configMap"]["name"]
    properties = tmp_path / "properties"
    properties.mkdir()
    shutil.copy(DEMO_CONFIG / "demo-properties.csv", properties / "properties.csv")
    config = tmp_path / "config"
    config.mkdir()
    for name, text in councils["data"].items():
        (config / name).write_text(text.replace(mounts["properties"] + "/", f"{properties}/"))
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(cli, ["check", "--config-dir", str(config)])
    assert result.exit_code == 0, result.output
    assert "configuration is valid" in result.output
