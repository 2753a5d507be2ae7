"""Objects as plain dicts with their JSON kept beside them, one global resourceVersion, a change log.

Why so: a LIST of 20,000 pods must take well under a second, so each object is serialised once, when
it is written, and a list response only joins those bytes (no per-request copies). Stored dicts are
never mutated; writers build a new dict (`thaw` gives a private copy). Every write bumps one
monotonic counter, as etcd's revision does, and appends to a bounded log that watches replay from;
a watch from before the log's start gets the apiserver's 410 Expired.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.k8s_emulator.errors import ApiError
from tests.k8s_emulator.resources import ResourceType

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class Stored:
    obj: JsonObject  # never mutated once stored
    raw: bytes

    @classmethod
    def of(cls, obj: JsonObject) -> Stored:
        return cls(obj, json.dumps(obj, separators=(",", ":")).encode())

    def thaw(self) -> JsonObject:
        """A private, mutable copy (json.loads of the cached bytes beats deepcopy)."""
        copy: JsonObject = json.loads(self.raw)
        return copy

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.obj["metadata"].get("namespace") or "")


@dataclass(frozen=True)
class Change:
    revision: int
    resource: ResourceType
    type: str  # ADDED, MODIFIED or DELETED
    new: Stored
    old: Stored | None


Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects


class Store:
    def __init__(self, history: int = 200_000) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.closed = False
        self._objects: dict[ResourceType, dict[Key, Stored]] = {}
        self._revision = 0
        self._log: deque[Change] = deque(maxlen=history)
        self._listeners: list[Callable[[Change], None]] = []

    @property
    def revision(self) -> int:
        return self._revision

    def on_change(self, listener: Callable[[Change], None]) -> None:
        self._listeners.append(listener)

    def get(self, resource: ResourceType, namespace: str, name: str) -> Stored | None:
        return self._objects.get(resource, {}).get((namespace, name))

    def items(self, resource: ResourceType, namespace: str | None = None) -> list[Stored]:
        """Objects in etcd key order (namespace, then name); namespace None means all."""
        table = self._objects.get(resource, {})
        keys = sorted(table) if namespace is None else sorted(k for k in table if k[0] == namespace)
        return [table[k] for k in keys]

    def count(self, resource: ResourceType) -> int:
        return len(self._objects.get(resource, {}))

    def put(self, resource: ResourceType, obj: JsonObject) -> Stored:
        """Stores `obj` (now owned by the store) with the next resourceVersion."""
        with self.lock:
            self._revision += 1
            obj["metadata"]["resourceVersion"] = str(self._revision)
            stored = Stored.of(obj)
            key = (stored.namespace, stored.name)
            table = self._objects.setdefault(resource, {})
            old = table.get(key)
            table[key] = stored
            self._record(Change(self._revision, resource, "MODIFIED" if old else "ADDED", stored, old))
            return stored

    def remove(self, resource: ResourceType, namespace: str, name: str) -> Stored:
        """Deletes; the DELETED event carries the last state at a new resourceVersion."""
        with self.lock:
            table = self._objects.get(resource, {})
            old = table.pop((namespace, name))
            self._revision += 1
            final = old.thaw()
            final["metadata"]["resourceVersion"] = str(self._revision)
            stored = Stored.of(final)
            self._record(Change(self._revision, resource, "DELETED", stored, old))
            return stored

    def _record(self, change: Change) -> None:
        self._log.append(change)
        for listener in self._listeners:
            listener(change)
        self.changed.notify_all()

    def changes_after(self, revision: int) -> list[Change]:
        """Changes with a newer revision; 410 Expired when the log no longer reaches back that far."""
        with self.lock:
            if revision >= self._revision:
                return []
            oldest = self._log[0].revision if self._log else self._revision + 1
            if revision < oldest - 1:
                raise ApiError.expired(revision, oldest - 1)
            skip = revision - (oldest - 1)
            return [self._log[i] for i in range(skip, len(self._log))]

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.changed.notify_all()
