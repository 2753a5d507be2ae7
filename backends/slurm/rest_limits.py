"""`scontrol show assoc_mgr` over slurmrestd: the slurmdbd plugin's QOS and associations rendered as the
one-line records limits.py reads, so both drivers explain limits the same way.

GET /slurmdb/{v}/qos and /slurmdb/{v}/associations (openapi/dbv0.0.38 on 22.05, verified on the
local slurmrestd): a QOS's `limits.max.tres.total` is GrpTRES, `limits.max.tres.per.{job,node,user,
account}` the per-job/node/user/account limits; an association's `max.tres.total` is GrpTRES and
`max.tres.per.{job,node}` its per-job/node limits, `parent_account` and `is_default` as named. Each
TRES is `{"type": "gres", "name": "gpu", "count": N}`. These are the definitions only: the database
keeps no current use, so usage is left unprinted and limit_checks sums it from the queue. The
per-user and per-account limits are rendered as one `*` entry of the QOS's lists (the same limit for
everyone), which also tells limits.py that the definition is known.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _gpu_count(tres: Any) -> int | None:
    if not isinstance(tres, Sequence) or isinstance(tres, str):
        return None
    for item in tres:
        if isinstance(item, Mapping) and item.get("type") == "gres" and item.get("name") == "gpu":
            count = item.get("count")
            return count if isinstance(count, int) and not isinstance(count, bool) else None
    return None


def _tres(limit: int | None) -> str:
    return "" if limit is None else f"gres/gpu={limit}"


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _qos_line(qos: Mapping[str, Any]) -> str:
    tres = _dig(qos, "limits", "max", "tres") or {}
    per_user = _gpu_count(_dig(tres, "per", "user"))
    per_account = _gpu_count(_dig(tres, "per", "account"))
    return (
        f"QOS={qos.get('name', '')} GrpTRES={_tres(_gpu_count(tres.get('total')))} "
        f"MaxTRESPJ={_tres(_gpu_count(_dig(tres, 'per', 'job')))} "
        f"MaxTRESPN={_tres(_gpu_count(_dig(tres, 'per', 'node')))} "
        f"Account Limits= *={{MaxTRESPA={_tres(per_account) or 'gres/gpu=N'}}} "
        f"User Limits= *={{MaxTRESPU={_tres(per_user) or 'gres/gpu=N'}}}"
    )


def _assoc_line(assoc: Mapping[str, Any]) -> str:
    tres = _dig(assoc, "max", "tres") or {}
    return (
        f"ClusterName={assoc.get('cluster') or ''} Account={assoc.get('account') or ''} "
        f"UserName={assoc.get('user') or ''} Partition={assoc.get('partition') or ''} "
        f"ParentAccount={assoc.get('parent_account') or ''} "
        f"GrpTRES={_tres(_gpu_count(tres.get('total')))} "
        f"MaxTRESPJ={_tres(_gpu_count(_dig(tres, 'per', 'job')))} "
        f"MaxTRESPN={_tres(_gpu_count(_dig(tres, 'per', 'node')))}"
    )


def assoc_mgr_lines(qos_body: Mapping[str, Any], assoc_body: Mapping[str, Any], user: str | None) -> str:
    """assoc_mgr's records for `user` (their associations and every account-level one) and every QOS."""
    lines = ["Current Association Manager state (from slurmrestd's slurmdbd plugin: limits only)"]
    associations = [a for a in assoc_body.get("associations") or [] if isinstance(a, Mapping)]
    mine = [a for a in associations if user is None or a.get("user") in (None, "", user)]
    default = next((a.get("account") for a in mine if a.get("user") == user and a.get("is_default")), None)
    if user and default:
        lines.append(f"UserName={user} DefAccount={default}")
    lines += [_assoc_line(a) for a in mine]
    lines += [
        _qos_line(q) for q in qos_body.get("QOS") or qos_body.get("qos") or [] if isinstance(q, Mapping)
    ]
    return "\n".join(lines) + "\n"
