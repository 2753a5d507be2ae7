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
`SlurmJob` then reads only what listings filter and sort on; everything else is read from the
decoded object when asked for, and `to_status` builds a job's `JobStatus` straight from it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import msgspec

from backends.bulk import collector_paused
from backends.errors import BackendUnavailable
from backends.slurm.durations import from_epoch
from backends.slurm.endings import exit_and_signal, output_path
from backends.slurm.gres import parse_gpus
from backends.slurm.reasons import start_estimate_is_meaningful
from backends.types import GpuAsk, JobEnding, JobRef, JobState, JobStatus

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


_NO_TEXT = frozenset({"", "(null)", "N/A"})


def _text(value: Any) -> str | None:
    if type(value) is str:  # every version prints these keys as strings; the rest is a fallback
        return None if value in _NO_TEXT else value
    if value is None:
        return None
    text = str(value)
    return None if text in _NO_TEXT else text


def _instant(value: Any) -> datetime | None:
    if type(value) is int:  # 22.05 and 23.02 print plain epoch seconds; 0 means not set
        return datetime.fromtimestamp(value, UTC) if value > 0 else None
    return from_epoch(_number(value))


def request_id_from_comment(comment: str | None) -> str | None:
    if comment and comment.startswith(OUR_TAG):
        return comment[len(OUR_TAG) :].strip() or None
    return None


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
    exit_code: Any = None
    standard_output: Any = None
    current_working_directory: Any = None
    batch_host: Any = None
    array_job_id: Any = None
    array_task_id: Any = None


@dataclass(slots=True)  # not frozen: frozen doubles construction time, and a queue builds 10,000
class SlurmJob:
    """One job as squeue reported it, in our vocabulary but with what `explain` needs besides.

    Only what listings filter and sort on is read up front; the rest is read from squeue's own
    object (`printed`) when asked for. So `statuses` and `explain` on a 10,000-job queue build no
    status they do not return, and `queue` builds each status once, straight from that object,
    not through a second 20-field copy of the job (bench/queue_render.py)."""

    job_id: str
    user: str
    state: JobState
    raw_state: str
    reason: str | None  # Slurm's code as printed, "None" included
    priority: int | None
    printed: _SqueueJob

    @property
    def ref(self) -> JobRef:
        return JobRef(backend="slurm", job_id=self.job_id)

    @property
    def name(self) -> str:
        return str(self.printed.name or "")

    @property
    def reason_detail(self) -> str | None:
        """state_description, e.g. "ReqNodeNotAvail, UnavailableNodes:n1"."""
        return _text(self.printed.state_description)

    @property
    def partition(self) -> str | None:
        return _text(self.printed.partition)

    @property
    def gpus(self) -> tuple[GpuAsk, ...]:
        # Per node first (--gres, --gpus-per-node); then per job (--gpus) and per task as asked.
        printed = self.printed
        for tres in (printed.tres_per_node, printed.tres_per_job, printed.tres_per_task):
            asks = parse_gpus(_text(tres))
            if asks:
                return asks
        return ()

    @property
    def node_count(self) -> int | None:
        return _number(self.printed.node_count)

    @property
    def node_list(self) -> str | None:
        return _text(self.printed.nodes)

    @property
    def submitted_at(self) -> datetime | None:
        return _instant(self.printed.submit_time)

    @property
    def start_time(self) -> datetime | None:
        """The actual start, or the backfill estimate while pending."""
        return _instant(self.printed.start_time)

    @property
    def end_time(self) -> datetime | None:
        """The actual end, or the time-limit end of a running job."""
        return _instant(self.printed.end_time)

    @property
    def time_limit_minutes(self) -> int | None:
        return _number(self.printed.time_limit)

    @property
    def comment(self) -> str | None:
        return _text(self.printed.comment)

    @property
    def dependency(self) -> str | None:
        return _text(self.printed.dependency)

    @property
    def account(self) -> str | None:
        return _text(self.printed.account)

    @property
    def qos(self) -> str | None:
        return _text(self.printed.qos)

    @property
    def expected_start(self) -> datetime | None:
        if self.state is JobState.PENDING and start_estimate_is_meaningful(self.reason):
            return self.start_time
        return None

    def ending(self) -> JobEnding:
        """Exit code or signal and the output file, for a job that has ended (backends/slurm/endings.py)."""
        printed = self.printed
        code, signal = exit_and_signal(printed.exit_code, _number)
        path = output_path(
            _text(printed.standard_output),
            job_id=self.job_id,
            name=self.name,
            user=self.user,
            workdir=_text(printed.current_working_directory),
            node=_text(printed.batch_host),
            array_job=_number(printed.array_job_id),
            array_task=_number(printed.array_task_id),
        )
        reason = self.reason if self.reason != "None" else None
        return JobEnding(exit_code=code, signal=signal, output_path=path, reason=reason)

    def elapsed_seconds(self, now: datetime) -> int | None:
        return self._elapsed_seconds(self.start_time, now)

    def _elapsed_seconds(self, start: datetime | None, now: datetime) -> int | None:
        # The start is passed in because to_status has read it already; the end is read only for
        # the few jobs that have ended.
        if start is None or self.state is JobState.PENDING:
            return None
        until = now if self.state in (JobState.RUNNING, JobState.SUSPENDED) else self.end_time or now
        return max(int((until - start).total_seconds()), 0)

    def to_status(self, now: datetime) -> JobStatus:
        # Reads `printed` directly rather than through the properties above: a queue calls this
        # 10,000 times, and the property calls alone cost several ms of its budget.
        printed = self.printed
        pending = self.state is JobState.PENDING
        start_time = _instant(printed.start_time)
        comment = _text(printed.comment)
        return JobStatus(
            ref=JobRef(backend="slurm", job_id=self.job_id),
            name=str(printed.name or ""),
            user=self.user,
            state=self.state,
            raw_state=self.raw_state,
            # Slurm keeps the code "None" on running and ended jobs; only a pending job has a reason.
            reason=self.reason if pending or self.reason != "None" else None,
            partition=_text(printed.partition),
            gpus=self.gpus,
            nodes=_number(printed.node_count),
            submitted_at=_instant(printed.submit_time),
            started_at=None if pending else start_time,
            expected_start=start_time if pending and start_estimate_is_meaningful(self.reason) else None,
            elapsed_seconds=self._elapsed_seconds(start_time, now),
            time_limit_minutes=_number(printed.time_limit),
            comment=comment,
            request_id=request_id_from_comment(comment),
            ending=self.ending() if self.state.is_final else None,
        )


def _state_of(value: Any) -> tuple[JobState, str]:
    """(our state, Slurm's spelling) of a `job_state` value, a string or a list of names."""
    return _state_and_spelling(value if type(value) is str else _state_names(value))


@lru_cache(maxsize=256)  # a queue repeats a few state values thousands of times
def _state_and_spelling(value: str | tuple[str, ...]) -> tuple[JobState, str]:
    names = _state_names(value)
    return _map_state_names(names), "+".join(names) or "UNKNOWN"


def _state_names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return ()


def job_from_json(job: _SqueueJob) -> SlurmJob:
    state, raw_state = _state_of(job.job_state)
    return SlurmJob(
        job_id=str(_number(job.job_id)),
        user=str(job.user_name or job.user_id or ""),
        state=state,
        raw_state=raw_state,
        reason=_text(job.state_reason),
        priority=_number(job.priority),
        printed=job,
    )


class _SqueueDocument(msgspec.Struct):
    jobs: list[_SqueueJob] | None = None
    errors: list[Any] | None = None


_decoder = msgspec.json.Decoder(_SqueueDocument)


def split_stderr(text: str) -> tuple[str, str]:
    """(the JSON document, what squeue printed on stderr after it) of `squeue --json` run with
    include_stderr: 22.05 exits 0 on failures, and only stderr says why (munge down)."""
    if text.rstrip().endswith("}"):
        return text, ""
    # 22.05 prints the document's closing brace alone on its last line, with no newline after it.
    end = text.rfind("\n}")
    end = end + 2 if end >= 0 else text.rfind("}") + 1
    if end <= 0:
        return text, ""
    return text[:end], text[end:]


def parse_squeue_json(text: str | bytes, stderr: str = "") -> list[SlurmJob]:
    """Every job in a `squeue --json` document. Raises BackendUnavailable on Slurm-side errors,
    with squeue's `stderr` where it says more (munge down)."""
    try:
        with collector_paused():
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
        if "munge" in stderr.lower():
            said = " / ".join(line.strip() for line in stderr.splitlines() if "munge" in line.lower())
            raise BackendUnavailable(
                f"Slurm could not be asked: MUNGE, which proves who is asking, is not answering on "
                f"this machine ({said}). Ask the cluster administrators to start munged (or to fix "
                "its key); nothing was changed.",
                retry_after=30.0,
            )
        raise BackendUnavailable(
            f"squeue could not list the jobs (Slurm said: {described}); Slurm's controller may be "
            "down or unreachable. Try again in a minute; if it persists, ask the cluster "
            "administrators whether slurmctld is running.",
            retry_after=30.0,
        )
    with collector_paused():
        return [job_from_json(job) for job in document.jobs or []]


def data_parser_version(text: str) -> str | None:
    """`v0.0.38`…: the plugin that wrote a document (for diagnostics and fixture checks)."""
    meta = json.loads(text).get("meta", {})
    plugin = meta.get("plugin", {})
    for key in ("data_parser", "type"):
        label = plugin.get(key) or ""
        if "v0.0." in label:
            return "v" + label.rsplit("/v", 1)[-1]
    return None
