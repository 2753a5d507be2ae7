"""Watch streams: newline-delimited `{"type": …, "object": …}` events, as the apiserver sends them.

Without a resourceVersion (or with "0") the stream starts with a synthetic ADDED for every matching
object, then follows changes; with one, it replays the change log after it (410 Expired as an ERROR
event when the log no longer reaches back). With selectors, an object that starts matching arrives
as ADDED and one that stops matching as DELETED, as the watch cache does. The stream ends after
`timeoutSeconds` or when the emulator stops.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from tests.k8s_emulator.errors import ApiError
from tests.k8s_emulator.resources import ResourceType
from tests.k8s_emulator.selectors import FieldSelector, LabelSelector, fields_match, labels_match
from tests.k8s_emulator.store import Change, Store, Stored

DEFAULT_TIMEOUT_SECONDS = 1800.0  # the apiserver's --min-request-timeout


def _line(kind: str, raw: bytes) -> bytes:
    return b'{"type":"' + kind.encode() + b'","object":' + raw + b"}\n"


class WatchStream:
    def __init__(
        self,
        store: Store,
        resource: ResourceType,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
        resource_version: str | None,
        timeout_seconds: float | None,
    ) -> None:
        self.store = store
        self.resource = resource
        self.namespace = namespace
        self.labels = labels
        self.fields = fields
        self.start: int | None = None  # None: list first, then follow
        if resource_version not in (None, "", "0"):
            try:
                self.start = int(str(resource_version))
            except ValueError:
                raise ApiError.bad_request(f"invalid resource version: {resource_version}") from None
        self.deadline = time.monotonic() + (
            DEFAULT_TIMEOUT_SECONDS if timeout_seconds is None else timeout_seconds
        )

    def _matches(self, stored: Stored | None) -> bool:
        if stored is None:
            return False
        if self.namespace is not None and stored.namespace != self.namespace:
            return False
        return labels_match(self.labels, stored.obj["metadata"].get("labels")) and fields_match(
            self.fields, stored.obj
        )

    def _event(self, change: Change) -> bytes | None:
        if change.resource is not self.resource:
            return None
        now, before = self._matches(change.new), self._matches(change.old)
        if change.type == "DELETED":
            return _line("DELETED", change.new.raw) if before else None
        if now and before:
            return _line("MODIFIED", change.new.raw)
        if now:
            return _line("ADDED", change.new.raw)
        if before:
            return _line("DELETED", change.new.raw)
        return None

    def _expired(self, error: ApiError) -> bytes:
        return _line("ERROR", json.dumps(error.body, separators=(",", ":")).encode())

    def lines(self) -> Iterator[bytes]:
        with self.store.lock:
            if self.start is None:
                cursor = self.store.revision
                initial = [s for s in self.store.items(self.resource, self.namespace) if self._matches(s)]
            else:
                cursor, initial = self.start, []
        for stored in initial:
            yield _line("ADDED", stored.raw)
        while True:
            expired: ApiError | None = None
            with self.store.changed:
                try:
                    changes = self.store.changes_after(cursor)
                except ApiError as error:
                    changes, expired = [], error
                if not changes and expired is None:
                    remaining = self.deadline - time.monotonic()
                    if remaining <= 0 or self.store.closed:
                        return
                    self.store.changed.wait(timeout=min(remaining, 1.0))
                    continue
            if expired is not None:
                yield self._expired(expired)
                return
            cursor = changes[-1].revision
            for change in changes:
                line = self._event(change)
                if line is not None:
                    yield line
            if time.monotonic() >= self.deadline or self.store.closed:
                return
