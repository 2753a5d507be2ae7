"""Which recorded job states still have to be posted in their Slack thread, kept in the database.

The tracker records each transition once (`Store.record_state`); whether it has reached the
thread is a second fact, kept per thread as the id of the last `job_states` row posted there
(`slack_threads.posted_state_id`) and the failed tries of the next one. So a post that failed
while Slack was down is tried again after a restart too, and states are posted in order.

Two replicas may look at the same thread: posting a state starts with a compare-and-set of
`posted_state_id` from the value read to the state's id, so one of them posts it. A replica that
dies between that claim and the post loses the one update (it is never posted twice).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, func, select, update

from backends.types import JobEnding, JobRef, JobState
from bot.store.database import connected
from bot.store.tables import SlackThreadRow, StateRow


@dataclass(frozen=True, slots=True)
class UnpostedState:
    """A recorded job state not yet posted in its request's thread."""

    request_id: str
    channel: str
    thread_ts: str | None
    state_id: int
    ref: JobRef
    state: JobState
    reason: str | None
    observed_at: datetime
    ending: JobEnding | None
    posted_before: int | None  # the thread's posted_state_id when read: what a claim compares with
    failed_posts: int


_THEN = "job updates are posted at the next round"


class ThreadUpdates:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def unposted(self, observed_since: datetime) -> list[UnpostedState]:
        """States observed since `observed_since` and not posted in their thread, oldest first per
        thread (older unposted ones are stale news and stay unposted)."""
        thread, state = SlackThreadRow, StateRow
        query = (
            select(
                thread.request_id,
                thread.channel,
                thread.thread_ts,
                thread.posted_state_id,
                thread.failed_posts,
                state.id,
                state.backend,
                state.job_id,
                state.state,
                state.reason,
                state.observed_at,
                state.ending,
            )
            .join(state, state.request_id == thread.request_id)
            .where(state.id > func.coalesce(thread.posted_state_id, 0), state.observed_at >= observed_since)
            .order_by(thread.request_id, state.id)
        )
        with connected(self._engine, _THEN) as connection:
            rows = connection.execute(query).all()
        return [
            UnpostedState(
                request_id=row.request_id,
                channel=row.channel,
                thread_ts=row.thread_ts,
                state_id=row.id,
                ref=JobRef(backend=row.backend, job_id=row.job_id),
                state=JobState(row.state),
                reason=row.reason,
                observed_at=row.observed_at,
                ending=JobEnding.model_validate(row.ending) if row.ending else None,
                posted_before=row.posted_state_id,
                failed_posts=row.failed_posts,
            )
            for row in rows
        ]

    def claim(self, update_: UnpostedState) -> bool:
        """True for the one caller that may post this state now (the thread moved on to it)."""
        with self._writing() as connection:
            claimed = connection.execute(
                update(SlackThreadRow)
                .where(
                    SlackThreadRow.request_id == update_.request_id,
                    SlackThreadRow.posted_state_id.is_not_distinct_from(update_.posted_before),
                )
                .values(posted_state_id=update_.state_id)
            )
            return claimed.rowcount == 1

    def posted(self, update_: UnpostedState) -> None:
        """The claimed state reached the thread: the next one starts with no failed tries."""
        self._settle(update_, posted_state_id=update_.state_id, failed_posts=0)

    def failed(self, update_: UnpostedState, *, give_up: bool) -> None:
        """The claimed state could not be posted: hand it back for the next round with one more
        failed try, or (give_up) leave it behind so the thread's later states can go out."""
        if give_up:
            self.posted(update_)
        else:
            self._settle(
                update_, posted_state_id=update_.posted_before, failed_posts=SlackThreadRow.failed_posts + 1
            )

    def _settle(self, update_: UnpostedState, **values: object) -> None:
        with self._writing() as connection:
            connection.execute(
                update(SlackThreadRow)
                .where(
                    SlackThreadRow.request_id == update_.request_id,
                    SlackThreadRow.posted_state_id == update_.state_id,  # still our claim
                )
                .values(**values)
            )

    def _writing(self) -> AbstractContextManager[Connection]:
        return connected(self._engine, _THEN, write=True)
