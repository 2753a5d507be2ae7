"""Need to know: what a job runs, and the words it was asked for in, are shown to its owner and admins.

Anyone may see that a job exists, its state and why it waits (every cluster user sees as much in
`squeue`), but a request's text and command can carry secrets: `--hf-token hf_…`, a private data
path, a password pasted by mistake. Every door reads requests through the engine
(`Concierge.status`, `Concierge.history`), and the engine passes each record through
`visible_record` here, so the rule is decided in this one place and a new door cannot forget it.

The owner is whoever asked (the same requester id at the same door), or the cluster user the job
runs as: alice at the CLI sees the job she asked for on Slack, because it runs as `alice`. An
unmapped Slack user has no cluster user, so they own nothing they did not ask for themselves.
Hidden are the text, the intent and plan (they hold the command) and the error (it may quote the
command); the outcome and the recorded states, with the scheduler's reasons, stay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backends.types import Identity, JobStatus

if TYPE_CHECKING:
    from bot.store import RequestRecord

HIDDEN = "(hidden: only the person who asked and admins see what this job runs)"


def visible_record(viewer: Identity, record: RequestRecord, status: JobStatus | None = None) -> RequestRecord:
    """`record` as `viewer` may see it: whole for its owner and admins, else without what it runs."""
    if may_see_details(viewer, record, status):
        return record
    return record.model_copy(update={"text": HIDDEN, "intent": None, "plan": None, "error": None})


def may_see_details(viewer: Identity, record: RequestRecord, status: JobStatus | None = None) -> bool:
    if viewer.is_admin or viewer.requester == record.requester:
        return True
    backend = status.ref.backend if status is not None else record.backend
    viewer_runs_as = viewer.k8s_user if backend == "k8s" else viewer.unix_user
    if not viewer_runs_as:
        return False
    return viewer_runs_as in (_runs_as(record, backend), status.user if status is not None else None)


def _runs_as(record: RequestRecord, backend: str | None) -> str | None:
    planned: dict[str, Any] = (record.plan or {}).get("identity") or {}
    user = planned.get("k8s_user" if backend == "k8s" else "unix_user")
    return str(user) if user else None
