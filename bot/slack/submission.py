"""Submit (or decline) a previewed request exactly once, however often its button is clicked.

A preview's buttons carry only the request id; the plan, decision and intent are read back from
the store, so a click works on any replica and after a restart. Slack retries, double clicks and
two replicas are made harmless by a claim: the click inserts a row with the idempotency key
`slack-submit:<request id>`, which the store keeps unique. Exactly one caller's row is stored,
and that caller (recognised by a token in the row's text) is the only one that submits; every
other caller reports the job the first one made, or that it is still being submitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import uuid4

from backends.errors import PermissionDenied, RequestInvalid
from backends.types import Identity, Plan
from bot.engine import Concierge, Prepared
from bot.engine import prepared_from as engine_prepared_from
from bot.store import RequestRecord, Store

DOOR = "slack"
_OPEN = "received"  # the outcome of a request that was previewed and not yet decided


@dataclass(frozen=True)
class SubmitOutcome:
    plan: Plan
    job_id: str | None  # None: another click is submitting it right now
    first: bool  # this click made the submission


def submit_once(concierge: Concierge, store: Store, identity: Identity, request_id: str) -> SubmitOutcome:
    record = _own_record(store, identity, request_id)
    prepared = prepared_from(record)
    if record.job_id is not None:
        return SubmitOutcome(prepared.plan, record.job_id, first=False)
    _still_open(record)
    token = uuid4().hex
    claim = store.new_request(
        identity.requester,
        DOOR,
        f"submit request {request_id} (click {token})",
        idempotency_key=f"slack-submit:{request_id}",
    )
    if not store.request(claim).text.endswith(f"(click {token})"):
        # Another click holds the claim: report its job when it has one.
        return SubmitOutcome(prepared.plan, store.request(request_id).job_id, first=False)
    try:
        ref = concierge.submit(prepared)
    except Exception as e:
        store.record_outcome(claim, "failed", str(e)[:500])
        raise
    store.record_outcome(claim, "answered")
    return SubmitOutcome(prepared.plan, ref.job_id, first=True)


def decline(concierge: Concierge, store: Store, identity: Identity, request_id: str) -> RequestRecord:
    record = _own_record(store, identity, request_id)
    if record.job_id is not None:
        raise RequestInvalid(
            f"request {request_id[:8]} was already submitted as job {record.job_id}; "
            f"to stop it use `/gpu cancel {record.job_id}`"
        )
    if record.outcome == _OPEN:
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
    if record.outcome != _OPEN:
        raise RequestInvalid(
            f"request {record.id[:8]} is {record.outcome.replace('_', ' ')}"
            + (f" ({record.error})" if record.error else "")
            + ", so it was not submitted; ask again with `/gpu …`"
        )
