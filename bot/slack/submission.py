"""Submit (or decline) a previewed request exactly once, however often its button is clicked.

A preview's buttons carry only the request id; the plan, decision and intent are read back from
the store, so a click works on any replica and after a restart. Slack retries, double clicks and
two replicas are made harmless by the request's lifecycle: submitting moves it from `planned` to
`submitting` in one compare-and-set (`Store.admit`), so exactly one caller submits; every other
caller reports the job the first one made, or that it is still being submitted (until the job is
recorded, or the reconciler settles a submission that was interrupted).
"""

from __future__ import annotations

from dataclasses import dataclass

from backends.errors import PermissionDenied, RequestInvalid
from backends.types import Identity, Plan
from bot.engine import AlreadySubmitted, Concierge, Prepared
from bot.engine import prepared_from as engine_prepared_from
from bot.store import RequestRecord, Store
from bot.store.lifecycle import OPEN, SUBMITTING

DOOR = "slack"


@dataclass(frozen=True)
class SubmitOutcome:
    plan: Plan
    job_id: str | None  # None: another click is submitting it right now
    first: bool  # this click made the submission


def submit_once(concierge: Concierge, store: Store, identity: Identity, request_id: str) -> SubmitOutcome:
    """The engine's submit is once-only by itself (the request moves to `submitting` in one
    compare-and-set): a second click, a Slack retry or another replica gets AlreadySubmitted."""
    record = _own_record(store, identity, request_id)
    prepared = prepared_from(record)
    if record.job_id is not None:
        return SubmitOutcome(prepared.plan, record.job_id, first=False)
    if record.outcome != SUBMITTING:
        _still_open(record)
    try:
        ref = concierge.submit(prepared)
    except AlreadySubmitted as e:
        if e.job_id is None and e.outcome != SUBMITTING:
            raise
        return SubmitOutcome(prepared.plan, e.job_id, first=False)
    return SubmitOutcome(prepared.plan, ref.job_id, first=True)


def decline(concierge: Concierge, store: Store, identity: Identity, request_id: str) -> RequestRecord:
    record = _own_record(store, identity, request_id)
    if record.job_id is not None:
        raise RequestInvalid(
            f"request {request_id[:8]} was already submitted as job {record.job_id}; "
            f"to stop it use `/gpu cancel {record.job_id}`"
        )
    if record.outcome in OPEN:
        concierge.settle(prepared_from(record), "declined")
    return record


def prepared_from(record: RequestRecord) -> Prepared:
    return engine_prepared_from(record, "ask again with `/gpu …`")


def _own_record(store: Store, identity: Identity, request_id: str) -> RequestRecord:
    record = store.request(request_id)
    if record.requester != identity.requester:
        raise PermissionDenied("only the person who asked can submit or cancel this request")
    return record


def _still_open(record: RequestRecord) -> None:
    if record.outcome not in OPEN:
        raise RequestInvalid(
            f"request {record.id[:8]} is {record.outcome.replace('_', ' ')}"
            + (f" ({record.error})" if record.error else "")
            + ", so it was not submitted; ask again with `/gpu …`"
        )
