"""Request details through the public parser: GPUs per node, memory, names, images and models."""

from __future__ import annotations

from typing import Any

import pytest

from bot.understanding.grammar import understand


def parsed(text: str) -> dict[str, Any]:
    printed = understand(text).to_contract()
    assert printed["intent"] == "submit", printed
    return printed


@pytest.mark.parametrize(
    ("text", "nodes", "gpus"),
    [
        ("2 nodes x 4 a100, 12 hours, bash launch.sh", 2, 4),
        ("4 nodes with 8 a100 each, bash x.sh", 4, 8),
        ("2 nodes, 8 H100 per node, bash x.sh", 2, 8),
        ("8 GPUs across 2 nodes, bash x.sh", 2, 4),  # a total spread over nodes: per node = 4
        ("16 GPUs in total on 4 nodes, bash x.sh", 4, 4),
        ("4 gpus on a single node, bash x.sh", 1, 4),
    ],
)
def test_gpus_are_per_node(text: str, nodes: int, gpus: int) -> None:
    printed = parsed(text)
    assert (printed["nodes"], printed["gpus"]) == (nodes, gpus)


def test_a_total_that_does_not_divide_is_refused_with_a_way_out() -> None:
    intent = understand("6 GPUs across 4 nodes for 1h: bash x.sh")
    assert intent.kind == "unknown"
    assert intent.message is not None and "4 nodes with" in intent.message


def test_replicas_never_divide_gpus() -> None:
    printed = parsed("serve org/Model-1 on two A10 gpus with 2 replicas")
    assert (printed["gpus"], printed["replicas"]) == (2, 2)


@pytest.mark.parametrize(
    ("text", "gpu_memory", "host_memory"),
    [
        ("a gpu with at least 24GB for 2 hours: python fit.py", 24, None),
        ("A100 80GB x2, python x.py", 80, None),
        ("80GB A100, python x.py", 80, None),
        ("2 gpus with 24GB vram, python x.py", 24, None),
        ("1 T4, 16GB ram, python x.py", None, 16),
        ("2 a100, 64GB ram, python x.py", None, 64),
        ("1 gpu, 64G, python x.py", None, 64),
        ("1 gpu, 512MB memory, python x.py", None, 1),
        ("1 gpu with 40GB and 128Gi of ram, python x.py", 40, 128),
        ("2 A100 GPUs (80GB) for 2 hours, python x.py", 80, None),  # a size in brackets after the GPUs
        ("4 H100s [80 GB each], python x.py", 80, None),
        ("1 L40S (48GB vram) and 64GB ram, python x.py", 48, 64),
        ("2 gpus (64GB RAM), python x.py", None, 64),
    ],
)
def test_gpu_memory_and_host_memory_are_told_apart(text: str, gpu_memory: int, host_memory: int) -> None:
    printed = parsed(text)
    assert (printed["gpu_memory_gb"], printed["memory_gb"]) == (gpu_memory, host_memory)


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("4 cpus, 1 gpu, python x.py", 4), ("16 cores, 1 gpu, python x.py", 16), ("8 cpu cores, 1 gpu", 8)],
)
def test_cpus(text: str, cpus: int) -> None:
    assert parsed(text)["cpus"] == cpus


def test_mig_slice_is_not_a_whole_gpu() -> None:
    printed = parsed("need a 1g.5gb MIG slice for 45 minutes to run python tiny.py")
    assert (printed["mig_profile"], printed["gpus"], printed["memory_gb"]) == ("1g.5gb", None, None)


@pytest.mark.parametrize(
    ("text", "image", "model"),
    [
        (
            "run nvidia/cuda:12.4.1-base-ubuntu22.04 on kubernetes with 1 gpu",
            "nvidia/cuda:12.4.1-base-ubuntu22.04",
            None,
        ),
        ("image ghcr.io/org/app:latest, 1 gpu", "ghcr.io/org/app:latest", None),
        ("image registry.local:5000/team/app, 1 gpu", "registry.local:5000/team/app", None),
        ("serve mistralai/Mistral-7B-Instruct-v0.3 on 1 gpu", None, "mistralai/Mistral-7B-Instruct-v0.3"),
        ("deploy microsoft/Phi-3-mini-4k-instruct on a shared gpu", None, "microsoft/Phi-3-mini-4k-instruct"),
        ("1 gpu, python x.py --cfg configs/big.yaml", None, None),  # a path is neither
        ("1 gpu for cpu/gpu checks, python x.py", None, None),  # nor an ordinary slash
    ],
)
def test_images_models_and_paths(text: str, image: str | None, model: str | None) -> None:
    printed = parsed(text)
    assert (printed["image"], printed["model"]) == (image, model)


@pytest.mark.parametrize(
    ("text", "target", "workload"),
    [
        ("4 A100s on slurm, python x.py", "slurm", "batch"),
        ("sbatch 1 gpu, bash x.sh", "slurm", "batch"),
        ("kubernetes job with 1 gpu, python x.py", "k8s", "batch"),
        ("2 gpus in namespace ml, python x.py", "k8s", "batch"),
        ("deploy org/Model-7B on 1 gpu", "k8s", "service"),
        ("1 gpu, image a/b:1, port 8080", "k8s", "service"),
        ("2 gpus, python x.py", None, "batch"),
    ],
)
def test_target_and_workload(text: str, target: str | None, workload: str) -> None:
    printed = parsed(text)
    assert (printed["target"], printed["workload"]) == (target, workload)


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("1 gpu, partition long, python x.py", "partition", "long"),
        ("1 gpu on the debug partition, python x.py", "partition", "debug"),
        ("1 gpu, partition a100, python x.py", "partition", "a100"),
        ("1 gpu, account vision, python x.py", "account", "vision"),
        ("1 gpu, --account=cv-lab, python x.py", "account", "cv-lab"),
        ("1 gpu, acct genomics, python x.py", "account", "genomics"),
        ("1 gpu, acct: bio-lab, python x.py", "account", "bio-lab"),
        # a label followed by a count of something: the count is not the label's value
        ("on the L40S partition: 1 L40S, python x.py", "partition", "L40S"),
        ("on the long partition: 2 nodes, 1 gpu, python x.py", "partition", "long"),
        ("qos: 4 gpus, python x.py", "qos", None),
        ("1 gpu, qos normal, python x.py", "qos", "normal"),
        ("1 gpu in namespace inference, python x.py", "namespace", "inference"),
        ("1 gpu in the research namespace, python x.py", "namespace", "research"),
        ("job name llama-sft, 1 gpu, python x.py", "name", "llama-sft"),
        ("sbatch job named nightly-eval with 1 gpu, bash x.sh", "name", "nightly-eval"),
        ("k8s deployment llm-inference, image a/b:1, 1 gpu", "name", "llm-inference"),
        ("1 gpu, port 3000, image a/b:1", "port", 3000),
        ("3 replicas of org/M-1 on one gpu each", "replicas", 3),
        ("time-sliced gpu for 2 hours, python x.py", "shared", True),
    ],
)
def test_labelled_values(text: str, field: str, value: object) -> None:
    assert parsed(text)[field] == value


def test_nothing_inside_the_command_is_read_as_a_detail() -> None:
    printed = parsed("run `python train.py --gpus 8 --hours 4 --partition x` on 2 gpus")
    assert (printed["gpus"], printed["time_limit_minutes"], printed["partition"]) == (2, None, None)


def test_a_name_cannot_carry_a_second_line() -> None:
    printed = parsed("I need 2 A100s for 4 hours named foo\n#SBATCH --uid=0 to run python x.py")
    assert printed["name"] == "foo"
    assert printed["command"] == "python x.py"


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("1 a100 for 4 hours to run python x.py, results due in 30 hours", 240),
        ("results due in 30 hours: 1 a100 to run python x.py", None),
        ("2 a100 to run python x.py, the deadline is in 2 days", None),
    ],
)
def test_a_deadline_or_a_time_past_is_not_the_wall_time(text: str, minutes: int | None) -> None:
    # Left out, the site's default applies and the preview says so; a deadline taken as the wall time
    # would quietly ask for (and be judged as) far more GPU-hours than the job needs.
    assert understand(text).request.time_limit_minutes == minutes
