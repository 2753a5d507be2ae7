"""GPU use rolled up per minute and per hour; raw samples are never stored.

Why this shape:
- 1,000 GPUs sampled every 30 s are 2.88 M samples a day. Kept raw they would be the biggest thing
  in the database and every digest would scan them; rolled up they are one row per GPU per minute
  (kept hours) and per GPU per hour (kept months), and a day's digest reads ~24 k rows.
- A bucket keeps sums, sample counts, minima and maxima, never averages, so two writers (or two
  batches) adding to the same bucket stay exact: the upsert adds sums and counts.
- Each measurement has its own sample count: a sample without utilisation (NVML on a MIG-enabled
  GPU, a dcgm-exporter not collecting it) does not count as 0 % utilisation.
- The holder (backend, job id) is part of the key: a GPU handed from one job to another inside an
  hour gives two rows, so each job is charged for its own minutes. Columns of a key cannot be NULL
  (and ON CONFLICT never matches NULLs), so "no holder" is the empty string there.
- The key starts with the bucket's start: digests read a time range and retention deletes one,
  both as a range of the primary key; on SQLite the tables are WITHOUT ROWID, so that key is the
  table itself (no second B-tree to maintain on every write).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Double, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.tables import Base

NO_HOLDER = ""  # holder_backend and holder_job_id of a bucket whose GPU no job was found to hold


class GpuRollupColumns:
    """The columns shared by the minute and hour tables (a declarative mixin)."""

    bucket_start: Mapped[datetime] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    gpu: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder_backend: Mapped[str] = mapped_column(String(16), primary_key=True)
    holder_job_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    holder_owner: Mapped[str | None] = mapped_column(String(255))
    model: Mapped[str | None] = mapped_column(String(255))
    mig_profile: Mapped[str | None] = mapped_column(String(32))
    samples: Mapped[int]
    seconds: Mapped[float] = mapped_column(Double)  # samples × the sampling interval they stand for
    util_samples: Mapped[int]
    util_sum: Mapped[float] = mapped_column(Double)
    util_min: Mapped[float | None] = mapped_column(Double)
    util_max: Mapped[float | None] = mapped_column(Double)
    memory_samples: Mapped[int]
    memory_used_sum: Mapped[float] = mapped_column(Double)  # MiB
    memory_used_max: Mapped[float | None] = mapped_column(Double)
    memory_total: Mapped[float | None] = mapped_column(Double)  # MiB, the largest seen
    power_samples: Mapped[int]
    power_sum: Mapped[float] = mapped_column(Double)  # W
    power_max: Mapped[float | None] = mapped_column(Double)


class GpuMinuteRow(GpuRollupColumns, Base):
    __tablename__ = "gpu_minutes"
    __table_args__ = ({"sqlite_with_rowid": False},)


class GpuHourRow(GpuRollupColumns, Base):
    __tablename__ = "gpu_hours"
    __table_args__ = ({"sqlite_with_rowid": False},)
