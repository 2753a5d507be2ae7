"""A Slack-submitted job's state changes, posted in its thread, each transition once.

"Once" is not decided here: `Store.record_state` returns True to exactly one caller per
transition (a compare-and-set), across restarts and replicas, and the tracker hands on only
those. So `JobUpdates.post` posts every transition it is given, and nothing else.

Where to post is remembered at the click (`remember_submit_threads`, a Bolt middleware: the
Submit listener knows nothing of threads): the clicked message's channel, and its ts when the
message is shared. An ephemeral preview cannot hold a thread, so the first update posts a
"Job N submitted" message in that channel and anchors the thread there; the store lets one
anchor win if two replicas try at once.

A failure to post does not stop the tracker's loop (it must outlive Slack being down): the
transition is kept and posted again at the next rounds, up to `MAX_ATTEMPTS`, in order per job
(a later state of a job waits while an earlier one is being retried). The retries live in this
process: a restart forgets them, while the states themselves are in the store.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from backends.errors import ConciergeError
from backends.slurm.reasons import ReasonContext, describe_reason
from backends.types import JobRef, JobState
from bot.slack import blocks
from bot.store import RequestRecord, Store
from bot.tracker import Tracker, Transition

log = logging.getLogger("concierge.slack.job_updates")
MAX_ATTEMPTS = 5  # rounds of the tracker (15 s apart by default) before an update is given up
MAX_WAITING = 1000  # updates waiting for a retry; beyond, the oldest are given up


class JobUpdates:
    def __init__(self, store: Store, client: WebClient) -> None:
        self._store = store
        self._client = client
        self._waiting: deque[tuple[Transition, int]] = deque(maxlen=MAX_WAITING)

    def post(self, transitions: Iterable[Transition]) -> int:
        """Post each transition in its job's thread, after those waiting for a retry; returns how
        many were posted."""
        queued = [*self._waiting, *((transition, 0) for transition in transitions)]
        self._waiting.clear()
        held: set[JobRef] = set()  # jobs with an earlier update waiting: later ones wait behind it
        posted = 0
        for transition, failed in queued:
            if transition.ref in held:
                self._waiting.append((transition, failed))
                continue
            try:
                posted += self._post_one(transition)
            except Exception:
                job = transition.ref.job_id
                if failed + 1 >= MAX_ATTEMPTS:
                    log.exception("gave up posting the update of job %s after %d tries", job, MAX_ATTEMPTS)
                    continue
                log.warning(
                    "could not post the update of job %s; trying again next round", job, exc_info=True
                )
                self._waiting.append((transition, failed + 1))
                held.add(transition.ref)
        return posted

    def _post_one(self, transition: Transition) -> int:
        record = self._store.request_for_job(transition.ref)
        if record is None:
            return 0
        thread = self._store.thread_for(record.id)
        if thread is None:
            return 0  # not submitted from Slack
        channel, ts = thread
        if ts is None:
            ts = self._anchor(record, channel)
        text = update_text(transition, record)
        self._client.chat_postMessage(channel=channel, thread_ts=ts, text=text)
        return 1

    def _anchor(self, record: RequestRecord, channel: str) -> str:
        """A shared message to thread under, for a job whose preview was ephemeral."""
        text = f":rocket: Job {blocks.escaped(record.job_id or '?')} submitted: {blocks.escaped(record.text)}"
        ts = str(self._client.chat_postMessage(channel=channel, text=blocks.fitted(text, 3000))["ts"])
        if self._store.remember_thread(record.id, channel, ts):
            return ts
        # Another replica anchored it first: use theirs, and take ours back.
        thread = self._store.thread_for(record.id)
        try:
            self._client.chat_delete(channel=channel, ts=ts)
        except Exception:
            log.warning("could not delete a second anchor message %s in %s", ts, channel)
        if thread is None or thread[1] is None:
            return ts
        return thread[1]


def update_text(transition: Transition, record: RequestRecord) -> str:
    """One line a person reads in the thread: what happened to the job, in plain words."""
    job = blocks.escaped(transition.ref.job_id)
    state, reason = transition.state, transition.reason
    if state == JobState.PENDING:
        return f":hourglass_flowing_sand: {blocks.escaped(_pending_words(transition, record))}"
    if state == JobState.RUNNING:
        return f":arrow_forward: Job {job} is running."
    because = f" ({blocks.escaped(reason)})" if reason else ""
    elapsed = _elapsed(record)
    if state == JobState.COMPLETED:
        return f":white_check_mark: Job {job} completed {elapsed}."
    if state == JobState.FAILED:
        return f":x: Job {job} failed {elapsed}{because}."
    if state == JobState.CANCELLED:
        return f":stop_sign: Job {job} was cancelled {elapsed}."
    if state == JobState.TIMEOUT:
        return f":alarm_clock: Job {job} reached its time limit {elapsed}."
    return f"Job {job} is {state.value}{because}."


def _pending_words(transition: Transition, record: RequestRecord) -> str:
    job, reason = transition.ref.job_id, transition.reason
    if transition.ref.backend == "slurm":
        planned = (record.plan or {}).get("request") or {}
        context = ReasonContext(job=job, partition=str(planned.get("partition") or "default"))
        return describe_reason(reason, context)[1]
    return f"Job {job} is pending" + (f": {reason}." if reason else ".")


def _elapsed(record: RequestRecord) -> str:
    """How long it ran (first seen running → now recorded end), else since it was submitted."""
    end = record.last_state.observed_at if record.last_state else record.updated_at
    started = next((s.observed_at for s in record.states if s.state == JobState.RUNNING), None)
    if started is not None:
        return f"after {duration(started, end)} of running"
    return f"{duration(record.created_at, end)} after it was asked for, without being seen running"


def duration(start: datetime, end: datetime) -> str:
    seconds = max(int((end - start).total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"


def remember_submit_threads(app: App, store: Store) -> None:
    """Note where each Submit click happened, before the Submit listener runs (it needs no help)."""

    def remember(body: dict[str, Any], next: Callable[[], Any]) -> Any:
        action = (body.get("actions") or [{}])[0]
        if body.get("type") == "block_actions" and action.get("action_id") == blocks.SUBMIT_ACTION:
            remember_clicked_message(store, body, str(action.get("value") or ""))
        return next()

    app.middleware(remember)


def remember_clicked_message(store: Store, body: dict[str, Any], request_id: str) -> None:
    """The clicked message's channel, and its ts when others can see it (a thread needs that)."""
    container = body.get("container") or {}
    channel = container.get("channel_id")
    if not channel or not request_id:
        return
    ts = None if container.get("is_ephemeral", True) else container.get("message_ts")
    try:
        store.remember_thread(request_id, str(channel), str(ts) if ts else None)
    except ConciergeError as e:
        # A click on an unknown request, or the store down: the click's own answer says so.
        log.warning("no thread remembered for request %s: %s", request_id, e.message)


def follow_jobs(tracker: Tracker, updates: JobUpdates, interval_s: float, stop: threading.Event) -> None:
    """The tracker's loop in `concierge serve`: poll, post what changed, wait; until `stop`."""
    while not stop.is_set():
        try:
            updates.post(tracker.poll_once().transitions)
        except Exception:
            log.exception("the tracker's poll failed; trying again in %.0f s", interval_s)
        stop.wait(interval_s)
