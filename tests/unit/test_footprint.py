"""The footprint: one truth for what a job holds, read back out of what is rendered for the cluster.

The property test generates requests over counts, types without counts, nodes, replicas, shared
and MIG slices, services and batch jobs on both backends; renders each as the engine does; reads
the GPUs, nodes/replicas and wall time back out of the sbatch header or the manifests; and checks
that the judge counted exactly that. The judge's own words are the check: with a per-job limit of 0
and an approval threshold of 0 GPU-hours, every GPU job gets the reasons "N GPUs asked" and
"H GPU-hours (N GPUs for T)", so the numbers the judge used can be read back too.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from backends.errors import RequestInvalid
from backends.footprint import GpusNotStated, derive_footprint, describe_footprint
from backends.k8s.capacity import node_gpus
from backends.k8s.facts import facts_from_nodes
from backends.k8s.manifests import build_manifests
from backends.k8s.objects import Node
from backends.k8s.settings import K8sSettings
from backends.slurm.durations import parse_slurm_duration
from backends.slurm.script import honoured_directives, render_sbatch_script
from backends.slurm.settings import SlurmSettings
from backends.types import Footprint, Identity, JobRequest, Target
from policies import PolicySettings, Usage, footprint_for, judge, load_policy
from tests.helpers.k8s_objects import decoded, node

ALICE = Identity(requester="U-ALICE", unix_user="alice", k8s_user="alice", default_namespace="research")
FACTS = facts_from_nodes(
    node_gpus(n)
    for n in decoded(
        [
            node("gpu-1", product="NVIDIA-A100-SXM4-80GB", gpus=8, memory_mib=81920),
            node("gpu-2", product="NVIDIA-H100-80GB-HBM3", gpus=8, memory_mib=81559),
            node("mig-1", product="NVIDIA-A100-SXM4-80GB", mig={"1g.10gb": 7}, mig_strategy="mixed"),
            node("ts-1", product="Tesla-T4", shared=8, sharing="time-slicing"),
        ],
        Node,
    )
)
# Every GPU job trips both counting rules, so the judge says the numbers it counted.
COUNTING = PolicySettings.model_validate(
    {
        **load_policy(None).model_dump(),
        "max_gpus_per_job": 0,
        "max_gpus_per_user": None,
        "approval_gpu_hours": 0,
    }
)
_ASKED = re.compile(r"^(?P<gpus>\d+) GPUs? asked, your limit is 0 per job")
_HOURS = re.compile(r"\((?P<gpus>\d+) GPUs? for (?P<time>[^,)]+)")


def footprint(request: JobRequest, backend: Target = "slurm") -> Footprint:
    return derive_footprint(request, backend, default_minutes=60, longest_minutes=2880)


# -- the rules, one by one -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"gpu_type": "a100"},  # "an A100"
        {"gpus": 1},  # "a GPU"
        {"shared": True},  # "a shared GPU"
        {"mig_profile": "1g.10gb"},  # "a MIG slice"
        {"gpu_memory_gb": 40},  # "a GPU with 40 GB"
        {"model": "org/model"},  # "serve org/model"
    ],
)
def test_a_gpu_named_without_a_count_is_one_per_node(fields: dict[str, Any]) -> None:
    held = footprint(JobRequest(command="x", nodes=64, **fields))
    assert (held.gpus_per_unit, held.units, held.total_gpus) == (1, 64, 64)


def test_gpus_are_per_node_so_64_on_64_nodes_is_4096() -> None:
    assert footprint(JobRequest(command="x", gpus=64, gpu_type="a100", nodes=64)).total_gpus == 4096


def test_a_kubernetes_service_counts_replicas_and_a_batch_job_its_pods() -> None:
    service = footprint(JobRequest(workload="service", image="nginx:1", gpu_type="a100", replicas=200), "k8s")
    assert (service.unit, service.total_gpus, service.time_limit_minutes) == ("replica", 200, None)
    batch = footprint(JobRequest(command="x", gpus=2, nodes=3), "k8s")
    assert (batch.unit, batch.total_gpus, batch.time_limit_minutes) == ("node", 6, 60)


def test_slurm_has_no_replicas() -> None:
    with pytest.raises(RequestInvalid, match="Slurm runs one job, not 3 replicas"):
        footprint(JobRequest(command="x", gpus=1, replicas=3))


@pytest.mark.parametrize("fields", [{}, {"gpus": 0}, {"gpus": 0, "gpu_type": "a100"}])
def test_no_gpu_understood_is_a_question_not_a_cpu_job(fields: dict[str, Any]) -> None:
    with pytest.raises(GpusNotStated, match="how many GPUs"):
        footprint(JobRequest(command="python a.py", **fields))


def test_cpu_only_is_said_in_so_many_words_and_cannot_also_name_a_gpu() -> None:
    cpu = footprint(JobRequest(command="python etl.py", cpu_only=True))
    assert (cpu.gpu_kind, cpu.total_gpus) == ("none", 0)
    assert describe_footprint(cpu).startswith("no GPU (CPU only)")
    with pytest.raises(RequestInvalid, match="both 'CPU only' and a GPU"):
        footprint(JobRequest(command="x", cpu_only=True, gpu_type="a100"))


def test_every_slurm_job_has_a_wall_time_a_service_the_longest() -> None:
    service = footprint(JobRequest(workload="service", command="python serve.py", gpus=1, port=8000))
    assert (service.time_limit_minutes, service.time_source) == (2880, "site_longest")
    assert "--time=2-00:00:00" in render_sbatch_script(service, ALICE, "r", SlurmSettings())
    batch = footprint(JobRequest(command="x", gpus=1))
    assert (batch.time_limit_minutes, batch.time_source) == (60, "site_default")
    assert describe_footprint(batch) == "1 × GPU for 1 h (site default)"


def test_the_summary_line_says_what_is_held() -> None:
    held = footprint(JobRequest(command="x", gpus=2, gpu_type="a100", nodes=2, time_limit_minutes=240))
    assert describe_footprint(held) == "2 × A100 on each of 2 nodes (4 GPUs) for 4 h"


# -- the property: rendered == judged ---------------------------------------------------------------


def _read_back_slurm(script: str) -> tuple[int, int]:
    """(total GPUs, minutes) from the #SBATCH lines sbatch will honour."""
    options = dict(line.removeprefix("#SBATCH ").split("=", 1) for line in honoured_directives(script))
    nodes = int(options.get("--nodes", "1"))
    gres = options.get("--gres")
    per_node = int(gres.rsplit(":", 1)[1]) if gres else 0
    minutes = parse_slurm_duration(options["--time"])
    assert minutes is not None
    return per_node * nodes, minutes


def _read_back_k8s(manifests: tuple[dict[str, Any], ...]) -> tuple[int, int | None]:
    """(total GPUs, deadline minutes or None) from the workload: pods × GPU limits of each pod."""
    (workload,) = [m for m in manifests if m["kind"] in ("Deployment", "Job")]
    spec = workload["spec"]
    pods = spec.get("replicas", 1) if workload["kind"] == "Deployment" else spec.get("parallelism", 1)
    limits = spec["template"]["spec"]["containers"][0].get("resources", {}).get("limits", {})
    per_pod = sum(int(v) for k, v in limits.items() if k.startswith("nvidia.com/"))
    deadline = spec.get("activeDeadlineSeconds")
    return per_pod * pods, deadline // 60 if deadline is not None else None


def _judged(footprint: Footprint) -> tuple[int, str | None]:
    """(GPUs, time) as the judge's own reasons state them."""
    decision = judge(footprint, ALICE, Usage(), COUNTING)
    gpus, time = 0, None
    for reason in decision.reasons:
        if asked := _ASKED.match(reason):
            gpus = int(asked["gpus"])
        if hours := _HOURS.search(reason):
            assert int(hours["gpus"]) == gpus
            time = hours["time"]
    return gpus, time


def _minutes(said: str) -> int:
    days = re.search(r"(\d+) days?", said)
    hours = re.search(r"(\d+) h", said)
    minutes = re.search(r"(\d+) min", said)
    return sum(int(m[1]) * n for m, n in ((days, 1440), (hours, 60), (minutes, 1)) if m)


def _requests(backend: Target) -> st.SearchStrategy[dict[str, Any]]:
    """Request fields, mostly ones that can be planned (so most cases are compared), with the
    refusals (no GPU, 0 GPUs, CPU only with a GPU, replicas on Slurm) still drawn now and then."""
    rarely = st.sampled_from([False] * 9 + [True])
    replicas = st.integers(min_value=0, max_value=200) if backend == "k8s" else st.sampled_from([1, 1, 1, 2])
    return st.fixed_dictionaries(
        {"gpu_type": st.sampled_from(["a100", "h100"])},
        optional={
            "gpus": st.integers(min_value=0, max_value=16),
            "gpu_memory_gb": st.sampled_from([10, 40, 80]),
            "mig_profile": st.just("1g.10gb"),
            "shared": rarely,
            "cpu_only": rarely,
            "nodes": st.integers(min_value=1, max_value=64),
            "replicas": replicas,
            "workload": st.sampled_from(["batch", "service"]),
            "model": st.just("org/model"),
            "port": st.just(8000),
            "time_limit_minutes": st.integers(min_value=1, max_value=3000),
        },
    )


def _without_type_sometimes(fields: dict[str, Any], drop: bool) -> dict[str, Any]:
    """A type named without a count is one of the cases under test; so is no type at all."""
    return {k: v for k, v in fields.items() if k != "gpu_type"} if drop else fields


requests = st.sampled_from(["slurm", "k8s"]).flatmap(
    lambda backend: st.tuples(st.just(backend), _requests(backend), st.booleans())
)


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=requests)
def test_what_is_rendered_is_what_is_judged(drawn: tuple[Target, dict[str, Any], bool]) -> None:
    backend, fields, drop_type = drawn
    fields = _without_type_sometimes(fields, drop_type)
    try:
        request = JobRequest(command="python run.py", image="img:1", **fields)
        held = footprint_for(request, backend, COUNTING, ALICE)
    except (ValidationError, RequestInvalid):
        event("asked back or refused before planning")
        return  # asked back or refused with a message: nothing is rendered, nothing judged
    judged_gpus, judged_time = _judged(held)
    try:
        if backend == "slurm":
            script = render_sbatch_script(held, ALICE, "req-1", SlurmSettings())
            rendered_gpus, rendered_minutes = _read_back_slurm(script)
        else:
            manifests = build_manifests(held, ALICE, "req-1", K8sSettings(), FACTS).manifests
            rendered_gpus, rendered_minutes = _read_back_k8s(manifests)
    except RequestInvalid:
        event("refused by the renderer (cannot be placed)")
        return  # the cluster cannot place it (e.g. 16 GPUs on an 8-GPU node): said, never run
    event(f"rendered and compared on {backend}")
    assert rendered_gpus == judged_gpus == held.total_gpus
    if judged_gpus == 0:
        return
    assert judged_time is not None
    if rendered_minutes is None:  # a Kubernetes service: judged as running the longest allowed
        assert held.service and _minutes(judged_time) == COUNTING.max_time_minutes
    else:
        assert _minutes(judged_time) == rendered_minutes
