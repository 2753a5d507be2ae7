"""Writing GPU samples as per-minute and per-hour roll-ups, reading periods back, and retention.

Why it is written this way:
- A batch of samples is first rolled up in memory (plain dicts of running sums, no numpy), then
  each table gets ONE executemany of INSERT … ON CONFLICT DO UPDATE that adds the batch's sums to
  whatever the bucket already holds. A minute split across two batches, or written by two
  collectors, therefore ends up exact, with no read-modify-write and no lock beyond the
  statement's own. SQLite (≥ 3.24) and PostgreSQL share the syntax; SQLAlchemy's dialect `insert`
  renders it, as `Store.map_identity` does.
- The hour table is folded from the batch's minute buckets, not from the minute table, so it
  never depends on minutes still being there: minutes are kept for hours, hours for months.
- A period is read as whole buckets, `[since, until)` rounded down to the bucket, so a period and
  the one before it never share a bucket. Short recent periods are read from minutes, others
  from hours (`resolution_for`).
- Each sample stands for `seconds` of GPU time (the sampling interval, 30 s by default as in
  dcgm-exporter and jobstats), which is how GPU-hours are counted without storing samples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Table, delete, func, select

from backends.gpu.samples import GpuHolder, GpuSample
from bot.settings import RollupSettings
from bot.store.database import conflict_insert, writing
from bot.store.store import utc_now
from bot.store.telemetry_tables import NO_HOLDER, GpuHourRow, GpuMinuteRow

HeldSample = tuple[GpuSample, GpuHolder | None]
MINUTES: Table = GpuMinuteRow.__table__  # type: ignore[assignment]
HOURS: Table = GpuHourRow.__table__  # type: ignore[assignment]
KEY_COLUMNS = ("bucket_start", "host", "gpu", "holder_backend", "holder_job_id")
ROW_COLUMNS = (
    *KEY_COLUMNS,
    "holder_owner",
    "model",
    "mig_profile",
    "samples",
    "seconds",
    "util_samples",
    "util_sum",
    "util_min",
    "util_max",
    "memory_samples",
    "memory_used_sum",
    "memory_used_max",
    "memory_total",
    "power_samples",
    "power_sum",
    "power_max",
)
_SUMMED = (
    "samples",
    "seconds",
    "util_samples",
    "util_sum",
    "memory_samples",
    "memory_used_sum",
    "power_samples",
    "power_sum",
)
_LARGEST = ("util_max", "memory_used_max", "memory_total", "power_max")
_LATEST = ("holder_owner", "model", "mig_profile")  # a later batch's value wins, a missing one keeps the old


class Resolution(StrEnum):
    MINUTE = "minute"
    HOUR = "hour"

    @property
    def bucket(self) -> timedelta:
        return timedelta(minutes=1) if self is Resolution.MINUTE else timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class RollupCounts:
    samples: int
    minute_rows: int  # buckets written (inserted or added to)
    hour_rows: int


@dataclass(frozen=True, slots=True)
class PruneCounts:
    minute_rows: int
    hour_rows: int


@dataclass(frozen=True, slots=True)
class GpuUsage:
    """One GPU under one holder (or none) over a period: the sums of its buckets."""

    host: str
    gpu: str
    holder: GpuHolder | None
    model: str | None
    mig_profile: str | None
    samples: int
    seconds: float
    util_samples: int
    util_sum: float
    util_min: float | None
    util_max: float | None
    memory_samples: int
    memory_used_sum: float
    memory_used_max: float | None
    memory_total: float | None
    power_samples: int
    power_sum: float
    power_max: float | None
    first_bucket: datetime
    last_bucket: datetime

    @property
    def name(self) -> str:
        return f"{self.host}:{self.gpu}"

    @property
    def hours(self) -> float:
        return self.seconds / 3600

    @property
    def mean_utilization_pct(self) -> float | None:
        return self.util_sum / self.util_samples if self.util_samples else None


@dataclass(frozen=True, slots=True)
class GridRow:
    host: str
    gpu: str
    model: str | None
    utilization_pct: tuple[float | None, ...]  # one per bucket of the grid; None: no reading

    @property
    def name(self) -> str:
        return f"{self.host}:{self.gpu}"


@dataclass(frozen=True, slots=True)
class UtilizationGrid:
    """Mean utilisation per GPU per bucket over a period (whatever held it), for a heatmap."""

    since: datetime
    until: datetime
    resolution: Resolution
    bucket_starts: tuple[datetime, ...]
    rows: tuple[GridRow, ...]


def _require_aware(*moments: datetime) -> None:
    for moment in moments:
        if moment.tzinfo is None:
            raise ValueError(f"refusing a naive datetime ({moment.isoformat()}): pass a timezone-aware one")


def floored(moment: datetime, resolution: Resolution) -> datetime:
    """The start of the bucket `moment` falls in."""
    _require_aware(moment)
    epoch = moment.timestamp()
    size = resolution.bucket.total_seconds()
    return datetime.fromtimestamp(epoch - epoch % size, UTC)


class TelemetryStore:
    """The roll-up tables of the concierge's database (`Store.engine`): `record` batches of samples,
    `prune` what aged out, read a period back as `usage` (per GPU and holder) or a `utilization_grid`."""

    def __init__(
        self,
        engine: Engine,
        settings: RollupSettings | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._engine = engine
        self.settings = settings or RollupSettings()
        self._clock = clock
        self._upserts = {table.name: DriverUpsert(engine, table) for table in (MINUTES, HOURS)}

    # --- writing -------------------------------------------------------------------------------

    def record(self, samples: Iterable[HeldSample], interval_seconds: float | None = None) -> RollupCounts:
        """Add a batch of samples (each with the job holding its GPU, if known) to the roll-ups.

        `interval_seconds` is the GPU time each sample stands for (default: the settings'
        sampling interval); a Prometheus average over 5 minutes stands for 300 s."""
        seconds = interval_seconds if interval_seconds is not None else self.settings.sample_interval_seconds
        minutes, count = _minute_buckets(samples)
        if not count:
            return RollupCounts(0, 0, 0)
        hours = _hour_buckets(minutes)
        with writing(self._engine).begin() as connection:
            self._upserts[MINUTES.name].run(connection, _rows(minutes, seconds))
            self._upserts[HOURS.name].run(connection, _rows(hours, seconds))
        return RollupCounts(count, len(minutes), len(hours))

    def prune(self, now: datetime) -> PruneCounts:
        """Delete buckets older than what is kept; a bucket goes once it has wholly aged out."""
        minutes_before = now - timedelta(hours=self.settings.minutes_kept_hours)
        hours_before = now - timedelta(days=self.settings.hours_kept_days)
        with writing(self._engine).begin() as connection:
            gone_minutes = connection.execute(
                delete(MINUTES).where(MINUTES.c.bucket_start <= minutes_before - Resolution.MINUTE.bucket)
            ).rowcount
            gone_hours = connection.execute(
                delete(HOURS).where(HOURS.c.bucket_start <= hours_before - Resolution.HOUR.bucket)
            ).rowcount
        return PruneCounts(gone_minutes, gone_hours)

    # --- reading -------------------------------------------------------------------------------

    def resolution_for(self, since: datetime, until: datetime) -> Resolution:
        _require_aware(since, until)
        short = until - since <= timedelta(hours=self.settings.minute_resolution_up_to_hours)
        minutes_kept_from = self._clock() - timedelta(hours=self.settings.minutes_kept_hours)
        return Resolution.MINUTE if short and since >= minutes_kept_from else Resolution.HOUR

    def usage(
        self, since: datetime, until: datetime, resolution: Resolution | None = None
    ) -> tuple[Resolution, list[GpuUsage]]:
        """Each (GPU, holder) seen in `[since, until)` (whole buckets) with its summed figures."""
        resolution = resolution or self.resolution_for(since, until)
        table = _table(resolution)
        c = table.c
        query = (
            select(
                c.host,
                c.gpu,
                c.holder_backend,
                c.holder_job_id,
                func.max(c.holder_owner),
                func.max(c.model),
                func.max(c.mig_profile),
                func.sum(c.samples),
                func.sum(c.seconds),
                func.sum(c.util_samples),
                func.sum(c.util_sum),
                func.min(c.util_min),
                func.max(c.util_max),
                func.sum(c.memory_samples),
                func.sum(c.memory_used_sum),
                func.max(c.memory_used_max),
                func.max(c.memory_total),
                func.sum(c.power_samples),
                func.sum(c.power_sum),
                func.max(c.power_max),
                func.min(c.bucket_start),
                func.max(c.bucket_start),
            )
            .where(*_in_period(table, since, until, resolution))
            .group_by(c.host, c.gpu, c.holder_backend, c.holder_job_id)
            .order_by(c.host, c.gpu, c.holder_backend, c.holder_job_id)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return resolution, [_usage(row) for row in rows]

    def utilization_grid(
        self, since: datetime, until: datetime, resolution: Resolution | None = None
    ) -> UtilizationGrid:
        resolution = resolution or self.resolution_for(since, until)
        table = _table(resolution)
        c = table.c
        query = (
            select(
                c.host,
                c.gpu,
                c.bucket_start,
                func.max(c.model),
                func.sum(c.util_sum),
                func.sum(c.util_samples),
            )
            .where(*_in_period(table, since, until, resolution))
            .group_by(c.host, c.gpu, c.bucket_start)
        )
        start, end = floored(since, resolution), floored(until, resolution)
        step = resolution.bucket
        starts = tuple(start + i * step for i in range(int((end - start) / step)))
        column = {moment: i for i, moment in enumerate(starts)}
        cells: dict[tuple[str, str], list[float | None]] = {}
        models: dict[tuple[str, str], str | None] = {}
        with self._engine.connect() as connection:
            for host, gpu, bucket_start, model, util_sum, util_samples in connection.execute(query):
                values = cells.setdefault((host, gpu), [None] * len(starts))
                models[(host, gpu)] = models.get((host, gpu)) or model
                if util_samples:
                    values[column[bucket_start]] = util_sum / util_samples
        rows = tuple(
            GridRow(host, gpu, models[(host, gpu)], tuple(values))
            for (host, gpu), values in sorted(cells.items())
        )
        return UtilizationGrid(start, end, resolution, starts, rows)


# --- rolling up in memory ----------------------------------------------------------------------

# A bucket's running figures, as a list for speed (this loop sees every sample):
_SAMPLES, _UTIL_N, _UTIL_SUM, _UTIL_MIN, _UTIL_MAX = 0, 1, 2, 3, 4
_MEM_N, _MEM_SUM, _MEM_MAX, _MEM_TOTAL, _POWER_N, _POWER_SUM, _POWER_MAX = 5, 6, 7, 8, 9, 10, 11
_OWNER, _MODEL, _MIG = 12, 13, 14
BucketKey = tuple[datetime, str, str, str, str]


def _new_bucket() -> list[Any]:
    return [0, 0, 0.0, None, None, 0, 0.0, None, None, 0, 0.0, None, None, None, None]


def _minute_buckets(samples: Iterable[HeldSample]) -> tuple[dict[BucketKey, list[Any]], int]:
    buckets: dict[BucketKey, list[Any]] = {}
    minute_of: dict[datetime, datetime] = {}  # a batch's samples share a few timestamps
    count = 0
    for sample, holder in samples:
        count += 1
        at = sample.at
        minute = minute_of.get(at)
        if minute is None:
            minute = minute_of[at] = floored(at, Resolution.MINUTE)
        if holder is None:
            key = (minute, sample.host, sample.gpu, NO_HOLDER, NO_HOLDER)
        else:
            key = (minute, sample.host, sample.gpu, holder.backend, holder.job_id)
        b = buckets.get(key)
        if b is None:
            b = buckets[key] = _new_bucket()
        b[_SAMPLES] += 1
        value = sample.utilization_pct
        if value is not None:
            b[_UTIL_N] += 1
            b[_UTIL_SUM] += value
            if b[_UTIL_MIN] is None or value < b[_UTIL_MIN]:
                b[_UTIL_MIN] = value
            if b[_UTIL_MAX] is None or value > b[_UTIL_MAX]:
                b[_UTIL_MAX] = value
        value = sample.memory_used_mib
        if value is not None:
            b[_MEM_N] += 1
            b[_MEM_SUM] += value
            if b[_MEM_MAX] is None or value > b[_MEM_MAX]:
                b[_MEM_MAX] = value
        value = sample.memory_total_mib
        if value is not None and (b[_MEM_TOTAL] is None or value > b[_MEM_TOTAL]):
            b[_MEM_TOTAL] = value
        value = sample.power_w
        if value is not None:
            b[_POWER_N] += 1
            b[_POWER_SUM] += value
            if b[_POWER_MAX] is None or value > b[_POWER_MAX]:
                b[_POWER_MAX] = value
        if holder is not None:
            b[_OWNER] = holder.owner
        if sample.model is not None:
            b[_MODEL] = sample.model
        if sample.mig_profile is not None:
            b[_MIG] = sample.mig_profile
    return buckets, count


def _smaller(a: Any, b: Any) -> Any:
    return b if a is None or (b is not None and b < a) else a


def _larger(a: Any, b: Any) -> Any:
    return b if a is None or (b is not None and b > a) else a


def _hour_buckets(minutes: dict[BucketKey, list[Any]]) -> dict[BucketKey, list[Any]]:
    hours: dict[BucketKey, list[Any]] = {}
    hour_of: dict[datetime, datetime] = {}
    for (minute, host, gpu, backend, job_id), m in minutes.items():
        hour = hour_of.get(minute)
        if hour is None:
            hour = hour_of[minute] = minute.replace(minute=0)
        key = (hour, host, gpu, backend, job_id)
        h = hours.get(key)
        if h is None:
            hours[key] = list(m)
            continue
        for i in (_SAMPLES, _UTIL_N, _UTIL_SUM, _MEM_N, _MEM_SUM, _POWER_N, _POWER_SUM):
            h[i] += m[i]
        h[_UTIL_MIN] = _smaller(h[_UTIL_MIN], m[_UTIL_MIN])
        for i in (_UTIL_MAX, _MEM_MAX, _MEM_TOTAL, _POWER_MAX):
            h[i] = _larger(h[i], m[i])
        for i in (_OWNER, _MODEL, _MIG):
            h[i] = m[i] or h[i]
    return hours


def _rows(buckets: dict[BucketKey, list[Any]], seconds_per_sample: float) -> list[tuple[Any, ...]]:
    """The buckets as rows in the tables' column order (`ROW_COLUMNS`)."""
    return [
        (
            *key,
            b[_OWNER],
            b[_MODEL],
            b[_MIG],
            b[_SAMPLES],
            b[_SAMPLES] * seconds_per_sample,
            b[_UTIL_N],
            b[_UTIL_SUM],
            b[_UTIL_MIN],
            b[_UTIL_MAX],
            b[_MEM_N],
            b[_MEM_SUM],
            b[_MEM_MAX],
            b[_MEM_TOTAL],
            b[_POWER_N],
            b[_POWER_SUM],
            b[_POWER_MAX],
        )
        for key, b in buckets.items()
    ]


# --- SQL -----------------------------------------------------------------------------------------


class DriverUpsert:
    """The upsert compiled once by SQLAlchemy and run as one DB-API executemany.

    Going through `Connection.execute` costs ~20 µs a row in SQLAlchemy's per-row parameter
    processing, more than the database's own work; here the rows are plain tuples and the one
    typed column, the bucket's start, is converted by its SQLAlchemy type once per distinct value
    (a batch has a few dozen), so what reaches the database is exactly what the ORM would send.
    """

    def __init__(self, engine: Engine, table: Table) -> None:
        dialect = engine.dialect
        compiled = _upsert(conflict_insert(engine), table, dialect.name).compile(dialect=dialect)
        names = [column.name for column in table.columns]
        if names != list(ROW_COLUMNS) or (compiled.positional and compiled.positiontup != names):
            raise AssertionError(f"{table.name}'s columns are not in the order _rows writes them")
        self._sql = compiled.string
        self._positional = compiled.positional
        # The dialect's own implementation, as SQLAlchemy applies it (on SQLite: UTC, then its text form).
        processor = table.c.bucket_start.type.dialect_impl(dialect).bind_processor(dialect)
        self._convert_start: Callable[[datetime], Any] = processor or (lambda value: value)

    def run(self, connection: Connection, rows: list[tuple[Any, ...]]) -> None:
        converted: dict[datetime, Any] = {}
        for i, row in enumerate(rows):
            start = row[0]
            value = converted.get(start)
            if value is None:
                value = converted[start] = self._convert_start(start)
            rows[i] = (value, *row[1:])
        if self._positional:
            connection.exec_driver_sql(self._sql, rows)
        else:
            connection.exec_driver_sql(self._sql, [dict(zip(ROW_COLUMNS, row, strict=True)) for row in rows])


def _upsert(insert: Callable[[Table], Any], table: Table, dialect: str) -> Any:
    """INSERT … ON CONFLICT (key) DO UPDATE adding sums and keeping extremes; NULL means 'no reading'."""
    statement = insert(table)
    new = statement.excluded
    # SQLite's two-argument min()/max() return NULL if either is NULL; PostgreSQL's LEAST/GREATEST
    # skip NULLs. Coalescing each side with the other gives "the extreme of what is known" on both.
    smallest, largest = (func.least, func.greatest) if dialect == "postgresql" else (func.min, func.max)

    def extreme(pick: Any, old: ColumnElement[Any], added: ColumnElement[Any]) -> ColumnElement[Any]:
        return pick(func.coalesce(old, added), func.coalesce(added, old))  # type: ignore[no-any-return]

    changes: dict[str, Any] = {name: table.c[name] + new[name] for name in _SUMMED}
    changes["util_min"] = extreme(smallest, table.c.util_min, new.util_min)
    changes.update({name: extreme(largest, table.c[name], new[name]) for name in _LARGEST})
    changes.update({name: func.coalesce(new[name], table.c[name]) for name in _LATEST})
    return statement.on_conflict_do_update(index_elements=list(KEY_COLUMNS), set_=changes)


def _table(resolution: Resolution) -> Table:
    return MINUTES if resolution is Resolution.MINUTE else HOURS


def _in_period(table: Table, since: datetime, until: datetime, resolution: Resolution) -> Sequence[Any]:
    return (
        table.c.bucket_start >= floored(since, resolution),
        table.c.bucket_start < floored(until, resolution),
    )


def _usage(row: Any) -> GpuUsage:
    (host, gpu, backend, job_id, owner, model, mig, *figures, first, last) = row
    holder = None if backend == NO_HOLDER else GpuHolder(backend=backend, job_id=job_id, owner=owner or "")
    (samples, seconds, util_n, util_sum, util_min, util_max, mem_n, mem_sum, mem_max, mem_total) = figures[
        :10
    ]
    power_n, power_sum, power_max = figures[10:]
    return GpuUsage(
        host=host,
        gpu=gpu,
        holder=holder,
        model=model,
        mig_profile=mig,
        samples=int(samples),
        seconds=float(seconds),
        util_samples=int(util_n),
        util_sum=float(util_sum),
        util_min=util_min,
        util_max=util_max,
        memory_samples=int(mem_n),
        memory_used_sum=float(mem_sum),
        memory_used_max=mem_max,
        memory_total=mem_total,
        power_samples=int(power_n),
        power_sum=float(power_sum),
        power_max=power_max,
        first_bucket=first,
        last_bucket=last,
    )
