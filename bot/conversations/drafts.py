"""Reading drafts back from the store, and folding what a message says into a request.

A draft is a request that was previewed in this conversation: its row holds the intent as the
person stated it (before the site's defaults), the decision and the plan, so a preview can be
shown again, or changed, on any replica and after a restart.

What a message says is the set of fields it states. A follow-up changes only those; it never
changes the kind of work (`workload`) of a draft, because the grammar gives every request that
names no service the workload "batch", which would silently turn a draft service into a batch job.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from backends.errors import RequestInvalid
from backends.types import Intent, IntentKind, JobRequest
from bot.engine import Prepared
from bot.engine import prepared_from as engine_prepared_from
from bot.store import RequestRecord
from bot.store.lifecycle import OPEN
from bot.understanding.details import read_details
from bot.understanding.doubts import find_choices
from bot.understanding.grammar import wall_time_until

SUPERSEDED = "superseded"
DECLINED = "declined"
NEEDS_DETAILS = "needs_details"  # the outcome of a message answered with a clarifying question

Fields = dict[str, Any]


def requested(record: RequestRecord) -> JobRequest:
    """The request as the person stated it (no defaults applied)."""
    if record.intent is None:
        raise RequestInvalid(
            f"request {record.id[:8]} was not understood, so it cannot be changed; "
            "say the whole request again"
        )
    printed = {k: v for k, v in record.intent.items() if k not in ("intent", "job", "message")}
    return JobRequest.model_validate(printed)


def prepared_from(record: RequestRecord) -> Prepared:
    return engine_prepared_from(record, "say what you need again")


def is_open(record: RequestRecord) -> bool:
    """Previewed and neither submitted nor settled: its Submit button would still work."""
    return record.outcome in OPEN and record.job_id is None and record.plan is not None


def stated(request: JobRequest) -> Fields:
    return request.model_dump(exclude_defaults=True)


def stated_in(intent: Intent, text: str) -> Fields:
    """The fields a message states. Where the understanding found no request ("for 3 hours" is no
    request on its own), the grammar's detail reader still finds the details a follow-up gives."""
    if intent.kind == IntentKind.SUBMIT:
        return stated(intent.request)
    details = read_details(text)
    if details.problem is not None:
        return {}
    # "make it 2 or 4 GPUs": a field offered as a choice is the person's to settle, never folded in.
    offered = {name for choice in find_choices(text) for name in choice.values}
    said = {k: v for k, v in details.fields.items() if k not in offered}
    if "time_limit_minutes" not in said and (minutes := wall_time_until(text)) is not None:
        said["time_limit_minutes"] = minutes  # "until 6pm": counted from now, as a whole request's is
    return said


def folded(base: Fields, said: Fields) -> Fields:
    """`base` with what a message said over it; the workload stays the base's once it has one."""
    changes = {k: v for k, v in said.items() if k != "workload" or base.get("workload") is None}
    return {**base, **changes}


def changes_the_draft(said: Fields, draft: JobRequest) -> bool:
    """A follow-up states something and names no other thing to run; naming another command,
    image or model is a new request (a model's reading may repeat the draft's own: not new)."""
    if not {k for k in said if k != "workload"}:
        return False
    return all(said.get(name) in (None, getattr(draft, name)) for name in ("command", "image", "model"))


def validated(fields: Fields) -> JobRequest:
    try:
        return JobRequest.model_validate(fields)
    except ValidationError as e:
        problem = e.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "the request"
        raise RequestInvalid(
            f"that cannot be applied: {where.replace('_', ' ')} {problem.get('input')!r} is not usable "
            f"({problem['msg']}); say it differently, or say the whole request again"
        ) from None
