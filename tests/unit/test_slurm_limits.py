"""GPU limits read from `scontrol -o show assoc_mgr` (22.05 one-line records) and checked against a job.

The fixture is built after src/scontrol/info_assoc_mgr.c of slurm-22.05 (field order, `N(used)`,
"Account Limits= acct={…} User Limits= uid={…}" lists); see tests/fixtures/slurm/README.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.slurm.limit_checks import Ask, LimitCheck, check_for_reason, describe_check, limit_checks
from backends.slurm.limits import (
    AssocRecord,
    GpuTres,
    assoc_mgr_argv,
    lacks_list_limits,
    parse_assoc_mgr,
    sacctmgr_qos_argv,
    with_qos_definitions,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "slurm"
MGR = parse_assoc_mgr((FIXTURES / "assoc-mgr-22.05-constructed.txt").read_text())
CAPTURED = parse_assoc_mgr((FIXTURES / "assoc-mgr-22.05.txt").read_text())
EMPTY = (
    "Current Association Manager state\nNo users currently cached in Slurm.\n"
    "No associations currently cached in Slurm.\nNo QOS currently cached in Slurm.\n"
)


def _ask(gpus: int, *, qos: str | None = "team", account: str | None = "physics", per_node: int = 0) -> Ask:
    return Ask("alice", account, qos, "gpu", gpus, per_node or gpus, job_id="45")


def test_records_are_read_with_limits_and_use() -> None:
    assert MGR.users["alice"] == (1001, "physics")
    team = MGR.qos["team"]
    assert team.group == GpuTres(2, 2)
    assert team.per_job == 4
    assert team.per_user is None  # printed as N in every user's entry
    assert team.used_by_uid == {1001: 1, 1002: 1}
    assert team.used_by_account == {"physics": 2}
    solo = MGR.qos["solo"]
    assert (solo.per_user, solo.used_by_uid, solo.group) == (1, {1002: 1}, GpuTres(None, 1))
    assert MGR.qos["normal"].group == GpuTres(None, 0)
    physics = next(a for a in MGR.assocs if a.account == "physics" and a.user is None)
    assert physics == AssocRecord("physics", None, None, "root", GpuTres(3, 2), None, None)
    assert [a.account for a in MGR.account_chain("chemistry")] == ["chemistry", "root"]


def test_no_accounting_reads_as_empty() -> None:
    assert parse_assoc_mgr(EMPTY).empty
    assert not MGR.empty


def test_every_limit_of_the_qos_and_the_account_chain_is_checked() -> None:
    checks = limit_checks(_ask(1), MGR)
    assert [(c.reason, c.limit, c.used) for c in checks] == [
        ("QOSMaxGRESPerJob", 4, None),
        ("QOSGrpGRES", 2, 2),
        ("AssocGrpGRES", 3, 2),
    ]
    chemistry = limit_checks(_ask(3, qos="normal", account="chemistry"), MGR)
    assert [(c.reason, c.limit, c.used, c.never_fits) for c in chemistry] == [
        ("AssocMaxGRESPerJob", 2, None, True),
        ("AssocGrpGRES", 1, 1, True),
    ]


def test_the_default_account_and_qos_are_used_when_none_is_named() -> None:
    checks = limit_checks(_ask(1, qos=None, account=None), MGR)
    assert [c.reason for c in checks] == ["AssocGrpGRES"]  # QOS normal has no GPU limit; physics has


def test_per_user_use_comes_from_the_person_entry_or_else_from_the_queue() -> None:
    solo = limit_checks(_ask(1, qos="solo"), MGR)
    per_user = check_for_reason("QOSMaxGRESPerUser", solo)
    assert per_user is not None
    assert (per_user.limit, per_user.used) == (1, 0)  # alice has no entry, nothing running in the queue


def test_the_reason_picks_the_tightest_limit_of_its_kind() -> None:
    checks = [
        LimitCheck("AssocGrpGRES", "a", 8, 1, 2),
        LimitCheck("AssocGrpGRES", "b", 3, 2, 2),
        LimitCheck("QOSGrpGRES", "c", 2, 2, 2),
    ]
    assert check_for_reason("AssocGrpGRES", checks) == checks[1]
    assert check_for_reason("QOSMaxGRESPerUser", checks) is None


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        (
            LimitCheck("QOSGrpGRES", "QOS team allows 2 GPUs at once for all its jobs together", 2, 2, 1),
            "QOS team allows 2 GPUs at once for all its jobs together; 2 are in use: wait for one to end",
        ),
        (
            LimitCheck("AssocGrpGRES", "account physics allows 3 GPUs at once", 3, 2, 2),
            "account physics allows 3 GPUs at once; 2 are in use: ask for 1 or wait for one to end",
        ),
        (
            LimitCheck("QOSMaxGRESPerUser", "QOS solo allows each user 2 GPUs at once", 2, 0, 3),
            "QOS solo allows each user 2 GPUs at once and this asks for 3, more than that by itself, so "
            "Slurm holds it forever: ask for 2 or fewer",
        ),
        (
            LimitCheck("QOSMaxGRESPerJob", "QOS team allows 4 GPUs per job", 4, None, 2),
            "QOS team allows 4 GPUs per job; this asks for 2, which fits",
        ),
    ],
)
def test_sentences_name_the_limit_the_use_and_what_fits(check: LimitCheck, expected: str) -> None:
    assert describe_check(check, "alice") == expected


def test_argv_is_one_call_for_the_person_and_the_qos() -> None:
    assert assoc_mgr_argv(user="alice", qos="team") == [
        "scontrol",
        "-o",
        "show",
        "assoc_mgr",
        "flags=users,assoc,qos",
        "users=alice",
        "qos=team",
    ]
    assert assoc_mgr_argv(user="alice", qos=None)[-1] == "users=alice"


def test_the_captured_22_05_records_read_as_slurm_counted_them() -> None:
    assert CAPTURED.users == {"alice": (1001, "concierge")}
    group = CAPTURED.qos["gpu-group"]
    assert group.group == GpuTres(2, 2)  # bob's a100 and alice's l40s
    assert group.used_by_uid == {1001: 1, 1002: 1} and group.per_user is None
    vision = next(a for a in CAPTURED.assocs if a.account == "vision" and a.user is None)
    assert (vision.parent, vision.group) == ("root", GpuTres(1, 0))
    assert [a.account for a in CAPTURED.account_chain("vision")] == ["vision", "root"]
    checks = limit_checks(Ask("alice", None, "gpu-group", "gpu", 1, 1, job_id="4"), CAPTURED)
    assert [(c.reason, c.limit, c.used) for c in checks] == [("QOSGrpGRES", 2, 2)]


def test_a_qos_nobody_used_yet_gets_its_per_user_limit_from_sacctmgr() -> None:
    assert lacks_list_limits(CAPTURED, "gpu-per-user")  # "User Limits=No Users"
    assert CAPTURED.qos["gpu-per-user"].per_user is None
    filled = with_qos_definitions(CAPTURED, (FIXTURES / "sacctmgr-qos-22.05.txt").read_text())
    assert filled.qos["gpu-per-user"].per_user == 1
    assert filled.qos["gpu-per-user"].per_account is None
    (check,) = limit_checks(Ask("alice", None, "gpu-per-user", "gpu", 2, 2), filled)
    assert (check.reason, check.limit, check.used, check.never_fits) == ("QOSMaxGRESPerUser", 1, 0, True)
    assert sacctmgr_qos_argv("gpu-per-user") == [
        "sacctmgr",
        "-n",
        "-P",
        "show",
        "qos",
        "where name=gpu-per-user",
        "format=Name,MaxTRESPerUser,MaxTRESPerAccount",
    ]
