"""Idle-GPU nudges end to end: the real Nudger and store (SQLite and PostgreSQL), a real WebClient
talking to the fake Slack Web API, clicks signed and dispatched through the real Bolt app.

Only the cluster is a fake (it remembers whose job is whose and refuses anyone else's cancel, as
Slurm does), and idle allocations are given as the digest reports them. The nudger's clock is
the test's; the Keep button, clicked through Slack, uses the wall clock, so Keep's test puts the
nudger's clock around it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from slack_sdk import WebClient

from backends.types import Identity, JobRef
from bot.slack.nudges import CANCEL_JOB_ACTION, KEEP_ACTION, slack_nudger
from bot.store import Store
from bot.store.schedule import ScheduleStore
from bot.telemetry.nudges import IdleAllocation, NudgeRound, NudgeSettings, NudgeStatus
from tests.fakes.backend import FakeBackend
from tests.fakes.slack_app import ALICE, BOB, Door, make_door
from tests.slack_fake import FakeSlack, block_action_body

SETTINGS = NudgeSettings(idle_minutes=60, cooldown_hours=24, seen_within_minutes=15)


if TYPE_CHECKING:
    from bot.telemetry.digest import IdleJob

    def _digest_reports_idle_allocations(job: IdleJob) -> IdleAllocation:
        return job  # mypy checks that the digest's idle jobs are what the nudger takes


@dataclass(frozen=True)
class Idle:
    """An idle allocation, as bot.telemetry.digest reports it."""

    job_id: str
    owner: str
    since: datetime
    last_seen: datetime
    gpus: int = 2
    mean_utilization_pct: float = 0.4
    backend: str = "slurm"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Nudges(Door):
    """The Slack door with the nudger, on the test's clock."""

    clock: Clock = field(default_factory=lambda: Clock(datetime.now(UTC)))
    settings: NudgeSettings = SETTINGS

    def round(self, *jobs: Idle) -> NudgeRound:
        # No retry handler: a rate-limited post fails at once, as one that exhausted its retries.
        client = WebClient(token="xoxb-test", base_url=self.fake.api_url)
        return slack_nudger(self.store, client, self.settings, self.clock).run(jobs)

    def idle(self, job_id: str, owner: str = "alice", *, for_: timedelta = timedelta(hours=3)) -> Idle:
        """A job idle for `for_` up to a minute ago, by the nudger's clock."""
        seen = self.clock.now - timedelta(minutes=1)
        return Idle(job_id=job_id, owner=owner, since=seen - for_, last_seen=seen)

    def dms(self) -> list[dict[str, Any]]:
        return self.fake.calls_to("chat.postMessage")

    def press(self, action: str, job_id: str, user: Identity) -> str:
        """Click a button of the job's nudge (the latest DM about it), as `user`."""
        (message,) = [dm for dm in self.dms() if f"Job {job_id} " in dm["text"]][-1:]
        url = self.response_url()
        body = block_action_body(
            action,
            f"slurm:{job_id}",
            user.requester,
            channel=str(message["channel"]),
            message_ts="1700000000.000200",
            message_blocks=message["blocks"],
            response_url=url,
        )
        assert self.dispatch(body).status == 200
        return url


@pytest.fixture
def nudges(store: Store, fake: FakeSlack) -> Nudges:
    store.map_identity(ALICE)
    store.map_identity(BOB)
    cluster = FakeBackend(owners={"501": "alice", "502": "alice", "777": "carol"})
    door = make_door(store, fake, cluster, nudges=SETTINGS)
    return Nudges(door.app, fake, cluster, store)


def _shown(message: dict[str, Any]) -> str:
    return str(message.get("text", "")) + json.dumps(message.get("blocks", []))


def _buttons(message: dict[str, Any]) -> dict[str, str]:
    return {
        element["text"]["text"]: element["value"]
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    }


def test_the_owner_of_a_long_idle_job_gets_one_dm_per_cooldown(nudges: Nudges) -> None:
    now = nudges.clock.now
    ended = Idle("503", "alice", since=now - timedelta(hours=5), last_seen=now - timedelta(hours=1))
    nudged = nudges.round(
        nudges.idle("501", for_=timedelta(hours=2, minutes=59)),
        nudges.idle("502", for_=timedelta(minutes=30)),  # not idle long enough yet
        ended,  # not seen holding its GPUs for an hour: it has ended
    )
    assert [n.job_id for n in nudged.nudged] == ["501"]
    assert nudges.fake.calls_to("conversations.open") == [{"users": "U0ALICE"}]
    (dm,) = nudges.dms()
    assert dm["channel"] == "D0ALICE"
    assert "*2 GPU(s)*" in _shown(dm) and "*0.4 %*" in _shown(dm) and "*2 h 59 min*" in _shown(dm)
    assert _buttons(dm) == {"Keep": "slurm:501", "Cancel job": "slurm:501"}

    nudges.clock.now += timedelta(hours=23)
    again = nudges.round(nudges.idle("501"))
    assert again.nudged == ()
    assert [(note.job_id, note.status) for note in again.for_admins] == [("501", NudgeStatus.COOLING_DOWN)]
    assert len(nudges.dms()) == 1

    nudges.clock.now += timedelta(hours=1, minutes=1)  # the cooldown is over, the job still idle
    assert [n.job_id for n in nudges.round(nudges.idle("501")).nudged] == ["501"]
    assert len(nudges.dms()) == 2
    record = ScheduleStore(nudges.store.engine).nudge_record("slurm", "501")
    assert record is not None and record.nudges == 2 and record.last_nudged_at == nudges.clock.now


def test_keep_silences_the_job_for_a_cooldown(nudges: Nudges) -> None:
    nudges.clock.now = datetime.now(UTC) - timedelta(days=2)  # nudged two days ago: cooldown over
    assert len(nudges.round(nudges.idle("501")).nudged) == 1
    before = datetime.now(UTC)
    nudges.press(KEEP_ACTION, "501", ALICE)
    (update,) = nudges.fake.wait_for("chat.update")
    after = datetime.now(UTC)
    assert update["channel"] == "D0ALICE" and update["ts"] == "1700000000.000200"
    assert ":pushpin: Kept job *501*" in update["text"]
    assert "actions" not in [block["type"] for block in update["blocks"]]
    record = ScheduleStore(nudges.store.engine).nudge_record("slurm", "501")
    assert record is not None and record.kept_until is not None
    assert before + timedelta(hours=24) <= record.kept_until <= after + timedelta(hours=24)

    nudges.clock.now = after + timedelta(hours=23)
    kept = nudges.round(nudges.idle("501"))
    assert kept.nudged == () and kept.for_admins[0].status == NudgeStatus.KEPT
    nudges.clock.now = after + timedelta(hours=24, minutes=1)
    assert len(nudges.round(nudges.idle("501")).nudged) == 1
    assert len(nudges.dms()) == 2
    (kept_event,) = nudges.store.audit_events(subject="501")
    assert (kept_event.actor, kept_event.action) == ("U0ALICE", "keep_idle_job")


def test_cancel_job_cancels_as_the_owner(nudges: Nudges) -> None:
    nudges.round(nudges.idle("501"))
    nudges.press(CANCEL_JOB_ACTION, "501", ALICE)
    (update,) = nudges.fake.wait_for("chat.update")
    assert ":stop_sign: Cancelled job *501* as `alice`" in update["text"]
    assert "actions" not in [block["type"] for block in update["blocks"]]
    ((job_id, identity),) = zip(nudges.backend.cancelled, nudges.backend.cancelled_as, strict=True)
    assert job_id == "501" and identity == ALICE  # the owner's identity, as mapped; not the bot's
    (cancel,) = nudges.store.audit_events(subject="501")
    assert (cancel.actor, cancel.action) == ("U0ALICE", "cancel")
    (asked,) = nudges.store.history("U0ALICE")
    assert (asked.text, asked.door, asked.outcome) == ("cancel 501", "slack", "answered")


@pytest.mark.parametrize("action", [CANCEL_JOB_ACTION, KEEP_ACTION])
def test_someone_elses_click_is_refused(nudges: Nudges, action: str) -> None:
    nudges.round(nudges.idle("501"))
    (refused,) = nudges.answers_to(nudges.press(action, "501", BOB))
    assert refused["response_type"] == "ephemeral"
    assert "job 501 runs as alice; only its owner can keep or cancel it" in _shown(refused)
    assert nudges.backend.cancelled == []
    assert nudges.fake.calls_to("chat.update") == []
    record = ScheduleStore(nudges.store.engine).nudge_record("slurm", "501")
    assert record is not None and record.kept_until is None
    assert nudges.store.audit_events(subject="501") == []


def test_a_failed_post_is_not_counted_as_a_nudge(nudges: Nudges) -> None:
    nudges.fake.rate_limit("chat.postMessage", times=1)
    failed = nudges.round(nudges.idle("501"))
    assert failed.nudged == () and failed.for_admins[0].status == NudgeStatus.FAILED
    assert nudges.dms() == []  # the one attempt was answered 429
    record = ScheduleStore(nudges.store.engine).nudge_record("slurm", "501")
    assert record is not None and record.last_nudged_at is None and record.nudges == 0

    retried = nudges.round(nudges.idle("501"))  # the next round, no cooldown in the way
    assert [n.job_id for n in retried.nudged] == ["501"] and len(nudges.dms()) == 1


def test_an_owner_nobody_can_reach_is_listed_for_admins_until_they_can_be(nudges: Nudges) -> None:
    unreachable = nudges.round(nudges.idle("777", owner="carol"))
    assert unreachable.nudged == () and nudges.dms() == []
    assert nudges.fake.calls_to("conversations.open") == []
    (note,) = unreachable.for_admins
    assert (note.owner, note.gpus, note.status, note.nudges) == ("carol", 2, NudgeStatus.UNREACHABLE, 0)

    # carol asked for the job on Slack: the request says who to tell.
    request_id = nudges.store.new_request("U0CAROL", "slack", "2 a100 for a day")
    nudges.store.record_submission(request_id, JobRef(backend="slurm", job_id="777"))
    assert [n.owner for n in nudges.round(nudges.idle("777", owner="carol")).nudged] == ["carol"]
    assert nudges.fake.calls_to("conversations.open") == [{"users": "U0CAROL"}]
