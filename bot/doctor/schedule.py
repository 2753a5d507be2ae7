"""Which `serve` replica leads the schedule (digests, sampling, nudges): the lease in the store."""

from __future__ import annotations

from datetime import UTC, datetime

from backends.errors import ConciergeError
from bot.doctor.report import Check, failed, passed
from bot.store import Store

NAME = "schedule"
LEASE = "schedule"  # bot/telemetry/schedule.LEASE (not imported: it pulls APScheduler in)


def schedule_checks(store: Store, now: datetime | None = None) -> list[Check]:
    now = now or datetime.now(UTC)
    try:
        lease = store.schedule().lease(LEASE)
    except ConciergeError as e:
        return [failed(NAME, "leader", e.message, "fix the database first (see its lines)", e.exit_code)]
    if lease is None:
        return [passed(NAME, "leader", "none yet: no `concierge serve` has run against this database")]
    expires = lease.expires_at if lease.expires_at.tzinfo else lease.expires_at.replace(tzinfo=UTC)
    if expires > now:
        return [passed(NAME, "leader", f"{lease.holder}, lease until {expires:%Y-%m-%d %H:%M:%S} UTC")]
    return [
        failed(
            NAME,
            "leader",
            f"nobody leads: {lease.holder}'s lease ran out at {expires:%Y-%m-%d %H:%M:%S} UTC",
            "digests and nudges stop until a `concierge serve` takes the lease: start one, or read the "
            "running replicas' logs for lease errors",
            6,
        )
    ]
