"""`squeue --json` across data_parser versions, read into one shape (`SlurmJob`).

What changes between versions (read from src/plugins/data_parser/*/parsers.c and real output):
  22.05  openapi v0.0.38  `job_state` "PENDING"; times, `time_limit`, `priority` plain ints;
                          `tres_per_node` "gres:gpu:a100:2"; meta key `Slurm`.
  23.02  v0.0.39          `job_state` still a string; `time_limit`, `priority`, `node_count`
                          become {"set","infinite","number"}; instants stay ints.
  23.11+ v0.0.40…v0.0.44  `job_state` a list (["PENDING"], ["COMPLETED","COMPLETING"]…); instants
                          are {"set","infinite","number"} too; GRES spelled "gres/gpu:a100:2".
So every number is read through `_number` (int, null or the object) and every state through
`_state_names` (string or list); nothing depends on the version label, which keeps working when a
version we have not seen adds fields.

Speed: a 22.05 job object is about 2.7 kB of JSON, so a 10,000-job queue is 27 MB, and the
standard library's json.loads alone takes longer (about 200 ms here) than the whole `concierge
queue` may (150 ms, bench/queue_render.py). msgspec decodes straight into `_SqueueJob`, reading
only the ~20 keys we use and skipping the rest without building dicts for them (about 40 ms).
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import msgspec

from backends.errors import BackendUnavailable
from backends.slurm.durations import from_epoch
from backends.slurm.gres import parse_gpus
from backends.slurm.reasons import start_estimate_is_meaningful
from backends.types import GpuAsk, JobRef, JobState, JobStatus

OUR_TAG = "gpu-concierge:"

# Base states and the flags that override them (src/common/slurm_protocol_defs.c job_state_string).
_BASE_STATES: Mapping[str, JobState] = {
    "PENDING": JobState.PENDING,
    "RUNNING": JobState.RUNNING,
    "SUSPENDED": JobState.SUSPENDED,
    "COMPLETED": JobState.COMPLETED,
    "CANCELLED": JobState.CANCELLED,
    "FAILED": JobState.FAILED,
    "TIMEOUT": JobState.TIMEOUT,
    "NODE_FAIL": JobState.FAILED,
    "PREEMPTED": JobState.CANCELLED,  # stopped by the scheduler, not by the job
    "BOOT_FAIL": JobState.FAILED,
    "DEADLINE": JobState.TIMEOUT,
    "OUT_OF_MEMORY": JobState.FAILED,
}
_FLAG_STATES: tuple[tuple[str, JobState], ...] = (
    ("COMPLETING", JobState.COMPLETING),
    ("STAGE_OUT", JobState.COMPLETING),
    ("SIGNALING", JobState.COMPLETING),
    ("REQUEUED", JobState.PENDING),
    ("REQUEUE_HOLD", JobState.PENDING),
    ("REQUEUE_FED", JobState.PENDING),
    ("SPECIAL_EXIT", JobState.PENDING),
    ("REVOKED", JobState.CANCELLED),
    ("STOPPED", JobState.SUSPENDED),
    ("CONFIGURING", JobState.RUNNING),
    ("RESIZING", JobState.RUNNING),
)


def map_job_state(names: Iterable[str]) -> JobState:
    """Our state for Slurm's state names (one string in ≤23.02, base + flags in ≥23.11)."""
    return _map_state_names(tuple(names))


@lru_cache(maxsize=256)  # a queue repeats a few state combinations thousands of times
def _map_state_names(names: tuple[str, ...]) -> JobState:
    upper = [name.upper() for name in names]
    for flag, state in _FLAG_STATES:
        if flag in upper:
            return state
    for name in upper:
        if name in _BASE_STATES:
            return _BASE_STATES[name]
    return JobState.UNKNOWN


def _number(value: Any) -> int | None:
    """An int from 22.05's plain numbers or the {"set","infinite","number"} of later versions."""
    if type(value) is int:  # the common case first: this runs ~10 times per job of a queue
        return value
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, Mapping):
        if value.get("infinite") or not value.get("set", True):
            return None
        return _number(value.get("number"))
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _state_names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return ()


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if text and text not in ("(null)", "N/A") else None


def request_id_from_comment(comment: str | None) -> str | None:
    if comment and comment.startswith(OUR_TAG):
        return comment[len(OUR_TAG) :].strip() or None
    return None


@dataclass(slots=True)  # not frozen: frozen doubles construction time, and a queue builds 10,000
class SlurmJob:
    """One job as squeue reported it, in our vocabulary but with what `explain` needs besides."""

    job_id: str
    name: str
    user: str
    state: JobState
    raw_state: str
    reason: str | None
    reason_detail: str | None  # state_description, e.g. "ReqNodeNotAvail, UnavailableNodes:n1"
    partition: str | None
    gpus: tuple[GpuAsk, ...]
    node_count: int | None
    node_list: str | None
    priority: int | None
    submitted_at: datetime | None
    start_time: datetime | None  # actual start, or the backfill estimate while pending
    end_time: datetime | None  # actual end, or the time-limit end of a running job
    time_limit_minutes: int | None
    comment: str | None
    dependency: str | None
    account: str | None
    qos: str | None

    @property
    def ref(self) -> JobRef:
        return JobRef(backend="slurm", job_id=self.job_id)

    @property
    def expected_start(self) -> datetime | None:
        if self.state is JobState.PENDING and start_estimate_is_meaningful(self.reason):
            return self.start_time
        return None

    def elapsed_seconds(self, now: datetime) -> int | None:
        if self.start_time is None or self.state is JobState.PENDING:
            return None
        until = now if self.state in (JobState.RUNNING, JobState.SUSPENDED) else self.end_time or now
        return max(int((until - self.start_time).total_seconds()), 0)

    def to_status(self, now: datetime) -> JobStatus:
        return JobStatus(
            ref=self.ref,
            name=self.name,
            user=self.user,
            state=self.state,
            raw_state=self.raw_state,
            # Slurm keeps the code "None" on running and ended jobs; only a pending job has a reason.
            reason=self.reason if self.state is JobState.PENDING or self.reason != "None" else None,
            partition=self.partition,
            gpus=self.gpus,
            nodes=self.node_count,
            submitted_at=self.submitted_at,
            started_at=None if self.state is JobState.PENDING else self.start_time,
            expected_start=self.expected_start,
            elapsed_seconds=self.elapsed_seconds(now),
            time_limit_minutes=self.time_limit_minutes,
            comment=self.comment,
            request_id=request_id_from_comment(self.comment),
        )


def _gpus_of(job: Mapping[str, Any]) -> tuple[GpuAsk, ...]:
    # Per node first (--gres, --gpus-per-node); then per job (--gpus) and per task as asked.
    for key in ("tres_per_node", "tres_per_job", "tres_per_task"):
        asks = parse_gpus(_text(job.get(key)))
        if asks:
            return asks
    return ()


def job_from_json(job: Mapping[str, Any]) -> SlurmJob:
    names = _state_names(job.get("job_state"))
    reason = _text(job.get("state_reason"))
    return SlurmJob(
        job_id=str(_number(job.get("job_id"))),
        name=str(job.get("name") or ""),
        user=str(job.get("user_name") or job.get("user_id") or ""),
        state=map_job_state(names),
        raw_state="+".join(names) or "UNKNOWN",
        reason=reason,
        reason_detail=_text(job.get("state_description")),
        partition=_text(job.get("partition")),
        gpus=_gpus_of(job),
        node_count=_number(job.get("node_count")),
        node_list=_text(job.get("nodes")),
        priority=_number(job.get("priority")),
        submitted_at=from_epoch(_number(job.get("submit_time"))),
        start_time=from_epoch(_number(job.get("start_time"))),
        end_time=from_epoch(_number(job.get("end_time"))),
        time_limit_minutes=_number(job.get("time_limit")),
        comment=_text(job.get("comment")),
        dependency=_text(job.get("dependency")),
        account=_text(job.get("account")),
        qos=_text(job.get("qos")),
    )


class _SqueueJob(msgspec.Struct):
    """The keys of a squeue job object that we read; their types vary by version, hence Any."""

    job_id: Any = None
    name: Any = None
    user_name: Any = None
    user_id: Any = None
    job_state: Any = None
    state_reason: Any = None
    state_description: Any = None
    partition: Any = None
    tres_per_node: Any = None
    tres_per_job: Any = None
    tres_per_task: Any = None
    node_count: Any = None
    nodes: Any = None
    priority: Any = None
    submit_time: Any = None
    start_time: Any = None
    end_time: Any = None
    time_limit: Any = None
    comment: Any = None
    dependency: Any = None
    account: Any = None
    qos: Any = None


class _SqueueDocument(msgspec.Struct):
    jobs: list[_SqueueJob] | None = None
    errors: list[Any] | None = None


_decoder = msgspec.json.Decoder(_SqueueDocument)


@contextmanager
def cycle_collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while building many objects that form no cycles.

    A 10,000-job listing allocates ~100,000 objects; the collector's generation-0 passes over them
    took ~45 ms of ~210 ms here, for nothing: reference counting frees all of it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_squeue_json(text: str | bytes) -> list[SlurmJob]:
    """Every job in a `squeue --json` document. Raises BackendUnavailable on Slurm-side errors."""
    try:
        with cycle_collector_paused():
            document = _decoder.decode(text)
    except msgspec.ValidationError as e:
        raise BackendUnavailable(
            f"squeue --json printed JSON without the expected shape ({e}); the Slurm version may be "
            "one the concierge does not know yet"
        ) from e
    except msgspec.DecodeError as e:
        raise BackendUnavailable(
            f"squeue --json printed something that is not JSON ({e}); "
            "the Slurm client may be too old for --json (it needs 21.08 or newer)"
        ) from e
    errors = document.errors or []
    if errors:
        described = "; ".join(
            str(e.get("description") or e.get("error") or e) if isinstance(e, Mapping) else str(e)
            for e in errors
        )
        # 22.05 exits 0 with {"errors": [{"description": "Failed while looking for jobs", …}]}
        # when the controller cannot be reached.
        raise BackendUnavailable(
            f"squeue could not list the jobs (Slurm said: {described}); Slurm's controller may be "
            "down or unreachable. Try again in a minute; if it persists, ask the cluster "
            "administrators whether slurmctld is running.",
            retry_after=30.0,
        )
    with cycle_collector_paused():
        return [job_from_json(msgspec.structs.asdict(job)) for job in document.jobs or []]


def data_parser_version(text: str) -> str | None:
    """`v0.0.38`…: the plugin that wrote a document (for diagnostics and fixture checks)."""
    meta = json.loads(text).get("meta", {})
    plugin = meta.get("plugin", {})
    for key in ("data_parser", "type"):
        label = plugin.get(key) or ""
        if "v0.0." in label:
            return "v" + label.rsplit("/v", 1)[-1]
    return None
