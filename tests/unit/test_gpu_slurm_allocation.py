"""Which job holds which GPU, from `scontrol show job -d` text (backends/slurm/gpu_allocation.py).

The texts are in tests/gpu_fakes/scontrol_text.py (Slurm 22.05's layout, constructed).
"""

from __future__ import annotations

import pytest

from backends.errors import BackendUnavailable
from backends.gpu.samples import GpuHolder
from backends.slurm.gpu_allocation import gpu_indices, parse_gpu_allocations, read_gpu_allocations
from tests.fakes.slurm_cli import FakeSlurm
from tests.gpu_fakes.scontrol_text import CLUSTER, LOCAL_22_05


def holders(allocations: dict[tuple[str, str], GpuHolder]) -> dict[tuple[str, str], tuple[str, str]]:
    return {slot: (holder.job_id, holder.owner) for slot, holder in allocations.items()}


def test_local_22_05_format() -> None:
    assert holders(parse_gpu_allocations(LOCAL_22_05)) == {
        ("vm", "0"): ("81", "alice"),
        ("vm", "1"): ("81", "alice"),
        ("vm", "3"): ("82", "bob"),
    }
    assert parse_gpu_allocations(LOCAL_22_05)[("vm", "0")] == GpuHolder(
        backend="slurm", job_id="81", owner="alice"
    )


def test_every_spelling_and_state() -> None:
    assert holders(parse_gpu_allocations(CLUSTER)) == {
        **{(node, str(i)): ("5001", "erin") for node in ("gpu01", "gpu02") for i in range(4)},
        **{("gpu04", str(i)): ("5001", "erin") for i in range(2, 6)},
        ("gpu03", "0"): ("5002", "frank"),
        ("gpu03", "6"): ("5002", "frank"),
        ("gpu05", "0"): ("5003", "grace"),
        ("gpu05", "1"): ("5008", "niaj"),  # completing, and nobody running has it
        ("gpu05", "2"): ("5003", "grace"),  # running beats completing
        ("gpu05", "3"): ("5003", "grace"),
        ("gpu06", "7"): ("5004", "heidi"),
        ("gpu08", "1"): ("5007", "mallory"),  # suspended jobs keep their GPUs
    }


def test_nothing_running() -> None:
    assert parse_gpu_allocations("No jobs in the system\n") == {}
    assert parse_gpu_allocations("") == {}


@pytest.mark.parametrize(
    ("detail", "indices"),
    [
        ("gpu:a100:2(IDX:0-1)", [0, 1]),
        ("gpu:a100(IDX:0,2-3)", [0, 2, 3]),
        ("gpu(IDX:5)", [5]),
        ("gpu:2(IDX:0-1)", [0, 1]),
        ("gres/gpu:h100:1(IDX:7)", [7]),
        ("gres:gpu:h100:1(IDX:4)", [4]),
        ("gpu:a100:1(IDX:0),gpu:l40s:2(IDX:2-3)", [0, 2, 3]),
        ("gpu:a100(CNT:1)", []),
        ("gpu:a100:0(IDX:N/A)", []),
        ("shard:a100:2(2/4,0/4)", []),
        ("mps:100(IDX:0)", []),
        ("", []),
    ],
)
def test_gres_detail(detail: str, indices: list[int]) -> None:
    assert gpu_indices(detail) == indices


def test_one_scontrol_call_for_the_whole_cluster() -> None:
    slurm = FakeSlurm({"scontrol": LOCAL_22_05 + CLUSTER})
    allocations = read_gpu_allocations(slurm)
    assert allocations == {**parse_gpu_allocations(LOCAL_22_05), **parse_gpu_allocations(CLUSTER)}
    assert len(allocations) == 3 + 20
    assert [argv for argv, _, _ in slurm.calls] == [["scontrol", "show", "job", "-d"]]


def test_scontrol_failure_is_the_runners_error() -> None:
    slurm = FakeSlurm({"scontrol": BackendUnavailable("scontrol did not answer within 30 s")})
    with pytest.raises(BackendUnavailable):
        read_gpu_allocations(slurm)


def test_detail_lookalikes_outside_the_detail_block_are_not_read() -> None:
    forged = "x\n     Nodes=gpu99 CPU_IDs=0 Mem=0 GRES=gpu:h100:8(IDX:0-7)"
    text = LOCAL_22_05.replace("JobId=81 JobName=train-81", f"JobId=81 JobName={forged}", 1)
    assert holders(parse_gpu_allocations(text)) == holders(parse_gpu_allocations(LOCAL_22_05))
