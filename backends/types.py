"""The types that cross the bridge between the doors (CLI, Slack, scheduler) and the clusters.

Everything a person's words become is a `JobRequest`; everything a cluster tells us comes back as
`JobStatus`, `PendingReason` or `GpuPool`. Backends and the bot see only these, never a client
library's objects, so a backend can be swapped or faked without touching the doors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from dataclasses import field as dataclass_field
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Every value type: immutable, unknown fields refused. Schemas are built on first validation, not
# at import: a CLI command uses a few of these models and starting fast matters (bench/cli_startup.py).
VALUE_MODEL = ConfigDict(frozen=True, extra="forbid", defer_build=True)

Target = Literal["slurm", "k8s"]
Workload = Literal["batch", "service"]

# A name, partition, account, qos or namespace: printable, one line, no shell or YAML specials
# that could change meaning when a backend places it in a script header or a manifest.
NAME_MAX_CHARS = 128
SafeName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX_CHARS)]
GPU_TYPE_MAX_CHARS = 32
GPU_TYPE_PATTERN = re.compile(rf"^[a-z0-9][a-z0-9_.-]{{0,{GPU_TYPE_MAX_CHARS - 1}}}$")
MIG_PATTERN = re.compile(r"^\d+g\.\d+gb$")


class IntentKind(StrEnum):
    SUBMIT = "submit"
    STATUS = "status"
    QUEUE = "queue"
    WHY_PENDING = "why_pending"
    CAPACITY = "capacity"
    CANCEL = "cancel"
    DIGEST = "digest"
    HELP = "help"
    UNKNOWN = "unknown"


class JobRequest(BaseModel):
    """What a person asked for. Field meanings follow shared/contracts/parse.md."""

    model_config = VALUE_MODEL

    target: Target | None = None
    workload: Workload | None = None
    gpus: int | None = Field(default=None, ge=0, le=1024)
    gpu_type: str | None = Field(default=None, pattern=GPU_TYPE_PATTERN.pattern)
    gpu_memory_gb: int | None = Field(default=None, ge=1, le=4096)
    mig_profile: str | None = Field(default=None, pattern=MIG_PATTERN.pattern)
    shared: bool = False
    cpu_only: bool = False  # "CPU only", "no GPU": said in so many words, never assumed
    nodes: int | None = Field(default=None, ge=1, le=10_000)
    replicas: int | None = Field(default=None, ge=0, le=1_000)
    time_limit_minutes: int | None = Field(default=None, ge=1, le=366 * 24 * 60)
    cpus: int | None = Field(default=None, ge=1, le=100_000)
    memory_gb: int | None = Field(default=None, ge=1, le=1_000_000)
    partition: SafeName | None = None
    account: SafeName | None = None
    qos: SafeName | None = None
    namespace: SafeName | None = None
    name: SafeName | None = None
    image: SafeName | None = None
    model: SafeName | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    command: str | None = Field(default=None, min_length=1, max_length=100_000)


class Intent(BaseModel):
    """What the person wants done; `request` carries the details (also filters for queries)."""

    model_config = VALUE_MODEL

    kind: IntentKind
    request: JobRequest = JobRequest()
    job: str | None = None
    message: str | None = None  # for `unknown`: what we could not understand and what to try

    def to_contract(self) -> dict[str, Any]:
        """The printed form fixed by shared/contracts/parse.md."""
        printed: dict[str, Any] = {"intent": self.kind.value}
        printed.update(self.request.model_dump(mode="json"))
        printed["job"] = self.job
        if self.message:
            printed["message"] = self.message
        return printed


class Identity(BaseModel):
    """Who asks, as the cluster knows them. Comes from a verified source, never from request text."""

    model_config = VALUE_MODEL

    requester: str  # the person's id at the door (Slack user id, or the Unix login at the CLI)
    unix_user: str | None = None
    k8s_user: str | None = None
    k8s_groups: tuple[str, ...] = ()
    default_namespace: str | None = None
    is_admin: bool = False


class GpuKind(StrEnum):
    WHOLE = "whole"
    MIG = "mig"
    SHARED = "shared"
    NONE = "none"  # a CPU job the person asked for in so many words


class TimeSource(StrEnum):
    STATED = "stated"
    SITE_DEFAULT = "site_default"
    SITE_LONGEST = "site_longest"  # a service on Slurm: the longest the site allows
    OPEN_ENDED = "open_ended"  # a Kubernetes service: runs until cancelled


class Footprint(BaseModel):
    """What one job will hold. Derived once by `backends.footprint.derive_footprint` (which says how
    each value is decided); the plan is rendered from it, the policy judges it, the store records it."""

    model_config = VALUE_MODEL

    request: JobRequest
    backend: Target
    service: bool
    gpus_per_unit: int = Field(ge=0)
    units: int = Field(ge=0)
    unit: Literal["node", "replica"]
    gpu_kind: GpuKind
    time_limit_minutes: int | None = Field(default=None, ge=1)
    time_source: TimeSource

    @property
    def total_gpus(self) -> int:
        return self.gpus_per_unit * self.units

    def judged_minutes(self, longest_minutes: int | None) -> int | None:
        """The minutes GPU-hours are counted over: an open-ended service counts as the longest
        allowed time (leaving the time out must never ask for less); None when nothing bounds it."""
        return self.time_limit_minutes if self.time_limit_minutes is not None else longest_minutes


class Plan(BaseModel):
    """What would run, shown to the person before anything is submitted. Built without side effects."""

    model_config = VALUE_MODEL

    backend: Target
    request_id: str
    footprint: Footprint
    identity: Identity
    sbatch_script: str | None = None
    manifests: tuple[dict[str, Any], ...] = ()
    warnings: tuple[str, ...] = ()
    environment: str | None = None  # what the job's environment will be, in words, said by the backend

    @property
    def request(self) -> JobRequest:
        return self.footprint.request

    def to_contract(self) -> dict[str, Any]:
        if self.backend == "slurm":
            return {"sbatch_script": self.sbatch_script}
        return {"manifests": list(self.manifests)}


class JobRef(BaseModel):
    model_config = VALUE_MODEL

    backend: Target
    job_id: str
    cluster: str | None = None

    def __str__(self) -> str:
        return self.job_id


class JobState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETING = "completing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    SUSPENDED = "suspended"
    VANISHED = "vanished"  # the scheduler forgot the job before its end was observed
    UNKNOWN = "unknown"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset(
    {JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED, JobState.TIMEOUT, JobState.VANISHED}
)
# Where a job stands in every backend's queue listing: running first, pending after (others last).
QUEUE_ORDER = {JobState.RUNNING: 0, JobState.COMPLETING: 1, JobState.SUSPENDED: 2, JobState.PENDING: 3}


class JobEnding(BaseModel):
    """How an ended job ended, as the scheduler tells it; `backends.endings` says it in words."""

    model_config = VALUE_MODEL

    exit_code: int | None = None  # the command's exit status, when it exited
    signal: int | None = None  # the signal that ended it, when one did
    output_path: str | None = None  # the file its output went to (Slurm's StdOut), as the node wrote it
    reason: str | None = None  # the scheduler's word for the end ("OOMKilled", "DeadlineExceeded", …)
    message: str | None = None  # the scheduler's message (Kubernetes: the log's last lines on error)
    elapsed_seconds: int | None = None  # how long it ran, from accounting (Slurm: sacct ElapsedRaw)
    gpu_hours: float | None = None  # GPUs allocated × time it ran, from accounting (AllocTRES gres/gpu)


class GpuAsk(BaseModel):
    """GPUs a job holds or asks for, per node."""

    model_config = VALUE_MODEL

    count: int
    gpu_type: str | None = None

    def __str__(self) -> str:
        return f"{self.gpu_type or 'gpu'}×{self.count}"


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStatus:
    """One job as a backend reports it now.

    A dataclass, not a pydantic model: backends build thousands of these per queue listing from
    values they have already parsed and typed, and validating them again cost more than the whole
    listing may take (bench/queue_render.py)."""

    ref: JobRef
    name: str
    user: str
    state: JobState
    raw_state: str
    reason: str | None = None  # the scheduler's reason code, e.g. "Resources"
    partition: str | None = None
    gpus: tuple[GpuAsk, ...] = ()
    nodes: int | None = None
    submitted_at: datetime | None = None
    started_at: datetime | None = None
    expected_start: datetime | None = None
    elapsed_seconds: int | None = None
    time_limit_minutes: int | None = None
    comment: str | None = None
    request_id: str | None = None  # ours, when the job carries our tag
    ending: JobEnding | None = None  # for an ended job: exit code or signal, output file

    @property
    def held_gpus(self) -> int:
        """GPUs the job holds or waits for across its nodes/replicas (`gpus` is per node)."""
        return sum(ask.count for ask in self.gpus) * (self.nodes or 1)

    def to_json(self) -> dict[str, Any]:
        printed: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, BaseModel):
                value = value.model_dump(mode="json")
            elif isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = [v.model_dump(mode="json") for v in value]
            elif isinstance(value, StrEnum):
                value = value.value
            printed[f.name] = value
        return printed


class PendingCode(StrEnum):
    INSUFFICIENT_GPU = "insufficient_gpu"
    PRIORITY = "priority"
    DEPENDENCY = "dependency"
    DEPENDENCY_NEVER = "dependency_never_satisfied"
    BEGIN_TIME = "begin_time"
    QOS_GPU_LIMIT = "qos_gpu_limit"
    ACCOUNT_GPU_LIMIT = "account_gpu_limit"
    NODES_UNAVAILABLE = "nodes_unavailable"
    TIME_LIMIT = "time_limit"
    NODE_LIMIT = "node_limit"
    PARTITION_DOWN = "partition_down"
    HELD = "held"
    INVALID_QOS = "invalid_qos"
    INVALID_ACCOUNT = "invalid_account"
    RESERVATION = "reservation"
    NOT_YET_CONSIDERED = "not_yet_considered"
    UNTOLERATED_TAINT = "untolerated_taint"
    NODE_AFFINITY = "node_affinity"
    UNBOUND_VOLUME = "unbound_volume"
    IMAGE_PULL = "image_pull"
    CRASH_LOOP = "crash_loop"
    NOT_PENDING = "not_pending"
    OTHER = "other"


class PendingReason(BaseModel):
    """Why a job waits, in the scheduler's words and in plain words, with what would start sooner."""

    model_config = VALUE_MODEL

    code: PendingCode
    raw: str
    sentence: str
    alternatives: tuple[str, ...] = ()
    expected_start: datetime | None = None


class GpuPool(BaseModel):
    """GPUs of one type in one partition (Slurm) or node group (Kubernetes)."""

    model_config = VALUE_MODEL

    backend: Target
    pool: str  # partition or namespace/node pool
    gpu_type: str | None
    total: int
    allocated: int
    nodes: tuple[str, ...] = ()
    unavailable_nodes: tuple[str, ...] = ()  # down, drained, cordoned: their GPUs are not counted
    max_time_minutes: int | None = None
    free_per_node: tuple[int, ...] = ()  # the largest single-node ask that fits now is max(free_per_node)

    @property
    def free(self) -> int:
        return max(self.total - self.allocated, 0)


@dataclass
class PoolTally:
    """One pool's GPUs, counted node by node as each backend reads its nodes."""

    gpu_type: str | None
    total: int = 0
    allocated: int = 0
    nodes: list[str] = dataclass_field(default_factory=list)
    unavailable: list[str] = dataclass_field(default_factory=list)
    free_per_node: list[int] = dataclass_field(default_factory=list)

    def add(self, node: str, gpus: int, held: int, *, unavailable: bool) -> None:
        """A down, drained or cordoned node is listed, and its GPUs are not counted."""
        if unavailable:
            self.unavailable.append(node)
            return
        held = min(held, gpus)
        self.total += gpus
        self.allocated += held
        self.nodes.append(node)
        self.free_per_node.append(gpus - held)

    def pool(self, backend: Target, name: str, max_time_minutes: int | None = None) -> GpuPool:
        return GpuPool(
            backend=backend,
            pool=name,
            gpu_type=self.gpu_type,
            total=self.total,
            allocated=self.allocated,
            nodes=tuple(self.nodes),
            unavailable_nodes=tuple(self.unavailable),
            max_time_minutes=max_time_minutes,
            free_per_node=tuple(self.free_per_node),
        )


class QueueFilter(BaseModel):
    model_config = VALUE_MODEL

    user: str | None = None  # None: everybody's jobs
    job_ids: tuple[str, ...] = ()
    states: tuple[JobState, ...] = ()
