"""GPU limits read from `scontrol -o show assoc_mgr` (constructed after info_assoc_mgr.c)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.slurm.limits import GpuLimit, assoc_mgr_argv, read_gpu_limit

TEXT = (Path(__file__).parents[1] / "fixtures" / "slurm" / "assoc-mgr-constructed.txt").read_text()
EMPTY = (
    "Current Association Manager state\n\nNo associations currently cached in Slurm.\n\n"
    "No QOS currently cached in Slurm.\n"
)


@pytest.mark.parametrize(
    ("reason", "qos", "expected"),
    [
        ("QOSMaxGRESPerUser", "normal", GpuLimit("QOS normal, per user", 4, None)),
        ("QOSMaxGRESPerUser", "long", GpuLimit("QOS long, per user", 1, None)),
        ("QOSMaxGRESPerJob", "normal", GpuLimit("QOS normal, per job", 4, None)),
        ("QOSMaxGRESPerNode", "normal", GpuLimit("QOS normal, per node", 2, None)),
        ("QOSGrpGRES", "normal", GpuLimit("QOS normal, for all its jobs together", 16, 10)),
        ("QOSGrpGRES", "long", None),  # N: no limit set
        ("MaxGRESPerAccount", "normal", None),  # not printed by assoc_mgr
    ],
)
def test_qos_limits(reason: str, qos: str, expected: GpuLimit | None) -> None:
    assert read_gpu_limit(reason, TEXT, qos=qos, account="physics", user="alice") == expected


def test_association_limits_prefer_the_record_that_sets_one() -> None:
    found = read_gpu_limit("AssocGrpGRES", TEXT, qos=None, account="physics", user="alice")
    assert found == GpuLimit("account physics, for all its jobs together", 6, 6)
    per_job = read_gpu_limit("AssocMaxGRESPerJob", TEXT, qos=None, account="physics", user="alice")
    assert per_job == GpuLimit("account physics, per job", 8, None)


def test_nothing_cached_reads_as_none() -> None:
    assert read_gpu_limit("QOSMaxGRESPerUser", EMPTY, qos="normal", account=None, user="alice") is None
    assert read_gpu_limit("Resources", TEXT, qos="normal", account=None, user="alice") is None


def test_argv_names_only_what_is_known() -> None:
    assert assoc_mgr_argv(user="alice", account=None, qos="normal") == [
        "scontrol",
        "-o",
        "show",
        "assoc_mgr",
        "flags=assoc,qos",
        "users=alice",
        "qos=normal",
    ]
