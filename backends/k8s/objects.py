"""The parts of Kubernetes objects this backend reads, decoded straight from the API's JSON.

Why msgspec structs and not the `kubernetes` client's models: a status pass over a large cluster
lists tens of thousands of pods, and the client's model deserialisation (or `json.loads` into
dicts) costs far more than the rest of our work. A msgspec decoder that knows the few fields we
read skips everything else at C speed. The structs are `gc=False` (they hold no cycles) and
decoding pauses the cycle collector (see `collector_paused`). Field names follow the API
(`rename="camel"`), every field has a default, and unknown fields are ignored, so objects from
any Kubernetes version decode.
Tests decode plain dicts, written as the API returns them, through the same decoders.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from backends.bulk import collector_paused


class _Struct(msgspec.Struct, rename="camel", frozen=True, gc=False):
    pass


class ObjectMeta(_Struct, frozen=True, gc=False):
    name: str = ""
    namespace: str = ""
    uid: str = ""
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    creation_timestamp: datetime | None = None
    deletion_timestamp: datetime | None = None


class Named(_Struct, frozen=True, gc=False):
    """Any object, read for its metadata only (a lookup by name)."""

    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)


class Condition(_Struct, frozen=True, gc=False):
    type: str = ""
    status: str = ""
    reason: str = ""
    message: str = ""
    last_transition_time: datetime | None = None


class Taint(_Struct, frozen=True, gc=False):
    key: str = ""
    value: str = ""
    effect: str = ""

    def __str__(self) -> str:
        value = f"={self.value}" if self.value else ""
        return f"{self.key}{value}:{self.effect}"


class NodeSpec(_Struct, frozen=True, gc=False):
    unschedulable: bool = False
    taints: list[Taint] = []


class NodeStatus(_Struct, frozen=True, gc=False):
    allocatable: dict[str, str] = {}
    capacity: dict[str, str] = {}
    conditions: list[Condition] = []


class Node(_Struct, frozen=True, gc=False):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: NodeSpec = msgspec.field(default_factory=NodeSpec)
    status: NodeStatus = msgspec.field(default_factory=NodeStatus)


class Resources(_Struct, frozen=True, gc=False):
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}


class Container(_Struct, frozen=True, gc=False):
    name: str = ""
    image: str = ""
    resources: Resources = msgspec.field(default_factory=Resources)


class Toleration(_Struct, frozen=True, gc=False):
    key: str = ""
    operator: str = ""
    value: str = ""
    effect: str = ""


class SelectorRequirement(_Struct, frozen=True, gc=False):
    key: str = ""
    operator: str = ""
    values: list[str] = []


class SelectorTerm(_Struct, frozen=True, gc=False):
    match_expressions: list[SelectorRequirement] = []


class NodeSelector(_Struct, frozen=True, gc=False):
    node_selector_terms: list[SelectorTerm] = []


class NodeAffinity(_Struct, frozen=True, gc=False):
    required_during_scheduling_ignored_during_execution: NodeSelector | None = None


class Affinity(_Struct, frozen=True, gc=False):
    node_affinity: NodeAffinity | None = None


class ClaimSource(_Struct, frozen=True, gc=False):
    claim_name: str = ""


class Volume(_Struct, frozen=True, gc=False):
    name: str = ""
    persistent_volume_claim: ClaimSource | None = None


class PodSpec(_Struct, frozen=True, gc=False):
    node_name: str = ""
    containers: list[Container] = []
    init_containers: list[Container] = []
    tolerations: list[Toleration] = []
    affinity: Affinity | None = None
    node_selector: dict[str, str] = {}
    volumes: list[Volume] = []

    def required_terms(self) -> list[SelectorTerm]:
        affinity = self.affinity.node_affinity if self.affinity else None
        required = affinity.required_during_scheduling_ignored_during_execution if affinity else None
        return list(required.node_selector_terms) if required else []


class StateWaiting(_Struct, frozen=True, gc=False):
    reason: str = ""
    message: str = ""


class StateRunning(_Struct, frozen=True, gc=False):
    started_at: datetime | None = None


class StateTerminated(_Struct, frozen=True, gc=False):
    exit_code: int = 0
    reason: str = ""
    message: str = ""
    finished_at: datetime | None = None


class ContainerState(_Struct, frozen=True, gc=False):
    waiting: StateWaiting | None = None
    running: StateRunning | None = None
    terminated: StateTerminated | None = None


class ContainerStatus(_Struct, frozen=True, gc=False):
    name: str = ""
    image: str = ""
    ready: bool = False
    restart_count: int = 0
    state: ContainerState = msgspec.field(default_factory=ContainerState)
    last_state: ContainerState = msgspec.field(default_factory=ContainerState)


class PodStatus(_Struct, frozen=True, gc=False):
    phase: str = ""
    reason: str = ""
    message: str = ""
    conditions: list[Condition] = []
    container_statuses: list[ContainerStatus] = []
    init_container_statuses: list[ContainerStatus] = []
    start_time: datetime | None = None


class Pod(_Struct, frozen=True, gc=False):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: PodSpec = msgspec.field(default_factory=PodSpec)
    status: PodStatus = msgspec.field(default_factory=PodStatus)

    def condition(self, kind: str) -> Condition | None:
        for condition in self.status.conditions:
            if condition.type == kind:
                return condition
        return None

    @property
    def is_terminated(self) -> bool:
        return self.status.phase in ("Succeeded", "Failed")

    @property
    def is_ready(self) -> bool:
        condition = self.condition("Ready")
        return condition is not None and condition.status == "True"


class PodTemplate(_Struct, frozen=True, gc=False):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: PodSpec = msgspec.field(default_factory=PodSpec)


class DeploymentSpec(_Struct, frozen=True, gc=False):
    replicas: int | None = None
    template: PodTemplate = msgspec.field(default_factory=PodTemplate)


class DeploymentStatus(_Struct, frozen=True, gc=False):
    replicas: int = 0
    ready_replicas: int = 0
    conditions: list[Condition] = []


class Deployment(_Struct, frozen=True, gc=False):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: DeploymentSpec = msgspec.field(default_factory=DeploymentSpec)
    status: DeploymentStatus = msgspec.field(default_factory=DeploymentStatus)


class JobSpec(_Struct, frozen=True, gc=False):
    parallelism: int | None = None
    backoff_limit: int | None = None
    active_deadline_seconds: int | None = None
    suspend: bool = False
    template: PodTemplate = msgspec.field(default_factory=PodTemplate)


class JobStatusFields(_Struct, frozen=True, gc=False):
    failed: int = 0
    ready: int | None = None
    start_time: datetime | None = None
    completion_time: datetime | None = None
    conditions: list[Condition] = []


class Job(_Struct, frozen=True, gc=False):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: JobSpec = msgspec.field(default_factory=JobSpec)
    status: JobStatusFields = msgspec.field(default_factory=JobStatusFields)


class Service(_Struct, frozen=True, gc=False):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)


class ObjectReference(_Struct, frozen=True, gc=False):
    kind: str = ""
    name: str = ""
    namespace: str = ""
    uid: str = ""


class EndpointConditions(_Struct, frozen=True, gc=False):
    # None means unknown; the API says to read an unknown `ready` as ready.
    ready: bool | None = None


class Endpoint(_Struct, frozen=True, gc=False):
    addresses: list[str] | None = None
    conditions: EndpointConditions = msgspec.field(default_factory=EndpointConditions)
    target_ref: ObjectReference | None = None
    node_name: str = ""


class EndpointPort(_Struct, frozen=True, gc=False):
    name: str = ""
    port: int | None = None  # None: every port of the endpoint


class EndpointSlice(_Struct, frozen=True, gc=False):
    """discovery.k8s.io/v1; Go writes `endpoints` and `ports` as null when the slice has none."""

    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    address_type: str = ""
    endpoints: list[Endpoint] | None = None
    ports: list[EndpointPort] | None = None


class EventSeries(_Struct, frozen=True, gc=False):
    last_observed_time: datetime | None = None


class Event(_Struct, frozen=True, gc=False):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    involved_object: ObjectReference = msgspec.field(default_factory=ObjectReference)
    reason: str = ""
    message: str = ""
    type: str = ""
    first_timestamp: datetime | None = None
    last_timestamp: datetime | None = None
    event_time: datetime | None = None
    series: EventSeries | None = None

    @property
    def last_seen(self) -> datetime | None:
        if self.series and self.series.last_observed_time:
            return self.series.last_observed_time
        return self.last_timestamp or self.event_time or self.first_timestamp


T = TypeVar("T")


def _list_decoder(item: type[Any]) -> msgspec.json.Decoder[Any]:
    # Go writes a nil slice as null: `"items": null` is an empty list.
    kind = msgspec.defstruct(f"{item.__name__}List", [("items", list[item] | None, None)], frozen=True)  # type: ignore[valid-type]
    return msgspec.json.Decoder(kind)


_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {
    kind: _list_decoder(kind) for kind in (Node, Pod, Deployment, Job, Event, Service, EndpointSlice)
}


def decode_list(data: bytes, item: type[T]) -> list[T]:
    """The `items` of a LIST response (`{"kind": "PodList", "items": [...]}`).

    Raises msgspec.DecodeError (a subclass of ValueError) when the answer is not such a list."""
    with collector_paused():
        items: list[T] | None = _DECODERS[item].decode(data).items
    return items or []


def decode_object(data: bytes | Mapping[str, Any], kind: type[T]) -> T:
    """One object, from the API's JSON bytes or from a dict written as the API returns it."""
    if isinstance(data, bytes | bytearray):
        return msgspec.json.decode(data, type=kind)
    return msgspec.convert(data, type=kind, strict=False)


# Binary suffixes are powers of 1024, decimal ones powers of 1000 (apimachinery's quantity.go).
_SUFFIXES = {
    **{prefix + "i": Decimal(1024) ** power for power, prefix in enumerate("KMGTPE", 1)},
    **{suffix: Decimal(1000) ** power for power, suffix in enumerate("kMGTPE", 1)},
    **{suffix: Decimal(1000) ** -power for power, suffix in enumerate("mun", 1)},
}


_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)")
_EXPONENT = re.compile(r"^[eE][+-]?\d+$")


def quantity(text: str) -> Decimal:
    """A resource quantity (`4`, `500m`, `64Gi`, `1e3`, `2E`) as a number; an unreadable one is 0."""
    text = text.strip()
    number = _NUMBER.match(text)
    if number is None:
        return Decimal(0)
    suffix = text[number.end() :]
    if not suffix:
        return Decimal(number.group(0))
    if suffix in _SUFFIXES:
        return Decimal(number.group(0)) * _SUFFIXES[suffix]
    if _EXPONENT.match(suffix):
        return Decimal(number.group(0) + suffix)
    return Decimal(0)


def count(text: str) -> int:
    """A whole-unit quantity, such as GPUs (`4` → 4); fractions round up as the scheduler does."""
    if text.isdigit():
        return int(text)
    value = quantity(text)
    whole = int(value)
    return whole + 1 if value > whole else whole
