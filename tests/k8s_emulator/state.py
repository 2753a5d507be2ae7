"""What the controllers, the scheduler and the kubelet share: the store, the test's knobs, and the
generators for uids, names and timestamps.

One seeded random source makes generated names (`web-7c5ddbdf54-x2k9q`) reproducible run to run;
the clock is injectable so a test can pin timestamps.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from tests.k8s_emulator.resources import ResourceType
from tests.k8s_emulator.store import Store, Stored

JsonObject = dict[str, Any]

# rand.SafeEncodeString's alphabet: no vowels, no 0/1/3 (so names never spell words).
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


class MessageStyle(StrEnum):
    """How the scheduler words `Unschedulable`, across the releases a parser meets."""

    CURRENT = "current"  # "… 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available: …pod."
    DOUBLE_DOT = "double_dot"  # older releases: the preemption part ends with ".."
    NO_PREEMPTION = (
        "no_preemption"  # oldest: no preemption part, "had taint {k: v}, that the pod didn't tolerate"
    )
    UNTOLERATED_TAINTS = "untolerated_taints"  # newest: "node(s) had untolerated taint(s)" without the taint


@dataclass
class Knobs:
    """What a test sets to steer the emulated kubelet and scheduler."""

    unpullable_images: set[str] = field(default_factory=set)
    crashing_images: set[str] = field(default_factory=set)
    runtime_classes: set[str] = field(default_factory=lambda: {"nvidia"})
    message_style: MessageStyle = MessageStyle.CURRENT


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ClusterState:
    def __init__(self, knobs: Knobs, seed: int = 0, clock: Callable[[], datetime] = _utc_now) -> None:
        self.store = Store()
        self.knobs = knobs
        self.random = random.Random(seed)
        self.clock = clock
        # (involved uid, reason, message) → the Event's (namespace, name), for aggregation.
        self.event_index: dict[tuple[str, str, str], tuple[str, str]] = {}

    def timestamp(self) -> str:
        return self.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def new_uid(self) -> str:
        return str(uuid.UUID(int=self.random.getrandbits(128), version=4))

    def random_suffix(self, length: int = 5) -> str:
        return "".join(self.random.choice(NAME_ALPHABET) for _ in range(length))

    def generate_name(self, resource: ResourceType, namespace: str, prefix: str) -> str:
        """`generateName` + 5 random characters, retried until unused (as the apiserver does)."""
        while True:
            name = f"{prefix}{self.random_suffix()}"
            if self.store.get(resource, namespace, name) is None:
                return name

    def write(self, resource: ResourceType, obj: JsonObject) -> Stored:
        return self.store.put(resource, obj)

    def get(self, resource: ResourceType, namespace: str, name: str) -> Stored | None:
        return self.store.get(resource, namespace, name)

    def new_metadata(self, name: str, namespace: str | None) -> JsonObject:
        metadata: JsonObject = {"name": name}
        if namespace:
            metadata["namespace"] = namespace
        metadata["uid"] = self.new_uid()
        metadata["creationTimestamp"] = self.timestamp()
        return metadata


def owner_reference(owner: JsonObject, *, controller: bool = True) -> JsonObject:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def controller_uid(obj: JsonObject) -> str | None:
    for reference in obj["metadata"].get("ownerReferences") or []:
        if reference.get("controller"):
            return str(reference["uid"])
    return None


def controller_of(obj: JsonObject) -> JsonObject | None:
    for reference in obj["metadata"].get("ownerReferences") or []:
        if reference.get("controller"):
            return dict(reference)
    return None
