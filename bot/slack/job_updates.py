"""A Slack-submitted job's state changes, posted in its thread, each transition once and in order.

"Once" is decided in the database, twice over: `Store.record_state` records each transition
for exactly one caller (a compare-and-set), and each thread remembers the last recorded state
posted in it (`ThreadUpdates`, bot/store/thread_updates.py). A round (`post_new`, after each
tracker poll) posts every recorded state its thread has not had yet, oldest first, whichever
replica recorded it.

Where to post is remembered by the click's work, after Slack's ack (`remember_clicked_message`,
from Submit and Request approval: nothing touches the database before the ack): the clicked
message's channel, and its ts when the message is shared. An ephemeral preview cannot hold a
thread, so the first update posts a "Job N submitted" message in that channel and anchors the
thread there; the store lets one anchor win if two replicas try at once.

A failure to post does not stop the tracker's loop (it must outlive Slack being down): the state
stays unposted and is tried again at the next rounds, up to `MAX_ATTEMPTS`, and its thread's
later states wait behind it. The tries are counted in the database, so a restart goes on where
the last process stopped. States older than `STALE_AFTER` are news nobody needs any more.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from slack_sdk import WebClient

from backends.durations_text import duration
from backends.errors import ConciergeError
from backends.footprint import describe_footprint
from backends.pending import pending_sentence
from backends.types import Identity, JobState, Plan
from bot.job_output import OutputTail, output_tail
from bot.slack import blocks
from bot.store import RequestRecord, Store
from bot.store.store import utc_now
from bot.store.thread_updates import UnpostedState
from bot.text_render import ended
from bot.tracker import Tracker, Transition

log = logging.getLogger("concierge.slack.job_updates")
MAX_ATTEMPTS = 5  # rounds of the tracker (15 s apart by default) before an update is given up
STALE_AFTER = timedelta(days=1)


class JobUpdates:
    def __init__(self, store: Store, client: WebClient, clock: Callable[[], datetime] = utc_now) -> None:
        self._store = store
        self._threads = store.thread_updates
        self._client = client
        self._clock = clock

    def post_new(self) -> int:
        """Post each recorded state its thread has not had yet, in order per thread; returns how
        many were posted."""
        posted = 0
        # Per thread (request id), what this round learnt: the state posted last and the thread's ts
        # (an ephemeral preview's thread is anchored by the first post, and read before it was).
        moved_on: dict[str, tuple[int, str]] = {}
        blocked: set[str] = set()  # threads where a state failed or another replica is posting
        for unposted in self._threads.unposted(self._clock() - STALE_AFTER):
            thread = unposted.request_id
            if thread in blocked:
                continue
            if thread in moved_on:
                state_id, ts = moved_on[thread]
                unposted = replace(unposted, posted_before=state_id, thread_ts=ts, failed_posts=0)
            if not self._threads.claim(unposted):
                blocked.add(thread)
                continue
            try:
                ts = self._post_one(unposted)
            except Exception:
                self._failed(unposted)
                blocked.add(thread)
                continue
            self._threads.posted(unposted)
            moved_on[thread] = (unposted.state_id, ts)
            posted += 1
        return posted

    def _failed(self, unposted: UnpostedState) -> None:
        job, tries = unposted.ref.job_id, unposted.failed_posts + 1
        give_up = tries >= MAX_ATTEMPTS
        if give_up:
            log.exception("gave up posting the update of job %s after %d tries", job, tries)
        else:
            log.warning("could not post the update of job %s; trying again next round", job, exc_info=True)
        self._threads.failed(unposted, give_up=give_up)

    def _post_one(self, unposted: UnpostedState) -> str:
        """Post one state in its thread; returns the thread's ts."""
        record = self._store.request(unposted.request_id)
        ts = unposted.thread_ts or self._anchor(record, unposted.channel)
        transition = Transition(unposted.ref, unposted.state, unposted.reason, unposted.ending)
        text = update_text(transition, record, unposted.observed_at, _output(unposted, record))
        self._client.chat_postMessage(channel=unposted.channel, thread_ts=ts, text=text)
        return ts

    def _anchor(self, record: RequestRecord, channel: str) -> str:
        """A shared message to thread under, for a job whose preview was ephemeral. Everyone in the
        channel reads it, so it says what the job holds, never what it runs (bot/need_to_know.py)."""
        text = f":rocket: Job {blocks.escaped(record.job_id or '?')} submitted"
        holds = _footprint_words(record)
        text += f": {blocks.escaped(holds)}" if holds else "."
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


def _output(unposted: UnpostedState, record: RequestRecord) -> OutputTail | None:
    """The job's last output lines for its thread: only in a direct message with the app, since
    everyone in a channel reads its threads and output can hold what the command holds."""
    output = output_tail(Identity(requester=record.requester), unposted.ending, None, record)
    if output is None or unposted.channel.startswith("D"):
        return output
    status = f"/gpu status {unposted.ref.job_id}"
    return OutputTail(
        output.path, unread=f"everyone in this channel reads this thread; `{status}` shows them to you"
    )


def update_text(
    transition: Transition,
    record: RequestRecord,
    at: datetime | None = None,
    output: OutputTail | None = None,
) -> str:
    """What a person reads in the thread: what happened to the job (at `at`, default: its latest
    recorded state), in plain words; for an end, how it ended (text_render.ended), as `status` says it."""
    headline = _headline(transition, record, at)
    how = ended(transition.state, transition.ending, output) if transition.state.is_final else []
    if not how:
        return headline
    shown = blocks.escaped("\n".join(how))
    return f"{headline}\n```{shown}```"


def _headline(transition: Transition, record: RequestRecord, at: datetime | None) -> str:
    job = blocks.escaped(transition.ref.job_id)
    state, reason = transition.state, transition.reason
    if state == JobState.PENDING:
        return f":hourglass_flowing_sand: {blocks.escaped(_pending_words(transition, record))}"
    if state == JobState.RUNNING:
        return f":arrow_forward: Job {job} is running."
    because = f" ({blocks.escaped(reason)})" if reason else ""
    elapsed = _elapsed(record, at)
    if state == JobState.COMPLETED:
        return f":white_check_mark: Job {job} completed {elapsed}."
    if state == JobState.FAILED:
        return f":x: Job {job} failed {elapsed}{because}."
    if state == JobState.CANCELLED:
        return f":stop_sign: Job {job} was cancelled {elapsed}."
    if state == JobState.TIMEOUT:
        return f":alarm_clock: Job {job} reached its time limit {elapsed}."
    return f"Job {job} is {state.value}{because}."


def _footprint_words(record: RequestRecord) -> str | None:
    """What the job holds ("2 × A100 for 4 h"), from its stored plan; None without one."""
    if record.plan is None:
        return None
    try:
        return describe_footprint(Plan.model_validate(record.plan).footprint)
    except ValidationError:
        log.warning("request %s has a plan this version cannot read", record.id)
        return None


def _pending_words(transition: Transition, record: RequestRecord) -> str:
    partition = ((record.plan or {}).get("request") or {}).get("partition")
    ref = transition.ref
    return pending_sentence(ref.backend, ref.job_id, transition.reason, str(partition) if partition else None)


def _elapsed(record: RequestRecord, at: datetime | None) -> str:
    """How long it ran (first seen running → its end), else since it was submitted."""
    end = at or (record.last_state.observed_at if record.last_state else record.updated_at)
    started = next((s.observed_at for s in record.states if s.state == JobState.RUNNING), None)
    if started is not None:
        return f"after {duration(seconds=(end - started).total_seconds())} of running"
    waited = duration(seconds=(end - record.created_at).total_seconds())
    return f"{waited} after it was asked for, without being seen running"


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
    """The tracker's loop in `concierge serve`: poll, post what is new, wait; until `stop`."""
    while not stop.is_set():
        try:
            tracker.poll_once()
        except Exception:
            log.exception("the tracker's poll failed; trying again in %.0f s", interval_s)
        try:  # also after a failed poll: earlier updates may still be waiting for Slack
            updates.post_new()
        except Exception:
            log.exception("job updates could not be posted; trying again in %.0f s", interval_s)
        stop.wait(interval_s)
