"""A person's path through the `concierge` CLI on Kubernetes, through the API emulator.

The emulator (tests/k8s_emulator) serves the real wire protocol on 127.0.0.1 from a thread of
this test process, with RBAC, impersonation, a scheduler that writes the real Unschedulable
messages and a kubelet that fails pulls on demand. Each test runs the installed console script in
a subprocess, as a person would, configured only by a kubeconfig for the bot's token
(`CONCIERGE_K8S__KUBECONFIG`) and a SQLite database in a temporary directory; it then checks what
the person sees and what the cluster holds. The tests run as root and act for alice and bob with
`--as`; unmapped, each one's Kubernetes user is their login, with no default namespace, so every
request names its namespace.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.cli import Cli, cli_env
from tests.helpers.k8s_objects import occupy
from tests.k8s_emulator import BOT_USER, KubeEmulator, RequestRecord

BOT_TOKEN = "bot-token"
A100 = "NVIDIA-A100-SXM4-80GB"
H100 = "NVIDIA-H100-80GB-HBM3"
L40S = "NVIDIA-L40S"
WRITES = ("create", "update", "patch", "delete", "deletecollection")
MISTRAL = "mistralai/Mistral-7B-Instruct-v0.3"
SERVE_MISTRAL = f"serve {MISTRAL} on one a100 in namespace research with port 8000"


@pytest.fixture
def kube() -> Iterator[KubeEmulator]:
    """One namespace where alice may edit and bob may not; no GPU nodes until a test adds them."""
    with KubeEmulator() as emulator:
        emulator.add_token(BOT_TOKEN, BOT_USER)
        emulator.allow_bot()
        emulator.add_namespace("research")
        emulator.add_namespace("other")
        emulator.allow_edit("alice", "research")
        yield emulator


@pytest.fixture
def cli(kube: KubeEmulator, tmp_path: Path) -> Cli:
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", BOT_TOKEN)
    database_url = f"sqlite:///{tmp_path / 'data' / 'concierge.db'}"
    return Cli(cli_env(tmp_path, database_url, K8S__KUBECONFIG=str(kubeconfig)))


def writes(kube: KubeEmulator) -> list[RequestRecord]:
    return [r for r in kube.request_log if r.verb in WRITES]


def split_name(job: str) -> tuple[str, str]:
    namespace, name = job.split("/", 1)
    return namespace, name


def queue_line(cli: Cli, who: str, job: str) -> str:
    queue = cli("--as", who, "queue", "--mine", "--backend", "k8s")
    assert queue.code == 0, queue.err
    lines = {line.split()[0]: line for line in queue.out.splitlines()[1:]}
    assert job in lines, queue.out
    return lines[job]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    assert isinstance(only, dict)
    return only


def test_a_served_model_runs_scales_and_is_cancelled(kube: KubeEmulator, cli: Cli) -> None:
    kube.add_node("gpu-1", gpu_product=A100, gpus=4, gpu_memory_mib=81920)

    job = cli.submit("alice", SERVE_MISTRAL)
    namespace, name = split_name(job)
    assert namespace == "research"
    deployment = kube.get_object("apps/v1", "Deployment", name, namespace)
    assert deployment is not None, kube.dump()
    server = container(deployment)
    assert "vllm" in server["image"]
    arguments = [*server.get("command", []), *server.get("args", [])]
    assert arguments[arguments.index("--model") + 1] == MISTRAL
    assert server["resources"]["limits"]["nvidia.com/gpu"] == "1"
    service = kube.get_object("v1", "Service", name, namespace)
    assert service is not None
    assert [p["port"] for p in service["spec"]["ports"]] == [8000]
    real_writes = [r for r in writes(kube) if r.query.get("dryRun") != "All"]
    assert {(r.verb, r.resource) for r in real_writes} == {("create", "deployments"), ("create", "services")}
    for record in writes(kube):  # the dry runs too: every write is alice's, through the bot
        assert (record.user, record.impersonated_user) == (BOT_USER, "alice"), record

    line = queue_line(cli, "alice", job)
    assert "RUNNING" in line and "alice" in line and "a100×1" in line
    status = cli("--as", "alice", "status", job)
    assert status.code == 0, status.err
    assert "RUNNING" in status.out and "alice" in status.out
    assert SERVE_MISTRAL in status.out  # the recorded request, found by the job's name

    scaled = cli("--as", "alice", "scale", job, "2")
    assert scaled.code == 0, scaled.err
    assert "2 replicas" in scaled.out
    after = kube.get_object("apps/v1", "Deployment", name, namespace)
    assert after is not None and after["spec"]["replicas"] == 2
    assert len(kube.pods(namespace)) == 2
    scale_writes = [r for r in writes(kube) if r.subresource == "scale"]
    assert scale_writes and all(r.impersonated_user == "alice" for r in scale_writes)

    cancelled = cli("--as", "alice", "cancel", job)
    assert cancelled.code == 0, cancelled.err
    assert kube.get_object("apps/v1", "Deployment", name, namespace) is None
    assert kube.get_object("v1", "Service", name, namespace) is None
    deletes = [r for r in writes(kube) if r.verb == "delete"]
    assert {r.resource for r in deletes} == {"deployments", "services"}
    assert all(r.impersonated_user == "alice" for r in deletes)


def test_only_the_owner_scales_or_cancels_a_service(kube: KubeEmulator, cli: Cli) -> None:
    kube.add_node("gpu-1", gpu_product=A100, gpus=4, gpu_memory_mib=81920)
    kube.allow_edit("bob", "research")  # RBAC would let bob; the concierge's ownership check does not
    job = cli.submit("alice", SERVE_MISTRAL)
    _, name = split_name(job)

    for verb in (("scale", job, "3"), ("cancel", job)):
        refused = cli("--as", "bob", *verb)
        assert refused.code == 3, refused.err
        assert "alice" in refused.err and "Traceback" not in refused.err
    deployment = kube.get_object("apps/v1", "Deployment", name, "research")
    assert deployment is not None and deployment["spec"]["replicas"] == 1
    assert not [r for r in writes(kube) if r.impersonated_user == "bob"]


def test_dry_run_json_follows_the_contract(kube: KubeEmulator, cli: Cli) -> None:
    kube.add_node("gpu-1", gpu_product=A100, gpus=4, gpu_memory_mib=81920)
    result = cli("--as", "alice", "ask", "--dry-run", "--json", "--backend", "k8s", SERVE_MISTRAL)
    assert result.code == 0, result.err
    printed = json.loads(result.out)
    assert set(printed) >= {"request", "decision", "backend", "plan", "warnings"}
    assert printed["backend"] == "k8s"
    assert printed["decision"]["verdict"] == "allow"
    assert printed["request"]["model"] == MISTRAL and printed["request"]["namespace"] == "research"
    manifests = printed["plan"]["manifests"]
    assert isinstance(manifests, list) and all(isinstance(m, dict) for m in manifests)
    assert [m["kind"] for m in manifests] == ["Deployment", "Service"]
    assert all(m["metadata"]["namespace"] == "research" for m in manifests)
    assert printed["plan"].get("sbatch_script") is None
    # Validated server-side with dryRun=All, as alice, and nothing was stored.
    assert writes(kube) and all(r.query.get("dryRun") == "All" for r in writes(kube))
    assert kube.objects("apps/v1", "Deployment") == [] and kube.objects("v1", "Service", "research") == []


def test_waiting_for_gpus_is_explained_with_alternatives(kube: KubeEmulator, cli: Cli) -> None:
    kube.add_node("gpu-1", gpu_product=A100, gpus=4, gpu_memory_mib=81920)
    kube.add_node("gpu-2", gpu_product=H100, gpus=4, gpu_memory_mib=81559)
    occupy(kube, "gpu-1", 2)  # 3 × a100 fits gpu-1 one day, but only 2 are free now

    job = cli.submit("alice", "kubernetes job with 3 a100 in namespace research, python train.py")
    (pod,) = kube.pods("research")
    assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName")

    line = queue_line(cli, "alice", job)
    assert "PENDING" in line and "a100×3" in line

    why = cli("--as", "alice", "why", job)
    assert why.code == 0, why.err
    first = why.out.split("\n\n", 1)[0]
    assert "no node has 3 × a100" in first and "free" in first
    assert "gpu-1" in first  # where the most are free: 2
    alternatives = first.split("What would start sooner:", 1)[1]
    assert "h100" in alternatives
    assert "ask for 2 instead of 3" in alternatives


def test_an_untolerated_taint_is_explained(kube: KubeEmulator, cli: Cli) -> None:
    kube.add_node("gpu-1", gpu_product=A100, gpus=2, gpu_memory_mib=81920)
    reserved = ["dedicated=infer:NoSchedule"]
    kube.add_node("infer-1", gpu_product=L40S, gpus=2, gpu_memory_mib=46068, taints=reserved)

    job = cli.submit("alice", "kubernetes job with 1 l40s in namespace research, python infer.py")
    assert "PENDING" in queue_line(cli, "alice", job)

    why = cli("--as", "alice", "why", job)
    assert why.code == 0, why.err
    taint = next(part for part in why.out.split("\n\n") if "taint" in part)
    assert "dedicated=infer" in taint and "does not tolerate" in taint
    assert "reserved" in taint  # said in plain words, not only the scheduler's braces
    assert "infer-1" in taint  # the free l40s sits on the reserved node


def test_an_image_that_cannot_be_pulled_is_explained(kube: KubeEmulator, cli: Cli) -> None:
    kube.add_node("gpu-1", gpu_product=A100, gpus=2, gpu_memory_mib=81920)
    kube.unpullable_images = {"registry.example/private:1"}

    text = "kubernetes job with image registry.example/private:1, 1 gpu, namespace research, python train.py"
    job = cli.submit("alice", text)
    (pod,) = kube.pods("research")
    assert pod["spec"]["nodeName"] == "gpu-1"  # scheduled: the wait is the image, not the GPUs
    assert "ImagePullBackOff" in queue_line(cli, "alice", job)

    why = cli("--as", "alice", "why", job)
    assert why.code == 0, why.err
    assert "registry.example/private:1 cannot be pulled" in why.out
    assert "pull secret" in why.out and "research" in why.out


def test_rbac_denial_is_plain_recorded_and_creates_nothing(kube: KubeEmulator, cli: Cli) -> None:
    kube.add_node("gpu-1", gpu_product=A100, gpus=2, gpu_memory_mib=81920)

    denied = cli("--as", "bob", "ask", "--yes", SERVE_MISTRAL)
    assert denied.code == 3, denied.out + denied.err
    assert "Traceback" not in denied.err and "incident" not in denied.err
    assert "namespace research" in denied.err and "Deployment" in denied.err
    assert "bob" in denied.err and "Submitted" not in denied.out

    assert kube.objects("apps/v1", "Deployment") == [] and kube.objects("v1", "Service", "research") == []
    bobs = [r for r in kube.request_log if r.impersonated_user == "bob" and r.verb in WRITES]
    assert bobs and all(r.query.get("dryRun") == "All" and r.code == 403 for r in bobs)

    history = cli("--as", "bob", "history")
    assert history.code == 0, history.err
    row = next(line for line in history.out.splitlines() if "bob" in line and "serve" in line)
    assert "denied" in row
    assert "namespace research" in history.out  # the reason, under its request


def test_free_lists_gpu_pools_read_from_the_nodes(kube: KubeEmulator, cli: Cli) -> None:
    kube.add_node("gpu-1", gpu_product=A100, gpus=4, gpu_memory_mib=81920)
    kube.add_node("gpu-2", gpu_product=A100, gpus=4, gpu_memory_mib=81920)
    kube.add_node("gpu-3", gpu_product=H100, gpus=8, gpu_memory_mib=81559)
    kube.add_node("cpu-1")
    occupy(kube, "gpu-1", 3)

    result = cli("free", "--backend", "k8s")
    assert result.code == 0, result.err
    rows = [line.split() for line in result.out.splitlines()[1:]]
    # By GPU type: (free, total, in use).
    seen = {r[1]: (int(r[2]), int(r[3]), int(r[4])) for r in rows}
    assert seen == {"a100": (5, 8, 3), "h100": (8, 8, 0)}

    only = cli("free", "--type", "h100", "--backend", "k8s")
    assert only.code == 0, only.err
    assert "h100" in only.out and "a100" not in only.out


def test_why_attributes_the_raw_message_to_kubernetes(kube: KubeEmulator, cli: Cli) -> None:
    kube.add_node("gpu-1", gpu_product=A100, gpus=2, gpu_memory_mib=81920)
    occupy(kube, "gpu-1", 2)
    job = cli.submit("alice", "kubernetes job with 1 a100 in namespace research, python train.py")

    why = cli("--as", "alice", "why", job)
    assert why.code == 0, why.err
    assert "Insufficient nvidia.com/gpu" in why.out  # the scheduler's own words are shown…
    assert "Slurm" not in why.out  # …but not as Slurm's


def test_the_preview_shows_the_manifests_as_yaml_before_the_verdict(kube: KubeEmulator, cli: Cli) -> None:
    kube.add_node("gpu-1", gpu_product=A100, gpus=4, gpu_memory_mib=81920)
    result = cli("--as", "alice", "ask", "--dry-run", "--backend", "k8s", SERVE_MISTRAL)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("Request ") and lines[0].endswith(f"serving {MISTRAL}, as alice")
    assert lines[1].startswith("The job runs in its container image's own environment")
    start = lines.index("--- Kubernetes manifests ---")
    end = lines.index("--- end of Kubernetes manifests ---")
    shown = "\n".join(lines[start + 1 : end])
    assert "1 × a100" in shown  # as written, not escaped
    manifests = list(yaml.safe_load_all(shown))
    assert [m["kind"] for m in manifests] == ["Deployment", "Service"]
    assert all(m["metadata"]["namespace"] == "research" for m in manifests)
    assert lines[end + 1] == "Policy: allow"


def test_a_failed_job_is_explained_with_its_last_lines(kube: KubeEmulator, cli: Cli) -> None:
    kube.add_node("gpu-1", gpu_product=A100, gpus=4, gpu_memory_mib=81920)
    job = cli.submit("alice", "1 a100 for 10 minutes in namespace research to run python train.py")
    (pod,) = kube.objects("v1", "Pod", "research")
    logs = "loading data\n/bin/sh: 1: python: not found"
    kube.finish_pod("research", pod["metadata"]["name"], succeeded=False, exit_code=127, logs=logs)
    assert cli("track", "--once").code == 0

    status = cli("--as", "alice", "status", job)
    assert "FAILED" in status.out and "It exited with code 127: the shell could not find" in status.out
    kept = "Its last lines, as Kubernetes kept them:\n    | loading data\n    | /bin/sh: 1: python: not found"
    assert kept in status.out
    assert "↳ failed: It exited with code 127" in cli("--as", "alice", "history").out
    other = cli("--as", "bob", "status", job)
    assert "exited with code 127" in other.out and "python: not found" not in other.out
