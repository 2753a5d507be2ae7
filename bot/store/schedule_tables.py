"""Tables of the schedule: who leads it, which digest periods were posted, whom idle GPUs nudged.

Why these shapes:
- `schedule_leases` holds one row per lease name. Taking or renewing it is one compare-and-set
  UPDATE (`… WHERE holder = me OR expires_at < now`), and the first taker INSERTs … ON CONFLICT DO
  NOTHING: whichever statement matches a row wins, on SQLite and PostgreSQL alike, with no
  SELECT … FOR UPDATE (SQLite has none).
- `schedule_runs` has the (digest key, period start) as its primary key, so a digest for one
  period can be claimed once, whatever number of replicas or restarts race for it.
- `gpu_nudges` keeps one row per job: when its owner was last nudged and how long they asked to
  keep it, so the cooldown outlives a restart and holds across replicas.

APScheduler's own `apscheduler_jobs` table is not here: the job store creates it from its own
metadata, and our migrations never own it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.tables import Base


class ScheduleLeaseRow(Base):
    __tablename__ = "schedule_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime]
    acquired_at: Mapped[datetime]  # when this holder took it over (kept while it renews)


class ScheduledRunRow(Base):
    """One scheduled digest period, claimed by the replica that posts it."""

    __tablename__ = "schedule_runs"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    period_start: Mapped[datetime] = mapped_column(primary_key=True)
    period_end: Mapped[datetime]
    holder: Mapped[str] = mapped_column(String(255))
    claimed_at: Mapped[datetime]
    posted_at: Mapped[datetime | None]  # None while posting, or when the poster died half-way


class GpuNudgeRow(Base):
    """An idle job's nudges: the cooldown since the last one, and the owner's Keep."""

    __tablename__ = "gpu_nudges"

    backend: Mapped[str] = mapped_column(String(16), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255))  # the cluster user the job runs as
    last_nudged_at: Mapped[datetime | None]
    kept_until: Mapped[datetime | None]
    nudges: Mapped[int]  # how many nudges were delivered
    updated_at: Mapped[datetime]
