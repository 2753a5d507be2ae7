"""The shipped deployment files: docker-compose.yml, the Dockerfile and deploy/k8s.

No Docker engine or Kubernetes API runs here, so these files are checked as data: the compose
file's wiring (pinned vLLM, its flags, the GPU reservation, the bot pointed at its neighbours by
service name), every Kubernetes manifest against the official 1.30 schemas (strict, so a typo'd
field fails), and the facts the files must agree on with each other and with the code (the
image's user id, the bot's entry point, the API LISTs the Kubernetes backend makes).
"""

from __future__ import annotations

import re
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import make_url

from backends.k8s.cluster import _LISTS as BACKEND_LISTS
from backends.slurm.settings import SlurmSettings
from bot.metrics_http import serve_health
from bot.settings import MetricsSettings

ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30"
MODEL = "Qwen/Qwen2.5-7B-Instruct"
VLLM_FLAGS = [
    "--model",
    MODEL,
    "--served-model-name",
    MODEL,
    "--enable-auto-tool-choice",
    "--tool-call-parser",
    "hermes",
    "--max-model-len",
    "8192",
]
PINNED_VLLM = re.compile(r"^vllm/vllm-openai:v(\d+)\.(\d+)\.(\d+)$")
_INTERPOLATION = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def interpolated(text: str, environment: dict[str, str]) -> str:
    """Compose's `${NAME}` / `${NAME:-default}` substitution, for the values these tests read."""

    def value(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        return environment.get(name) or (default if default is not None else "")

    return _INTERPOLATION.sub(value, text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    documents = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            if document is not None:
                documents.append((path.name, document))
    return documents


def k8s_object(kind: str, name: str) -> dict[str, Any]:
    found = [d for _, d in k8s_documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    logical, pending = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    return [(text.split(maxsplit=1)[0].upper(), text.split(maxsplit=1)[1]) for text in logical]


# --- docker-compose.yml ------------------------------------------------------------------------


def test_vllm_image_is_pinned_to_a_release_that_dropped_guided_fields(compose: dict[str, Any]) -> None:
    image = compose["services"]["vllm"]["image"]
    match = PINNED_VLLM.match(image)
    assert match, f"{image} is not pinned to a vX.Y.Z release tag"
    assert (int(match.group(1)), int(match.group(2))) >= (0, 12)
    assert image == "vllm/vllm-openai:v0.12.0"


def test_vllm_serves_the_model_with_tool_calling_flags(compose: dict[str, Any]) -> None:
    vllm = compose["services"]["vllm"]
    assert vllm["command"] == VLLM_FLAGS
    assert vllm["ipc"] == "host"
    assert "hf-cache:/root/.cache/huggingface" in vllm["volumes"]
    assert "hf-cache" in compose["volumes"]


def test_vllm_reserves_one_nvidia_gpu(compose: dict[str, Any]) -> None:
    devices = compose["services"]["vllm"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]


def test_vllm_and_postgres_have_healthchecks(compose: dict[str, Any]) -> None:
    vllm_check = compose["services"]["vllm"]["healthcheck"]["test"]
    assert vllm_check[0] == "CMD"
    assert "http://127.0.0.1:8000/health" in vllm_check[-1]
    postgres = compose["services"]["postgres"]
    assert re.fullmatch(r"postgres:16\.\d+", postgres["image"])
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]


def test_no_guided_decoding_anywhere() -> None:
    # vLLM ≥ 0.12 ignores guided_* silently (HTTP 200, unconstrained output): never configure it.
    files = [ROOT / "docker-compose.yml", *sorted(K8S_DIR.glob("*.yaml"))]
    offenders = [path.name for path in files if "guided" in path.read_text().lower()]
    assert offenders == []


def test_the_bot_reaches_vllm_and_postgres_by_service_name(compose: dict[str, Any]) -> None:
    services = compose["services"]
    environment = services["concierge"]["environment"]

    llm = urlsplit(environment["CONCIERGE_LLM_URL"])
    assert (llm.scheme, llm.hostname, llm.port, llm.path) == ("http", "vllm", 8000, "/v1")
    assert environment["CONCIERGE_LLM_MODEL"] == MODEL  # vLLM's --served-model-name

    postgres_env = {k: interpolated(v, {}) for k, v in services["postgres"]["environment"].items()}
    database = make_url(interpolated(environment["CONCIERGE_DATABASE_URL"], {}))
    assert database.drivername == "postgresql+psycopg"
    assert (database.host, database.port) == ("postgres", 5432)
    assert database.username == postgres_env["POSTGRES_USER"]
    assert database.password == postgres_env["POSTGRES_PASSWORD"]
    assert database.database == postgres_env["POSTGRES_DB"]
    # A password given to compose reaches both sides alike.
    chosen = {"POSTGRES_PASSWORD": "s3cret"}
    assert make_url(interpolated(environment["CONCIERGE_DATABASE_URL"], chosen)).password == "s3cret"
    assert interpolated(services["postgres"]["environment"]["POSTGRES_PASSWORD"], chosen) == "s3cret"


def test_the_bot_waits_for_healthy_neighbours_and_reads_secrets_from_a_file(
    compose: dict[str, Any],
) -> None:
    concierge = compose["services"]["concierge"]
    assert concierge["build"] == "."
    assert concierge["depends_on"] == {
        "vllm": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
    }
    assert concierge["env_file"] == ["concierge.env"]
    assert not any(key.startswith("CONCIERGE_SLACK") for key in concierge["environment"])
    assert "*.env" in (ROOT / ".dockerignore").read_text().splitlines()


def test_both_reach_slurm_through_slurmrestd_and_keep_its_token_secret(compose: dict[str, Any]) -> None:
    config = k8s_object("ConfigMap", "gpu-concierge-config")["data"]
    for environment in (compose["services"]["concierge"]["environment"], config):
        prefix = "CONCIERGE_SLURM__"
        given = {
            k.removeprefix(prefix).lower(): interpolated(v, {})
            for k, v in environment.items()
            if k.startswith(prefix)
        }
        settings = SlurmSettings.model_validate(given)
        assert (settings.driver, settings.rest_token) == ("rest", None)  # the token comes from the Secret
        assert settings.rest_url.startswith("http://") and settings.rest_user == "slurm"


# --- Dockerfile ----------------------------------------------------------------------------------


def test_the_image_runs_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    users = [arguments for name, arguments in instructions if name == "USER"]
    assert users, "the Dockerfile never sets USER"
    final_user = users[-1].split(":")[0]
    assert final_user not in {"root", "0"}
    created = next(arguments for name, arguments in instructions if name == "RUN" and "useradd" in arguments)
    assert re.search(rf"--uid 10001 .*\b{final_user}$", created)


def test_the_image_installs_the_postgres_extra_and_runs_concierge_serve() -> None:
    instructions = dict(dockerfile_instructions())
    assert instructions["FROM"] == "python:3.11-slim"
    assert 'pip install ".[postgres]"' in (ROOT / "Dockerfile").read_text()
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert instructions["ENTRYPOINT"] == '["concierge"]' and "concierge" in scripts
    assert instructions["CMD"] == '["serve"]'


# --- deploy/k8s ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file_name", "document"),
    k8s_documents(),
    ids=[f"{name}:{doc['kind']}" for name, doc in k8s_documents()],
)
def test_every_manifest_validates_strictly(file_name: str, document: dict[str, Any]) -> None:
    assert kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True) == KUBERNETES_VERSION


def test_strict_validation_catches_a_misspelt_field() -> None:
    broken = k8s_object("Deployment", "vllm")
    broken = {**broken, "spec": {**broken["spec"], "replica": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    on_disk = {path.name for path in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(on_disk)
    namespaced = [d for _, d in k8s_documents() if "namespace" in d["metadata"]]
    assert {d["metadata"]["namespace"] for d in namespaced} == {kustomization["namespace"]}


def test_k8s_vllm_matches_compose_and_asks_for_one_tolerated_gpu(compose: dict[str, Any]) -> None:
    pod = k8s_object("Deployment", "vllm")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == compose["services"]["vllm"]["image"]
    assert container["args"] == VLLM_FLAGS
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    readiness = container["readinessProbe"]["httpGet"]
    assert readiness["path"] == "/health" and ports[readiness["port"]] == 8000

    cache = next(v for v in pod["volumes"] if "persistentVolumeClaim" in v)
    claim = k8s_object("PersistentVolumeClaim", cache["persistentVolumeClaim"]["claimName"])
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[cache["name"]] == "/root/.cache/huggingface"


def test_vllm_service_selects_the_vllm_pods_on_port_8000() -> None:
    deployment = k8s_object("Deployment", "vllm")
    service = k8s_object("Service", "vllm")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(8000, "http")]


def test_the_bot_is_configured_for_the_in_cluster_vllm_and_runs_as_the_image_user() -> None:
    deployment = k8s_object("Deployment", "gpu-concierge")
    pod = deployment["spec"]["template"]["spec"]
    account = k8s_object("ServiceAccount", pod["serviceAccountName"])

    (container,) = pod["containers"]
    sources = container["envFrom"]
    config_map = k8s_object("ConfigMap", sources[0]["configMapRef"]["name"])
    assert sources[1]["secretRef"]["name"] == "gpu-concierge-secrets"
    llm = urlsplit(config_map["data"]["CONCIERGE_LLM_URL"])
    namespace = account["metadata"]["namespace"]
    assert (llm.hostname, llm.port, llm.path) == (f"vllm.{namespace}.svc", 8000, "/v1")
    assert config_map["data"]["CONCIERGE_LLM_MODEL"] == MODEL

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # useradd --uid in the Dockerfile


def test_rbac_lets_the_bot_impersonate_and_read_what_the_backend_lists() -> None:
    role = k8s_object("ClusterRole", "gpu-concierge")
    binding = k8s_object("ClusterRoleBinding", "gpu-concierge")
    account = k8s_object("ServiceAccount", "gpu-concierge")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "gpu-concierge",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "gpu-concierge", "namespace": account["metadata"]["namespace"]}
    ]

    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert {("", "users", "impersonate"), ("", "groups", "impersonate")} <= granted
    assert ("", "serviceaccounts", "impersonate") not in granted
    for prefix, plural in BACKEND_LISTS.values():
        group = "" if prefix == "/api/v1" else prefix.split("/")[2]
        assert {(group, plural, "get"), (group, plural, "list")} <= granted, plural
    # Writes go out as the person: the bot's own account creates and deletes nothing. Least
    # privilege: it reads, and impersonates people and their groups, nothing else.
    assert {verb for _, _, verb in granted} <= {"get", "list", "watch", "impersonate"}
    assert {(g, r) for g, r, verb in granted if verb == "impersonate"} == {("", "users"), ("", "groups")}


def test_two_bots_roll_one_at_a_time_with_probes_on_the_port_the_bot_serves() -> None:
    deployment = k8s_object("Deployment", "gpu-concierge")
    spec = deployment["spec"]
    assert (
        spec["replicas"] == 2
    )  # safe: once-only claims and the schedule's lease (tests/e2e/test_serve_replicas.py)
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    [container] = spec["template"]["spec"]["containers"]
    [port] = container["ports"]
    assert port == {"name": "metrics", "containerPort": MetricsSettings().port}
    probes = {
        kind: container[kind]["httpGet"] for kind in ("livenessProbe", "readinessProbe", "startupProbe")
    }
    assert probes["livenessProbe"] == {"path": "/healthz", "port": "metrics"}
    assert probes["readinessProbe"] == {"path": "/readyz", "port": "metrics"}
    assert probes["startupProbe"]["path"] == "/healthz"
    # The limit is about twice the measured peak (175 MB posting a digest with its chart, +33 MB under
    # bench/slack_ack.py's burst); the request covers the peak.
    resources = container["resources"]
    assert quantity_mib(resources["requests"]["memory"]) >= 210
    assert quantity_mib(resources["limits"]["memory"]) >= 2 * 210

    budget = k8s_object("PodDisruptionBudget", "gpu-concierge")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]
    service = k8s_object("Service", "gpu-concierge-metrics")
    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"


def test_the_bots_probe_server_answers_on_the_paths_the_manifest_names() -> None:
    """The probes' paths are answered by bot/metrics_http.py (a renamed path fails here), /readyz
    with 503 and the reason while the bot is not ready."""
    [container] = k8s_object("Deployment", "gpu-concierge")["spec"]["template"]["spec"]["containers"]
    problem: list[str | None] = [None]
    server = serve_health(CollectorRegistry(), "127.0.0.1", 0, lambda: problem[0])
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
            with urllib.request.urlopen(base + container[kind]["httpGet"]["path"], timeout=5) as answer:
                assert answer.status == 200, kind
        problem[0] = "the database is unreachable"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + container["readinessProbe"]["httpGet"]["path"], timeout=5)
        assert refused.value.code == 503
        assert b"the database is unreachable" in refused.value.read()
    finally:
        server.shutdown()
        server.server_close()


def test_compose_checks_the_bot_is_ready(compose: dict[str, Any]) -> None:
    check = " ".join(compose["services"]["concierge"]["healthcheck"]["test"])
    assert f"127.0.0.1:{MetricsSettings().port}/readyz" in check


def quantity_mib(text: str) -> float:
    units = {"Mi": 1, "Gi": 1024}
    return float(text[:-2]) * units[text[-2:]]
