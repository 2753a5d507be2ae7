"""GPU limits of QOS and associations, read from `scontrol -o show assoc_mgr` where Slurm keeps them.

The controller's association manager prints each record on one line with `-o`
(src/scontrol/info_assoc_mgr.c): `QOS=normal(1) … GrpTRES=cpu=N(3),gres/gpu=8(6) … MaxTRESPJ=
gres/gpu=4 MaxTRESPN= MaxTRESPU=gres/gpu=4 …` and `ClusterName=c Account=a UserName=u(1001) …
GrpTRES=…`. A value is `LIMIT(USAGE)` in Grp fields, `LIMIT` in Max fields, `N` for no limit.
Without accounting through slurmdbd there are no records ("No QOS currently cached"); then the
reader returns None and the explanation says the limit could not be read.
Per-user and per-account usage is not printed by assoc_mgr, so it is summed from the queue.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# Which record and field hold the limit behind each reason code.
LIMIT_FIELDS: Mapping[str, tuple[str, str]] = {
    "QOSMaxGRESPerUser": ("qos", "MaxTRESPU"),
    "QOSMaxGRESPerJob": ("qos", "MaxTRESPJ"),
    "QOSMaxGRESPerNode": ("qos", "MaxTRESPN"),
    "QOSGrpGRES": ("qos", "GrpTRES"),
    "AssocGrpGRES": ("assoc", "GrpTRES"),
    "AssocMaxGRESPerJob": ("assoc", "MaxTRESPJ"),
    "MaxGRESPerAccount": ("qos", "MaxTRESPA"),
}

_FIELD = re.compile(r"(?:^|\s)(?P<key>[A-Za-z]+)=(?P<value>\S*)")
_GPU_VALUE = re.compile(r"(?:^|,)gres/gpu(?::[^=,]+)?=(?P<limit>N|\d+)(?:\((?P<used>\d+)\))?")
_QOS_NAME = re.compile(r"^QOS=(?P<name>[^(\s]+)")
_ACCOUNT = re.compile(r"(?:^|\s)Account=(?P<name>\S*)")
_USER = re.compile(r"(?:^|\s)UserName=(?P<name>[^(\s]*)")


@dataclass(frozen=True)
class GpuLimit:
    scope: str  # "QOS normal, per user", "account physics"…
    limit: int
    used: int | None  # None when Slurm does not print the usage for this field


def _fields(record: str) -> dict[str, str]:
    return {match["key"]: match["value"] for match in _FIELD.finditer(record)}


def _gpu_limit(value: str) -> tuple[int, int | None] | None:
    match = _GPU_VALUE.search(value)
    if match is None or match["limit"] == "N":
        return None
    used = match["used"]
    return int(match["limit"]), int(used) if used is not None else None


_SCOPES = {
    "MaxTRESPU": "per user",
    "MaxTRESPJ": "per job",
    "MaxTRESPN": "per node",
    "MaxTRESPA": "per account",
    "GrpTRES": "for all its jobs together",
}


def read_gpu_limit(
    reason: str, assoc_mgr_text: str, *, qos: str | None, account: str | None, user: str | None
) -> GpuLimit | None:
    """The GPU limit behind `reason` in assoc_mgr's one-line records, if Slurm has it."""
    where = LIMIT_FIELDS.get(reason)
    if where is None:
        return None
    kind, key = where
    for record in assoc_mgr_text.splitlines():
        record = record.strip()
        if kind == "qos":
            name = _QOS_NAME.match(record)
            if name is None or (qos and name["name"] != qos):
                continue
            scope = f"QOS {name['name']}, {_SCOPES[key]}"
        else:
            if not record.startswith("ClusterName="):
                continue
            record_account = _ACCOUNT.search(record)
            record_user = _USER.search(record)
            if account and (record_account is None or record_account["name"] != account):
                continue
            if record_user and record_user["name"] and user and record_user["name"] != user:
                continue
            label = record_account["name"] if record_account else "?"
            scope = f"account {label}, {_SCOPES[key]}"
        found = _gpu_limit(_fields(record).get(key, ""))
        if found is not None:
            return GpuLimit(scope=scope, limit=found[0], used=found[1])
    return None


def assoc_mgr_argv(*, user: str | None, account: str | None, qos: str | None) -> list[str]:
    argv = ["scontrol", "-o", "show", "assoc_mgr", "flags=assoc,qos"]
    if user:
        argv.append(f"users={user}")
    if account:
        argv.append(f"accounts={account}")
    if qos:
        argv.append(f"qos={qos}")
    return argv
