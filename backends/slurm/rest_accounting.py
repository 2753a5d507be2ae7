"""`sacct` over slurmrestd: GET /slurmdb/{version}/jobs rendered as the lines accounting.py reads.

slurmrestd serves accounting only where it loads the slurmdbd plugin (`-s …,openapi/dbv0.0.38`)
and slurmdbd accepts its JWTs (AuthAltTypes=auth/jwt in slurmdbd.conf). The job ids go in the
`step` filter ("Comma delimited list of job steps to match": a bare job id matches the job).
Shapes: v0.0.38 prints plain numbers, `state` {"current": "FAILED", "reason": …}, `comment`
{"job": …}; the data_parser versions (v0.0.39+) print numbers as {"set","infinite","number"} and
`state.current` as a list. 22.05's exit_code there is not the job's: it says
{"status": "SUCCESS", "return_code": 0} for a job that exited 3 (sacct -P says 3:0), so a FAILED
job whose REST code says success has its code left unknown rather than wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from backends.slurm.accounting import SACCT_FIELDS

_NO_VAL = 0xFFFFFFFE


def db_path(version: str, resource: str) -> str:
    tail = "/" if version != "v0.0.38" else ""
    return f"/slurmdb/{version}/{resource}{tail}"


def sacct_query(options: Sequence[str]) -> dict[str, str] | None:
    """The query for accounting.sacct_argv's `sacct … --format=SACCT_FIELDS -j IDS`; None for any
    other sacct (its fields or filters would be answered wrongly by these lines)."""
    if f"--format={','.join(SACCT_FIELDS)}" not in options:
        return None
    for i, option in enumerate(options):
        if option in ("-j", "--jobs") and i + 1 < len(options):
            return {"step": options[i + 1]}
    return None


def _number(value: Any) -> int | None:
    if isinstance(value, Mapping):
        if value.get("infinite") or not value.get("set", True):
            return None
        value = value.get("number")
    return value if isinstance(value, int) and not isinstance(value, bool) and value < _NO_VAL else None


def _instant(value: Any) -> str:
    seconds = _number(value)
    if not seconds:
        return "Unknown"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _words(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence):
        return [str(v) for v in value]
    return []


def _state(job: Mapping[str, Any]) -> tuple[str, str]:
    state = job.get("state")
    if not isinstance(state, Mapping):
        return "UNKNOWN", ""
    current = _words(state.get("current"))
    return (current[0] if current else "UNKNOWN"), str(state.get("reason") or "")


def _exit_code(job: Mapping[str, Any], raw_state: str) -> str:
    code = job.get("exit_code")
    if not isinstance(code, Mapping):
        return ""
    signal = code.get("signal")
    if isinstance(signal, Mapping):
        number = _number(signal.get("id", signal.get("signal_id")))
        if number:
            return f"0:{number}"
    return_code = _number(code.get("return_code"))
    said_success = "SUCCESS" in _words(code.get("status"))
    if return_code is None or (raw_state != "COMPLETED" and return_code == 0 and said_success):
        return ""  # 22.05 says success for any job here: unknown, not wrong
    return f"{return_code}:0"


def _tres(job: Mapping[str, Any]) -> str:
    tres = job.get("tres")
    allocated = tres.get("allocated") if isinstance(tres, Mapping) else None
    items: list[str] = []
    for item in allocated or ():
        if not isinstance(item, Mapping):
            continue
        kind, name, count = item.get("type"), item.get("name"), _number(item.get("count"))
        if kind and count is not None:
            items.append(f"{kind}/{name}={count}" if name else f"{kind}={count}")
    return ",".join(items)


def _comment(job: Mapping[str, Any]) -> str:
    comment = job.get("comment")
    if isinstance(comment, Mapping):
        comment = comment.get("job")
    return str(comment) if comment else ""


def sacct_lines(body: Mapping[str, Any]) -> str:
    """`sacct -X -P -n --format=SACCT_FIELDS` lines for the jobs of a /slurmdb/…/jobs answer."""
    lines: list[str] = []
    for job in body.get("jobs") or ():
        if not isinstance(job, Mapping):
            continue
        raw_state, reason = _state(job)
        times = job.get("time")
        time: Mapping[str, Any] = times if isinstance(times, Mapping) else {}
        fields = {
            "JobIDRaw": str(job.get("job_id", "")),
            "State": raw_state,
            "ExitCode": _exit_code(job, raw_state),
            "Reason": reason,
            "ElapsedRaw": str(_number(time.get("elapsed")) or 0),
            "AllocTRES": _tres(job),
            "Submit": _instant(time.get("submission")),
            "Start": _instant(time.get("start")),
            "End": _instant(time.get("end")),
            "User": str(job.get("user") or ""),
            "JobName": str(job.get("name") or ""),
            "Partition": str(job.get("partition") or ""),
            "Comment": _comment(job),
        }
        lines.append("|".join(fields[name].replace("\n", " ") for name in SACCT_FIELDS))
    return "\n".join(lines) + ("\n" if lines else "")
