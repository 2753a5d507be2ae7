"""Creating a plan's objects in order, and undoing them when a later one fails.

A model server is two objects, a Deployment and then its Service. If the Service is refused
after the Deployment was created, the Deployment holds GPUs nobody asked for. So a failed submit
deletes what it created, as the same person, with Background propagation so the pods go too.
When that delete fails as well (RBAC lets the person create but not delete, or the API went away),
the error keeps its class and its cause and adds exactly which objects were left and the commands
that remove them. The engine records that message as the request's error, so the person and the
record say the same thing.

Unknown stays unknown: a create or delete that got no answer (a timeout or a 5xx: the server may
have done it all the same) is followed by a lookup by name, as the bot, before anything is
claimed. A found object counts as this submit's only when it carries this request's id label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from backends.errors import BackendUnavailable, ConciergeError, JobNotFound
from backends.k8s.cluster import KubeApi
from backends.k8s.manifests import REQUEST_LABEL
from backends.types import Identity

WORKLOAD_KINDS = ("Deployment", "Job")  # what `concierge cancel` finds; it deletes their Services too
_UNKNOWN_CREATE = "the cluster did not answer whether it was created, nor a lookup right after"


@dataclass(frozen=True)
class ObjectName:
    kind: str
    namespace: str
    name: str
    request_id: str

    @classmethod
    def of(cls, manifest: dict[str, Any]) -> ObjectName:
        metadata = manifest.get("metadata") or {}
        labels = metadata.get("labels") or {}
        return cls(
            str(manifest.get("kind")),
            str(metadata.get("namespace") or ""),
            str(metadata.get("name") or ""),
            str(labels.get(REQUEST_LABEL) or ""),
        )

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class Left:
    """An object that may still be on the cluster, and why (the failed delete, or the unknown)."""

    obj: ObjectName
    why: str
    certain: bool = True  # False: it may or may not be there


def create_all(api: KubeApi, manifests: Sequence[dict[str, Any]], identity: Identity) -> None:
    """Create each object in order. On a failure, undo the ones created, then raise the failure
    with what was undone or left added to its message."""
    created: list[ObjectName] = []
    for manifest in manifests:
        obj = ObjectName.of(manifest)
        try:
            api.create(manifest, identity, dry_run=False)
        except BackendUnavailable as e:  # no answer: the server may have created it all the same
            there = _ours(api, obj)
            if there:
                created.append(obj)
                continue
            if there is None:
                _add(e, _outcome(api, created, identity, Left(obj, _UNKNOWN_CREATE, certain=False)))
            else:
                _add(e, f"No {obj} of this request was on the cluster when looked up right after. ")
                _add(e, _outcome(api, created, identity))
            raise
        except ConciergeError as e:
            _add(e, _outcome(api, created, identity))
            raise
        created.append(obj)


def _ours(api: KubeApi, obj: ObjectName) -> bool | None:
    """Whether this submit's object is on the cluster; None when the cluster cannot tell."""
    try:
        found = api.lookup(obj.kind, obj.namespace, obj.name)
    except ConciergeError:
        return None
    return found is not None and found.metadata.labels.get(REQUEST_LABEL) == obj.request_id


def _gone(api: KubeApi, obj: ObjectName) -> bool | None:
    """Whether the object is gone or going; None when the cluster cannot tell."""
    try:
        found = api.lookup(obj.kind, obj.namespace, obj.name)
    except ConciergeError:
        return None
    return found is None or found.metadata.deletion_timestamp is not None


def _undo(
    api: KubeApi, created: Sequence[ObjectName], identity: Identity
) -> tuple[list[ObjectName], list[Left]]:
    """Delete what was created, newest first, as the person: (deleted, left)."""
    deleted: list[ObjectName] = []
    left: list[Left] = []
    for obj in reversed(created):
        try:
            api.delete(obj.kind, obj.namespace, obj.name, identity)
        except JobNotFound:
            pass  # already gone
        except BackendUnavailable as e:  # no answer: the delete may have happened all the same
            gone = _gone(api, obj)
            if not gone:
                left.append(Left(obj, e.message, certain=gone is False))
                continue
        except ConciergeError as e:
            left.append(Left(obj, e.message))
            continue
        deleted.append(obj)
    return deleted, left


def _outcome(
    api: KubeApi, created: Sequence[ObjectName], identity: Identity, unknown: Left | None = None
) -> str:
    """What the failure's message adds: what this submit left behind, and how to remove it."""
    deleted, left = _undo(api, created, identity)
    if unknown is not None:
        left.append(unknown)
    said: list[str] = []
    if deleted and not left:
        said.append(f"Nothing was left running: {_listed(deleted)}, created just before, was deleted again.")
    elif deleted:
        said.append(f"{_listed(deleted)}, created just before, was deleted again.")
    if left:
        said.append(_left_sentences(left))
    return " ".join(said)


def _listed(objects: Sequence[ObjectName]) -> str:
    return ", ".join(str(obj) for obj in objects)


def _left_sentences(left: Sequence[Left]) -> str:
    names = _listed([entry.obj for entry in left])
    one = len(left) == 1
    it = "it" if one else "them"
    if all(entry.certain for entry in left):
        head = f"Undoing the submit failed, so {names} {'is' if one else 'are'} left on the cluster"
    else:
        head = f"{names} may be left on the cluster"
    holding = [entry.obj for entry in left if entry.obj.kind in WORKLOAD_KINDS]
    said = [head + (f"; {'its' if one else 'their'} pods hold GPUs until removed." if holding else ".")]
    said += [f"{entry.obj}: {_sentence(entry.why)}" for entry in left]
    commands = [_kubectl(left)] + [f"`concierge cancel {obj.namespace}/{obj.name}`" for obj in holding]
    said.append(
        f"To remove {it}: {' or '.join(commands)} (by someone who may delete {it}, such as an admin)."
    )
    return " ".join(said)


def _kubectl(left: Sequence[Left]) -> str:
    by_namespace: dict[str, list[ObjectName]] = {}
    for entry in left:
        by_namespace.setdefault(entry.obj.namespace, []).append(entry.obj)
    commands = []
    for namespace, objects in by_namespace.items():
        if len(objects) == 1:
            targets = f"{objects[0].kind.lower()} {objects[0].name}"
        else:
            targets = " ".join(f"{obj.kind.lower()}/{obj.name}" for obj in objects)
        commands.append(f"`kubectl -n {namespace} delete {targets}`")
    return " and ".join(commands)


def _sentence(text: str) -> str:
    return text if text.endswith(".") else f"{text}."


def _add(error: ConciergeError, added: str) -> None:
    """Say more in the error itself, so its class (exit code, retry_after) and cause stay."""
    if added.strip():
        error.message = f"{_sentence(error.message)} {added.strip()}"
        error.args = (error.message,)
