"""The Kubernetes manifests in deploy/k8s: valid against the 1.30 API schemas (offline, strict: an
unknown or misspelled field fails), and consistent with each other and with the CLI they run."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from visionloop.config import load_settings

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="validating the manifests needs kubernetes-validate (the dev extra)"
)

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30.0"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _all() -> dict[tuple[str, str], dict[str, Any]]:
    """Every resource, by (kind, name)."""
    return {(d["kind"], d["metadata"]["name"]): d for p in MANIFESTS for d in _docs(p)}


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def _arg(args: list[str], option: str) -> str:
    return args[args.index(option) + 1]


def test_there_are_manifests() -> None:
    kinds = {k for k, _ in _all()}
    assert {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ConfigMap",
        "Secret",
        "PersistentVolumeClaim",
    } <= kinds


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_manifest_is_valid_for_kubernetes_1_30(path: Path) -> None:
    docs = _docs(path)
    assert docs, f"{path.name} holds no resource"
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_validation_catches_a_misspelled_field() -> None:
    deployment = copy.deepcopy(_all()[("Deployment", "visionloop-serve")])
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_the_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    kustomization = _docs(K8S / "kustomization.yaml")[0]
    assert kustomization["kind"] == "Kustomization"
    expected = {p.name for p in MANIFESTS} - {"secret.example.yaml"}
    assert sorted(kustomization["resources"]) == sorted(expected)


def test_the_secret_is_a_template_only() -> None:
    secret = _all()[("Secret", "visionloop-secrets")]
    assert all("CHANGE-ME" in v for v in secret["stringData"].values())


def test_the_server_drains_before_it_is_killed(cli_options: Callable[..., set[str]]) -> None:
    deployment = _all()[("Deployment", "visionloop-serve")]
    pod = deployment["spec"]["template"]["spec"]
    c = _container(deployment)
    args = c["args"]
    assert set(a for a in args if a.startswith("--")) <= cli_options("serve")
    assert _arg(args, "--host") == "0.0.0.0" and _arg(args, "--alias") == "production"
    pre_stop = c["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep" and int(pre_stop[1]) >= 3
    # the grace period runs from the start of preStop: sleep, then at most --graceful-seconds of drain
    assert pod["terminationGracePeriodSeconds"] > int(pre_stop[1]) + int(_arg(args, "--graceful-seconds"))
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": int(_arg(args, "--port"))}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize(
    ("name", "workspace"),
    [("visionloop-serve", "emptyDir"), ("visionloop-agent", "persistentVolumeClaim")],
)
def test_pods_run_as_non_root_on_a_read_only_root(name: str, workspace: str) -> None:
    deployment = _all()[("Deployment", name)]
    pod = deployment["spec"]["template"]["spec"]
    c = _container(deployment)
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert c["resources"]["requests"].keys() >= {"cpu", "memory"}
    assert c["resources"]["limits"].keys() >= {"cpu", "memory"}
    # what the process writes (the workspace's cache and tmp folders, /tmp) is a volume, not the image
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in c["volumeMounts"]}
    # serving: the bundle cache is disposable; the agent: checkpoints must survive a restart to resume
    assert workspace in mounts["/workspace"] and "emptyDir" in mounts["/tmp"]
    config = next(m for m in c["volumeMounts"] if m["mountPath"] == "/workspace/visionloop.toml")
    assert config["readOnly"] and config["subPath"] == "visionloop.toml"
    assert volumes[config["name"]]["configMap"]["name"] == "visionloop-config"


@pytest.mark.parametrize("name", ["visionloop-serve", "visionloop-agent"])
def test_storage_comes_from_the_secret_and_the_config_map(name: str) -> None:
    resources = _all()
    c = _container(resources[("Deployment", name)])
    env = {e["name"]: e for e in c["env"]}
    assert env["VISIONLOOP_WORKSPACE"]["value"] == "/workspace"
    assert env["VISIONLOOP_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "visionloop-secrets"
    secret = resources[("Secret", "visionloop-secrets")]["stringData"]
    config = resources[("ConfigMap", "visionloop-config")]["data"]
    for e in env.values():
        ref = e.get("valueFrom", {})
        if "secretKeyRef" in ref:
            assert ref["secretKeyRef"]["key"] in secret, e
        if "configMapKeyRef" in ref:
            assert (
                ref["configMapKeyRef"]["name"] == "visionloop-config"
                and ref["configMapKeyRef"]["key"] in config
            )


def test_the_config_map_holds_valid_workspace_settings(tmp_path: Path) -> None:
    data = _all()[("ConfigMap", "visionloop-config")]["data"]
    (tmp_path / "visionloop.toml").write_text(data["visionloop.toml"], encoding="utf-8")
    settings = load_settings(tmp_path / "visionloop.toml")
    assert settings.storage.database == ""  # the URL comes from the Secret, never from this file
    assert data["blob-url"].startswith("s3://")


def test_env_names_are_the_ones_the_code_reads() -> None:
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "src" / "visionloop").rglob("*.py"))
    texts = [p.read_text(encoding="utf-8") for p in (ROOT / "deploy").rglob("*") if p.is_file()]
    used = {name for text in texts for name in re.findall(r"\bVISIONLOOP_[A-Z_]+\b", text)}
    used -= {"VISIONLOOP_TOML"}  # the workflow's own secret holding the settings file
    assert used and all(f'"{name}"' in source for name in used), used


def test_service_hpa_and_pdb_point_at_the_serving_pods() -> None:
    resources = _all()
    deployment = resources[("Deployment", "visionloop-serve")]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    agent_labels = resources[("Deployment", "visionloop-agent")]["spec"]["template"]["metadata"]["labels"]

    service = resources[("Service", "visionloop-serve")]["spec"]
    assert service["selector"].items() <= labels.items()
    assert not service["selector"].items() <= agent_labels.items()
    assert service["ports"][0]["targetPort"] == "http"

    pdb = resources[("PodDisruptionBudget", "visionloop-serve")]["spec"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    assert not pdb["selector"]["matchLabels"].items() <= agent_labels.items()

    hpa = resources[("HorizontalPodAutoscaler", "visionloop-serve")]
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "visionloop-serve")
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["type"] == "Utilization"
    # with fewer replicas than minAvailable + 1, a node drain could never evict a server
    assert hpa["spec"]["minReplicas"] > pdb["minAvailable"]


def test_the_agent_is_one_pod_never_two(cli_options: Callable[..., set[str]]) -> None:
    resources = _all()
    deployment = resources[("Deployment", "visionloop-agent")]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    c = _container(deployment)
    assert c["args"][0] == "agent"
    assert set(a for a in c["args"][1:] if a.startswith("--")) <= cli_options("agent")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    claim = volumes["workspace"]["persistentVolumeClaim"]["claimName"]
    assert ("PersistentVolumeClaim", claim) in resources
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 60


def test_images_match_the_dockerfiles() -> None:
    resources = _all()
    serve = _container(resources[("Deployment", "visionloop-serve")])["image"]
    agent = _container(resources[("Deployment", "visionloop-agent")])["image"]
    assert "visionloop-serve" in serve and "visionloop-trainer" in agent
    docs = (ROOT / "docs" / "DEPLOY.md").read_text(encoding="utf-8")
    for image in (serve, agent):
        repo = image.rsplit(":", 1)[0]
        assert repo in docs, f"docs/DEPLOY.md does not say how to build {repo}"
    assert "kubectl apply -k deploy/k8s" in docs
