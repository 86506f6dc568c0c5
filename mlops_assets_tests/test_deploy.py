"""Offline validation of deploy/: the code-location image, the official Dagster chart values and our serving chart.

No Kubernetes API server, Docker engine or chart repository is reachable here, so each artefact is checked with the
real tool that works offline, installed into .venv-tools by deploy/install-validation-tools.sh:
- the serving chart is rendered by Helm's own Go SDK (helm-python-sdk) for several value sets, every manifest is
  validated in strict mode by kubernetes-validate against a fixed Kubernetes version, and checkov scans the result;
- the Dockerfile is linted by hadolint;
- the official chart's values file is structure-checked against the keys of the chart's values.yaml (below), because
  the chart itself cannot be downloaded and its values.schema.json points at a dead schema host.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_assets_tests.tools import REPO_ROOT, run, tools_bin

DEPLOY = REPO_ROOT / "deploy"
CHART = DEPLOY / "charts" / "flight-delay-serving"
# The EKS minor in infra/variables.tf (cluster_version); manifests must be valid for the cluster we create.
KUBERNETES_VERSION = "1.34.0"
# Kinds from CRDs have no schema in kubernetes-validate; they are checked structurally by the tests below instead.
CRD_KINDS = {"HTTPRoute"}

DIGEST_STABLE = "sha256:" + "a" * 64
DIGEST_CANARY = "sha256:" + "b" * 64
# deploy/README.md installs every release with digests; checkov's CKV_K8S_43 (image by digest) holds for these cases.
PINNED = {"stable": {"image": {"digest": DIGEST_STABLE}}, "canary": {"image": {"digest": DIGEST_CANARY}}}


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


# Value sets the chart is rendered with. "chart-defaults" is the chart exactly as shipped (tags, not digests).
CASES: dict[str, dict[str, Any]] = {
    "chart-defaults": {},
    "pinned": PINNED,
    "canary": _merge(PINNED, {"canary": {"enabled": True}}),
    "canary-httproute": _merge(PINNED, {"canary": {"enabled": True}, "httpRoute": {"enabled": True}}),
    "no-hpa": _merge(PINNED, {"autoscaling": {"enabled": False}, "stable": {"replicas": 3}}),
    "minimal": _merge(
        PINNED,
        {"podDisruptionBudget": {"enabled": False}, "topologySpreadConstraints": {"enabled": False}},
    ),
}
# Cases checkov scans: all but the shipped defaults, which use tags by design (see CKV_K8S_43 above).
CHECKOV_CASES = [case for case in CASES if case != "chart-defaults"]

# checkov without a Prisma API key reports no severities, so every failed check fails the test except these, each
# with the reason it does not apply.
CHECKOV_K8S_SKIPS: dict[str, str] = {
    "CKV_K8S_35": (
        "secrets as env vars: mlops_assets.settings reads its configuration (MLOPS_FEAST_ONLINE_STORE, with the Redis "
        "AUTH token) from the environment only; the value comes from a Secret via secretKeyRef, never a literal"
    ),
}


def load_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="module")
def rendered_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Render every case once with Helm's Go SDK; one multi-document file per case."""
    out = tmp_path_factory.mktemp("rendered")
    proc = run([tools_bin("python"), DEPLOY / "tools" / "render_chart.py", CHART, out, json.dumps(CASES)])
    assert proc.returncode == 0, f"helm render failed:\n{proc.stdout}\n{proc.stderr}"
    return out


@pytest.fixture(scope="module")
def rendered(rendered_dir: Path) -> dict[str, list[dict[str, Any]]]:
    return {case: load_docs(rendered_dir / f"{case}.yaml") for case in CASES}


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def deployments(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Deployments keyed by their track label."""
    return {doc["metadata"]["labels"]["mlops.example/track"]: doc for doc in by_kind(docs, "Deployment")}


# --------------------------------------------------------------------------------------------------------------------
# Serving chart: schema validity
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", list(CASES))
def test_manifests_validate_strictly(case: str, rendered_dir: Path, rendered: dict[str, list[dict[str, Any]]]) -> None:
    path = rendered_dir / f"{case}.yaml"
    proc = run([tools_bin("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, path])
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    docs = rendered[case]
    core = [doc for doc in docs if doc["kind"] not in CRD_KINDS]
    # Every core object passed; only CRD kinds may lack a schema (and nothing else may be silently unvalidated).
    assert output.count(" passed for resource ") == len(core), output
    assert output.count("Couldn't find schema") == len(docs) - len(core), output


def test_kubernetes_validate_rejects_unknown_fields(tmp_path: Path, rendered: dict[str, list[dict[str, Any]]]) -> None:
    # The validator must have teeth: a misspelt field in an otherwise valid Deployment fails strict validation.
    deployment = by_kind(rendered["pinned"], "Deployment")[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"tcpSocket": {"port": 3000}}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(deployment))
    proc = run([tools_bin("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, bad])
    assert proc.returncode != 0, proc.stdout + proc.stderr


def test_chart_lints(tmp_path: Path) -> None:
    code = "import helm_python as h, json, sys; print(json.dumps(h.lint(sys.argv[1])))"
    proc = run([tools_bin("python"), "-c", code, CHART])
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["errors"] == [], report
    # Severity 1 is informational (e.g. "icon is recommended"); warnings (2) and errors (>=3) fail.
    assert [m for m in report["messages"] if m["severity"] >= 2] == [], report


# --------------------------------------------------------------------------------------------------------------------
# Serving chart: the contract of each object
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", list(CASES))
def test_pods_are_hardened(case: str, rendered: dict[str, list[dict[str, Any]]]) -> None:
    for name, deployment in deployments(rendered[case]).items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        (container,) = pod["containers"]
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, name
        assert sc["capabilities"]["drop"] == ["ALL"], name
        assert container["imagePullPolicy"] == "Always", name
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) == {"cpu", "memory"}, (name, kind)
        # Read-only root: BentoML's home and /tmp are emptyDirs, and BENTOML_HOME points at the mounted one.
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        assert set(mounts.values()) <= empty_dirs, name
        env = {e["name"]: e for e in container["env"]}
        assert "/tmp" in mounts and env["BENTOML_HOME"]["value"] in mounts, name
        # BentoML's health endpoints on its HTTP port.
        port = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert port == {"http": 3000}, name
        assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}, name
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}, name
        # Secrets only by reference.
        assert env["MLOPS_FEAST_ONLINE_STORE"]["valueFrom"]["secretKeyRef"]["name"], name
        assert env["MLOPS_PROFILE"]["value"] == "production", name


@pytest.mark.parametrize("case", list(CASES))
def test_every_object_is_namespaced_and_labelled(case: str, rendered: dict[str, list[dict[str, Any]]]) -> None:
    for doc in rendered[case]:
        meta = doc["metadata"]
        assert meta["namespace"] == "serving", (doc["kind"], meta["name"])
        assert meta["labels"]["app.kubernetes.io/name"] == "flight-delay-serving", (doc["kind"], meta["name"])


def test_canary_is_off_by_default(rendered: dict[str, list[dict[str, Any]]]) -> None:
    assert set(deployments(rendered["chart-defaults"])) == {"stable"}
    image = by_kind(rendered["chart-defaults"], "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith(":0.1.0")


def test_digest_pins_the_image(rendered: dict[str, list[dict[str, Any]]]) -> None:
    image = deployments(rendered["pinned"])["stable"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"registry.example.com/mlops/flight-delay-bento@{DIGEST_STABLE}"


@pytest.mark.parametrize("case", CHECKOV_CASES)
def test_every_pinned_deployment_runs_an_image_by_digest(case: str, rendered: dict[str, list[dict[str, Any]]]) -> None:
    for track, deployment in deployments(rendered[case]).items():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            repository, _, digest = container["image"].partition("@")
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), (case, track, container["image"])
            assert ":" not in repository.rsplit("/", 1)[-1], (case, track, container["image"])


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ({"digest": "0.1.0"}, "is not a registry digest"),
        ({"digest": "sha256:" + "A" * 64}, "is not a registry digest"),
        ({"repository": "registry.example.com/mlops/flight-delay-bento:0.1.0"}, "without a tag or digest"),
    ],
)
def test_a_malformed_image_reference_fails_the_render(tmp_path: Path, image: dict[str, str], message: str) -> None:
    case = {"bad": _merge(PINNED, {"stable": {"image": image}})}
    proc = run([tools_bin("python"), DEPLOY / "tools" / "render_chart.py", CHART, tmp_path, json.dumps(case)])
    assert proc.returncode != 0 and message in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_canary_track_shares_the_service_and_keys_its_model_version(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["canary"]
    tracks = deployments(docs)
    assert set(tracks) == {"stable", "canary"}
    (service,) = by_kind(docs, "Service")
    versions = set()
    for name, deployment in tracks.items():
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        # One Service reaches both tracks: the replica-ratio split.
        assert service["spec"]["selector"].items() <= pod_labels.items(), name
        # Each Deployment selects only its own track, so the two never fight over pods.
        assert deployment["spec"]["selector"]["matchLabels"]["mlops.example/track"] == name
        assert (
            pod_labels["mlops.example/model-version"] == deployment["metadata"]["labels"]["mlops.example/model-version"]
        )
        versions.add(pod_labels["mlops.example/model-version"])
    assert versions == {"1", "2"}
    images = {name: d["spec"]["template"]["spec"]["containers"][0]["image"] for name, d in tracks.items()}
    assert images["canary"].endswith(DIGEST_CANARY) and images["stable"].endswith(DIGEST_STABLE)
    # The HPA scales the stable track only; the canary keeps its fixed replica count (its traffic share).
    (hpa,) = by_kind(docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == tracks["stable"]["metadata"]["name"]
    assert "replicas" not in tracks["stable"]["spec"] and tracks["canary"]["spec"]["replicas"] == 1
    # The disruption budget covers both tracks.
    (pdb,) = by_kind(docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]


def test_httproute_splits_by_weight(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["canary-httproute"]
    (route,) = by_kind(docs, "HTTPRoute")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    (rule,) = route["spec"]["rules"]
    weights = {ref["name"]: ref["weight"] for ref in rule["backendRefs"]}
    assert sum(weights.values()) == 100
    services = {s["metadata"]["name"]: s for s in by_kind(docs, "Service")}
    for name in weights:
        # Each backend is a per-track Service that selects exactly one track.
        track = services[name]["spec"]["selector"]["mlops.example/track"]
        assert name.endswith(track)
    assert weights["fds-flight-delay-serving-canary"] == 10


def test_hpa_disabled_sets_replicas(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["no-hpa"]
    assert by_kind(docs, "HorizontalPodAutoscaler") == []
    assert deployments(docs)["stable"]["spec"]["replicas"] == 3
    assert by_kind(rendered["minimal"], "PodDisruptionBudget") == []


def test_network_policy_limits_ingress_and_egress(rendered: dict[str, list[dict[str, Any]]]) -> None:
    (policy,) = by_kind(rendered["pinned"], "NetworkPolicy")
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = spec["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": 3000}]
    assert all("namespaceSelector" in peer or "podSelector" in peer for peer in ingress["from"])
    egress_ports = {(p["protocol"], p["port"]) for rule in spec["egress"] for p in rule["ports"]}
    assert {("UDP", 53), ("TCP", 53), ("TCP", 6379)} <= egress_ports


def test_service_account_has_no_token(rendered: dict[str, list[dict[str, Any]]]) -> None:
    (account,) = by_kind(rendered["pinned"], "ServiceAccount")
    assert account["automountServiceAccountToken"] is False


# --------------------------------------------------------------------------------------------------------------------
# Serving chart: checkov
# --------------------------------------------------------------------------------------------------------------------
def checkov_failures(report_text: str) -> list[dict[str, Any]]:
    reports = json.loads(report_text)
    reports = reports if isinstance(reports, list) else [reports]
    return [failed for report in reports for failed in report["results"]["failed_checks"]]


@pytest.fixture(scope="module")
def checkov_k8s(rendered_dir: Path) -> list[dict[str, Any]]:
    """One checkov run over every scanned case (checkov is the slow part: about 7 s)."""
    files: list[str | Path] = []
    for case in CHECKOV_CASES:
        files += ["-f", rendered_dir / f"{case}.yaml"]
    # --skip-download: no Prisma Cloud calls (nothing outside is reachable, and nothing should leave the machine).
    proc = run([tools_bin("checkov"), "--framework", "kubernetes", "--skip-download", "--quiet", "-o", "json", *files])
    assert proc.stdout.strip(), proc.stderr
    return checkov_failures(proc.stdout)


def test_checkov_kubernetes_has_no_failed_checks(checkov_k8s: list[dict[str, Any]]) -> None:
    failed = [
        f"{f['check_id']} {f['check_name']} ({f['resource']} in {f['file_path']})"
        for f in checkov_k8s
        if f["check_id"] not in CHECKOV_K8S_SKIPS
    ]
    assert failed == [], "\n".join(failed)


# --------------------------------------------------------------------------------------------------------------------
# Code-location image
# --------------------------------------------------------------------------------------------------------------------
DOCKERFILE = DEPLOY / "Dockerfile"


def test_hadolint_is_clean() -> None:
    proc = run([tools_bin("hadolint"), "--failure-threshold", "style", DOCKERFILE])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_contract() -> None:
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\w+)", text, flags=re.MULTILINE)
    assert stages == ["builder", "runtime"]
    builder, runtime = text.split("AS runtime", 1)
    assert "pyproject.toml uv.lock" in builder and "uv sync --locked" in builder
    assert "dagster-dbt project prepare-and-package --file mlops_assets/defs/transform/project.py" in builder
    assert "COPY --from=builder /opt/venv /opt/venv" in runtime
    # The commit is a build argument, stamped where settings read it (models carry it as git_sha) and as a label.
    assert "ARG GIT_SHA" in runtime and 'MLOPS_GIT_SHA="${GIT_SHA}"' in runtime
    assert "org.opencontainers.image.revision" in runtime
    # Non-root with a numeric uid (Kubernetes can verify runAsNonRoot only for numeric users).
    (user,) = re.findall(r"^USER\s+(\S+)", runtime, flags=re.MULTILINE)
    assert re.fullmatch(r"[1-9]\d*(:\d+)?", user), user
    # `dbt` and `dagster` come from the venv's bin on PATH.
    assert "PATH=/opt/venv/bin:$PATH" in runtime
    for setting in ("RAY_USAGE_STATS_ENABLED=0", "DAGSTER_DISABLE_TELEMETRY=1", "FEAST_USAGE=False"):
        assert setting in runtime, setting
    assert re.search(r"^EXPOSE\s+3030$", runtime, flags=re.MULTILINE)
    cmd = json.loads(re.findall(r"^CMD\s+(\[.*\])$", runtime, flags=re.MULTILINE)[-1])
    assert cmd[:3] == ["dagster", "code-server", "start"] and cmd[-2:] == ["-m", "mlops_assets.definitions"]


def test_build_context_holds_what_the_dockerfile_copies() -> None:
    sources = []
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            sources += line.split()[1:-1]
    assert sources, "no COPY from the build context"
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for source in sources:
        assert (REPO_ROOT / source).exists(), source
        assert source.rstrip("/") in allowed, f"{source} is excluded from the build context by Dockerfile.dockerignore"


# --------------------------------------------------------------------------------------------------------------------
# Official Dagster chart values
# --------------------------------------------------------------------------------------------------------------------
ANY = None  # free-form subtree (Kubernetes objects, env maps, raw instance config): not checked further

_IMAGE = {"repository": ANY, "tag": ANY, "pullPolicy": ANY, "registry": ANY}
_POD_COMMON = {
    "env": ANY,
    "envConfigMaps": ANY,
    "envSecrets": ANY,
    "annotations": ANY,
    "labels": ANY,
    "deploymentLabels": ANY,
    "nodeSelector": ANY,
    "affinity": ANY,
    "tolerations": ANY,
    "podSecurityContext": ANY,
    "securityContext": ANY,
    "resources": ANY,
    "livenessProbe": ANY,
    "readinessProbe": ANY,
    "startupProbe": ANY,
    "schedulerName": ANY,
    "volumes": ANY,
    "volumeMounts": ANY,
    "initContainerResources": ANY,
    "extraPrependedInitContainers": ANY,
    "checkDbReadyInitContainer": ANY,
    "logLevel": ANY,
    "logFormat": ANY,
}
# The keys of the official chart's values, transcribed from the dagster repository's helm/dagster/values.yaml (and
# helm/dagster/charts/dagster-user-deployments/values.yaml for the deployments) for chart 1.13.x. The chart cannot be
# downloaded here and its values.schema.json references a dead schema host, so this allow-list is what catches a
# misspelt or misplaced key, which Helm would otherwise ignore silently. Update it with the chart version.
# Checked once (2026-11-25) against the chart's values.schema.json (dagster-io/dagster bdb8547, sub-chart b8d7b25):
# every key of deploy/dagster-values.yaml is known there; a per-deployment `replicaCount` was not, and was removed.
DAGSTER_CHART_KEYS: dict[str, Any] = {
    "global": {
        "postgresqlSecretName": ANY,
        "dagsterHome": ANY,
        "serviceAccountName": ANY,
        "celeryConfigSecretName": ANY,
    },
    "nameOverride": ANY,
    "fullnameOverride": ANY,
    "rbacEnabled": ANY,
    "imagePullSecrets": ANY,
    "dagsterWebserver": {
        **_POD_COMMON,
        "replicaCount": ANY,
        "image": _IMAGE,
        "nameOverride": ANY,
        "pathPrefix": ANY,
        "service": {"type": ANY, "port": ANY, "annotations": ANY, "labels": ANY},
        "workspace": {"enabled": ANY, "servers": ANY, "externalConfigmap": ANY},
        "enableReadOnly": ANY,
        "dbStatementTimeout": ANY,
        "dbPoolRecycle": ANY,
        "dbPoolMaxOverflow": ANY,
    },
    "computeLogManager": {"type": ANY, "config": ANY},
    "pythonLogs": {"pythonLogLevel": ANY, "managedPythonLoggers": ANY, "dagsterHandlerConfig": ANY},
    "dagster-user-deployments": {
        "enabled": ANY,
        "enableSubchart": ANY,
        "imagePullSecrets": ANY,
        "serviceAccount": {"create": ANY, "name": ANY, "annotations": ANY},
        "postgresqlSecretName": ANY,
        "celeryConfigSecretName": ANY,
        "deployments": [
            {
                **_POD_COMMON,
                "name": ANY,
                "image": _IMAGE,
                "dagsterApiGrpcArgs": ANY,
                "codeServerArgs": ANY,
                "includeConfigInLaunchedRuns": {"enabled": ANY},
                "deploymentNamespace": ANY,
                "port": ANY,
                "service": {"annotations": ANY},
                "initContainers": ANY,
                "sidecarContainers": ANY,
            }
        ],
    },
    "scheduler": {"type": ANY, "config": ANY},
    "runLauncher": {
        "type": ANY,
        "config": {
            "k8sRunLauncher": {
                "image": _IMAGE,
                "imagePullPolicy": ANY,
                "jobNamespace": ANY,
                "loadInclusterConfig": ANY,
                "kubeconfigFile": ANY,
                "envConfigMaps": ANY,
                "envSecrets": ANY,
                "envVars": ANY,
                "volumeMounts": ANY,
                "volumes": ANY,
                "labels": ANY,
                "resources": ANY,
                "schedulerName": ANY,
                "securityContext": ANY,
                "runK8sConfig": {
                    "containerConfig": ANY,
                    "podSpecConfig": ANY,
                    "podTemplateSpecMetadata": ANY,
                    "jobSpecConfig": ANY,
                    "jobMetadata": ANY,
                },
                "failPodOnRunFailure": ANY,
            },
            "celeryK8sRunLauncher": ANY,
            "customRunLauncher": ANY,
        },
    },
    "postgresql": {
        "enabled": ANY,
        "image": _IMAGE,
        "postgresqlHost": ANY,
        "postgresqlUsername": ANY,
        "postgresqlPassword": ANY,
        "postgresqlDatabase": ANY,
        "postgresqlParams": ANY,
        "postgresqlScheme": ANY,
        "service": {"port": ANY},
    },
    "generatePostgresqlPasswordSecret": ANY,
    "generateCeleryConfigSecret": ANY,
    "rabbitmq": ANY,
    "redis": ANY,
    "flower": ANY,
    "ingress": ANY,
    "dagsterDaemon": {
        **_POD_COMMON,
        "enabled": ANY,
        "image": _IMAGE,
        "heartbeatTolerance": ANY,
        "runCoordinator": {
            "enabled": ANY,
            "type": ANY,
            "config": {
                "queuedRunCoordinator": {
                    "maxConcurrentRuns": ANY,
                    "tagConcurrencyLimits": ANY,
                    "dequeueIntervalSeconds": ANY,
                    "dequeueUseThreads": ANY,
                    "dequeueNumWorkers": ANY,
                },
                "customRunCoordinator": ANY,
            },
        },
        "runMonitoring": {
            "enabled": ANY,
            "startTimeoutSeconds": ANY,
            "cancelTimeoutSeconds": ANY,
            "maxResumeRunAttempts": ANY,
            "pollIntervalSeconds": ANY,
            "freeSlotsAfterRunEndSeconds": ANY,
        },
        "runRetries": {"enabled": ANY, "maxRetries": ANY, "retryOnAssetOrOpFailure": ANY},
        "sensors": {"useThreads": ANY, "numWorkers": ANY, "numSubmitWorkers": ANY},
        "schedules": {"useThreads": ANY, "numWorkers": ANY, "numSubmitWorkers": ANY},
    },
    "busybox": {"image": _IMAGE},
    "migrate": {"enabled": ANY, "extraContainers": ANY, "initContainers": ANY},
    "telemetry": {"enabled": ANY},
    "serviceAccount": {"create": ANY, "name": ANY, "annotations": ANY},
    "retention": {
        "enabled": ANY,
        "schedule": {"purgeAfterDays": ANY},
        "sensor": {"purgeAfterDays": ANY},
        "autoMaterialize": {"purgeAfterDays": ANY},
    },
    "concurrency": ANY,
    "additionalInstanceConfig": ANY,
    "extraManifests": ANY,
}


def unknown_keys(values: Any, allowed: Any, path: str = "") -> Iterator[str]:
    """Paths in ``values`` that the chart does not define."""
    if allowed is ANY:
        return
    if isinstance(allowed, list):
        assert isinstance(values, list), f"{path} must be a list"
        for i, item in enumerate(values):
            yield from unknown_keys(item, allowed[0], f"{path}[{i}]")
        return
    if not isinstance(values, dict):
        return  # a scalar where the chart has a map is caught by Helm's templates, not by a key check
    for key, value in values.items():
        child = f"{path}.{key}" if path else key
        if key not in allowed:
            yield child
        else:
            yield from unknown_keys(value, allowed[key], child)


@pytest.fixture(scope="module")
def dagster_values() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "dagster-values.yaml").read_text())


def test_dagster_values_use_only_chart_keys(dagster_values: dict[str, Any]) -> None:
    assert list(unknown_keys(dagster_values, DAGSTER_CHART_KEYS)) == []


def test_key_check_catches_a_misplaced_key(dagster_values: dict[str, Any]) -> None:
    broken = _merge(dagster_values, {"dagsterDaemon": {"freshness": {"enabled": True}}})
    broken["dagster-user-deployments"]["deployments"][0]["codeServerArg"] = ["-m", "x"]
    assert sorted(unknown_keys(broken, DAGSTER_CHART_KEYS)) == [
        "dagster-user-deployments.deployments[0].codeServerArg",
        "dagsterDaemon.freshness",
    ]


def test_dagster_values_production_contract(dagster_values: dict[str, Any]) -> None:
    v = dagster_values
    assert v["runLauncher"]["type"] == "K8sRunLauncher"
    assert v["postgresql"]["enabled"] is False and v["postgresql"]["postgresqlHost"]
    # The password comes from an existing Secret, never from the values file.
    assert v["generatePostgresqlPasswordSecret"] is False
    assert "postgresqlPassword" not in v["postgresql"] and v["global"]["postgresqlSecretName"]
    assert v["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"
    assert v["dagsterDaemon"]["enabled"] is True
    assert v["additionalInstanceConfig"]["freshness"] == {"enabled": True}
    assert v["telemetry"] == {"enabled": False}
    (deployment,) = v["dagster-user-deployments"]["deployments"]
    assert deployment["codeServerArgs"] == ["-m", "mlops_assets.definitions"]
    assert deployment["port"] == 3030
    assert deployment["envSecrets"]
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env["MLOPS_PROFILE"] == "production"
    # settings.py requires these in production; the online-store URL (with the Redis token) arrives via envSecrets.
    for name in ("MLOPS_LAKE_ROOT", "MLOPS_MLFLOW_TRACKING_URI"):
        assert env[name], name
    assert "MLOPS_FEAST_ONLINE_STORE" not in env


def test_dagster_values_env_names_are_read_by_settings(dagster_values: dict[str, Any]) -> None:
    # A misspelt MLOPS_* name would be ignored silently and fall back to a default: match them against settings.py.
    known = set(re.findall(r"MLOPS_[A-Z_]+", (REPO_ROOT / "mlops_assets" / "settings.py").read_text()))
    (deployment,) = dagster_values["dagster-user-deployments"]["deployments"]
    names = {e["name"] for e in deployment["env"] if e["name"].startswith("MLOPS_")}
    assert names - known == set()


def test_serving_env_names_are_read_by_settings() -> None:
    known = set(re.findall(r"MLOPS_[A-Z_]+", (REPO_ROOT / "mlops_assets" / "settings.py").read_text()))
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    names = {n for n in values["env"] if n.startswith("MLOPS_")} | {e["name"] for e in values["secretEnv"]}
    assert names - known == set()


# --------------------------------------------------------------------------------------------------------------------
# KubeRay cluster for the sweep (a CRD: no schema offline, so its contract is checked here)
# --------------------------------------------------------------------------------------------------------------------
def test_raycluster_matches_the_code_location_and_the_gpu_pool(dagster_values: dict[str, Any]) -> None:
    (cluster,) = load_docs(DEPLOY / "ray" / "raycluster.yaml")
    assert cluster["apiVersion"] == "ray.io/v1" and cluster["kind"] == "RayCluster"
    name, namespace = cluster["metadata"]["name"], cluster["metadata"]["namespace"]
    (deployment,) = dagster_values["dagster-user-deployments"]["deployments"]
    env = {e["name"]: e["value"] for e in deployment["env"]}
    # KubeRay names the head Service <cluster>-head-svc; the Ray client port is 10001.
    assert env["MLOPS_RAY_ADDRESS"] == f"ray://{name}-head-svc.{namespace}.svc.cluster.local:10001"
    pods = [cluster["spec"]["headGroupSpec"]["template"]["spec"]]
    pods += [group["template"]["spec"] for group in cluster["spec"]["workerGroupSpecs"]]
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        # Same image as the code location: Ray client and cluster need the same Ray and Python versions.
        assert container["image"].split("/", 1)[1].startswith("mlops/code-location")
        assert {"name": "RAY_USAGE_STATS_ENABLED", "value": "0"} in container["env"]
        assert container["resources"]["requests"] and container["resources"]["limits"]
    gpu = next(g for g in cluster["spec"]["workerGroupSpecs"] if g["groupName"] == "gpu")["template"]["spec"]
    # Tolerates exactly the taint of the GPU node group in infra/eks.tf.
    assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in gpu["tolerations"]
    assert gpu["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
