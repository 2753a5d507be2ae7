"""slurmrestd's documents for what the CLI driver reads and writes: no HTTP here, only shapes.

Versions (from slurmrestd's own /openapi of 22.05 and the published v0.0.40–v0.0.42 schemas):
  v0.0.38 (22.05)  job properties are parsed by Slurm's option parser, so values are sbatch's
                   spellings ("01:00:00", "16G"); environment is an object; node `state` a word
                   plus `state_flags`; a partition's `max_time_limit` is minutes.
  v0.0.39+         data_parser: numbers are {"set","infinite","number"}, environment a list of
                   "K=V", node `state` a list; a partition's `maximums.time` is such a number;
                   GRES in `tres_per_node` ("gres/gpu:a100:2" from v0.0.40, 23.11).
The job listing is the document `squeue --json` prints, read by json_formats for every version.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from backends.errors import RequestInvalid
from backends.slurm.durations import format_time_limit, parse_slurm_duration
from backends.slurm.script import honoured_directives

# Newest first: the first one the server offers is used.
SUPPORTED_VERSIONS: tuple[str, ...] = ("v0.0.42", "v0.0.41", "v0.0.40", "v0.0.39", "v0.0.38")
_NO_VAL = 0xFFFFFFFE  # v0.0.38's plain ints: NO_VAL/INFINITE are 0xfffffffe/0xffffffff


def uses_data_parser(version: str) -> bool:
    return version != "v0.0.38"


def path(version: str, resource: str) -> str:
    """`/slurm/v0.0.38/jobs`; the data_parser versions publish their collections with a slash."""
    tail = "/" if uses_data_parser(version) and resource in ("jobs", "nodes", "partitions", "ping") else ""
    return f"/slurm/{version}/{resource}{tail}"


def offered_version(paths: Iterable[str]) -> str | None:
    """The newest version we speak among the paths of the server's OpenAPI document."""
    offered = {p.rstrip("/") for p in paths}
    for version in SUPPORTED_VERSIONS:
        if path(version, "jobs").rstrip("/") in offered:
            return version
    return None


def _number(value: int) -> dict[str, Any]:
    return {"set": True, "infinite": False, "number": value}


def _megabytes(mem: str) -> int:
    units = {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}
    text = mem.strip().lower()
    factor = units.get(text[-1:])
    return int(float(text[:-1]) * factor) if factor else int(text)


def _gres(value: str, new: bool) -> str:
    return f"gres{'/' if new else ':'}{value}"


_Converter = Callable[[str, str], tuple[str, Any]]
# sbatch option → (job property, value) per version; each option script.py writes has one.
_OPTIONS: Mapping[str, _Converter] = {
    "job-name": lambda v, _: ("name", v),
    "partition": lambda v, _: ("partition", v),
    "account": lambda v, _: ("account", v),
    "qos": lambda v, _: ("qos", v),
    "nodes": lambda v, _: ("nodes", v),
    "gres": lambda v, ver: (
        ("tres_per_node", _gres(v, ver != "v0.0.39")) if uses_data_parser(ver) else ("gres", v)
    ),
    "time": lambda v, ver: (
        "time_limit",
        _number(parse_slurm_duration(v) or 0) if uses_data_parser(ver) else v,
    ),
    "cpus-per-task": lambda v, ver: ("cpus_per_task", int(v) if uses_data_parser(ver) else v),
    "mem": lambda v, ver: ("memory_per_node", _number(_megabytes(v)) if uses_data_parser(ver) else v),
    "output": lambda v, _: ("standard_output", v),
    "chdir": lambda v, _: ("current_working_directory", v),
    "comment": lambda v, _: ("comment", v),
}
# --export=NONE, as sbatch sends it: the node loads the person's login environment.
_LOGIN_ENVIRONMENT = {"SLURM_GET_USER_ENV": "1", "SLURM_EXPORT_ENV": "NONE"}


def job_submission(script: str, version: str) -> dict[str, Any]:
    """The body of POST job/submit: the script as written, and its #SBATCH lines as job properties
    (slurmrestd does not read #SBATCH lines)."""
    job: dict[str, Any] = {}
    environment = {"PATH": "/bin:/usr/bin"}  # v0.0.38 requires one; --export=NONE replaces it
    for directive in honoured_directives(script):
        option, _, value = directive.split(None, 1)[1].removeprefix("--").partition("=")
        if option == "export" and value == "NONE":
            environment = dict(_LOGIN_ENVIRONMENT)
            continue
        convert = _OPTIONS.get(option)
        if convert is None:
            raise RequestInvalid(f"the slurmrestd driver cannot send the sbatch option --{option}")
        key, converted = convert(value, version)
        job[key] = converted
    if uses_data_parser(version):
        job["environment"] = [f"{k}={v}" for k, v in environment.items()]
    else:
        job["environment"] = environment
    return {"script": script, "job": job}


def submitted_job_id(body: Mapping[str, Any]) -> str | None:
    job_id = body.get("job_id")
    if job_id is None and isinstance(body.get("result"), Mapping):  # v0.0.41's deprecated wrapper
        job_id = body["result"].get("job_id")
    return str(job_id) if isinstance(job_id, int) else None


def error_text(body: Mapping[str, Any]) -> str:
    """Slurm's own words in a response's `errors` (each a description and/or an error)."""
    said: list[str] = []
    for error in body.get("errors") or ():
        if isinstance(error, Mapping):
            words = error.get("description") or error.get("error")
            if words and words not in said:
                said.append(str(words))
    return "\n".join(said)


def _minutes(value: Any) -> int | None:
    if isinstance(value, Mapping):
        if value.get("infinite") or not value.get("set", True):
            return None
        value = value.get("number")
    return value if isinstance(value, int) and value < _NO_VAL else None


def _node_state(node: Mapping[str, Any]) -> str:
    state = node.get("state") or ""
    words = [state] if isinstance(state, str) else list(state)
    words += list(node.get("state_flags") or ())
    return "+".join(str(word).lower() for word in words if word)


def sinfo_lines(nodes: Mapping[str, Any], partitions: Mapping[str, Any]) -> str:
    """The lines `sinfo -N -O NodeList|Partition|StateComplete|Gres|GresUsed|Time` prints."""
    max_time: dict[str, int | None] = {}
    for partition in partitions.get("partitions") or ():
        maximums = partition.get("maximums")
        limit = maximums.get("time") if isinstance(maximums, Mapping) else partition.get("max_time_limit")
        max_time[partition["name"]] = _minutes(limit)
    lines: list[str] = []
    for node in nodes.get("nodes") or ():
        names = node.get("partitions") or ()
        for partition_name in names.split(",") if isinstance(names, str) else names:
            minutes = max_time.get(partition_name)
            time_limit = format_time_limit(minutes) if minutes else "infinite"
            fields = (
                node["name"],
                partition_name,
                _node_state(node),
                node.get("gres") or "",
                node.get("gres_used") or "",
                time_limit,
            )
            lines.append("|".join(str(f) for f in fields) + "|")
    return "\n".join(lines) + ("\n" if lines else "")


def decoded(text: str) -> Mapping[str, Any]:
    """The JSON object of a response; {} when it is not one (a proxy's HTML page)."""
    try:
        body = json.loads(text)
    except ValueError:
        return {}
    return body if isinstance(body, Mapping) else {}
