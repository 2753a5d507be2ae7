"""What the store hands back: frozen records, never ORM objects.

An ORM object is tied to a session and lazily loads on attribute access; handing one to a door
would make every caller a database user. Records are plain values, safe across threads.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from backends.types import VALUE_MODEL, JobEnding, JobRef, JobState, Target


class StateChange(BaseModel):
    model_config = VALUE_MODEL

    state: JobState
    reason: str | None
    observed_at: datetime
    ending: JobEnding | None = None  # how the job ended, with the state it ended in


class RequestRecord(BaseModel):
    """Everything recorded about one thing a person asked, oldest state first."""

    model_config = VALUE_MODEL

    id: str
    requester: str
    door: str
    text: str
    intent: dict[str, Any] | None
    decision: dict[str, Any] | None
    backend: Target | None
    plan: dict[str, Any] | None
    gpus: int | None
    job_id: str | None
    cluster: str | None
    outcome: str
    error: str | None
    created_at: datetime
    updated_at: datetime
    states: tuple[StateChange, ...] = ()

    @property
    def job_ref(self) -> JobRef | None:
        if self.backend is None or self.job_id is None:
            return None
        return JobRef(backend=self.backend, job_id=self.job_id, cluster=self.cluster)

    @property
    def last_state(self) -> StateChange | None:
        return self.states[-1] if self.states else None


class AuditEvent(BaseModel):
    model_config = VALUE_MODEL

    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any] | None
