"""GPU roll-ups on real SQLite and PostgreSQL: exact sums, upserts across batches, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.store import Store
from bot.store.telemetry import HOURS, MINUTES, HeldSample, Resolution, RollupSettings, TelemetryStore
from tests.helpers.telemetry import ALICE, BOB, H100, T0, rows_in, sample, telemetry


def test_a_batch_rolls_up_to_exact_sums_minimums_and_maximums(store: Store) -> None:
    batch: list[HeldSample] = [
        (sample(T0, 10.0, memory=1000.0, power=100.0), ALICE),
        (sample(T0 + timedelta(seconds=30), 30.0, memory=3000.0, power=300.0), ALICE),
        (sample(T0 + timedelta(minutes=1), 50.0, memory=2000.0, power=200.0), ALICE),
        (sample(T0, 99.0, gpu="1"), None),
    ]
    counts = telemetry(store).record(batch)
    assert (counts.samples, counts.minute_rows, counts.hour_rows) == (4, 3, 2)
    assert (rows_in(store, MINUTES), rows_in(store, HOURS)) == (3, 2)

    resolution, minutes = telemetry(store).usage(T0, T0 + timedelta(minutes=1), Resolution.MINUTE)
    assert resolution is Resolution.MINUTE
    first = next(u for u in minutes if u.gpu == "0")
    assert first.holder == ALICE
    assert (first.samples, first.seconds, first.util_samples, first.util_sum) == (2, 60.0, 2, 40.0)
    assert (first.util_min, first.util_max, first.mean_utilization_pct) == (10.0, 30.0, 20.0)
    assert (first.memory_samples, first.memory_used_sum, first.memory_used_max) == (2, 4000.0, 3000.0)
    assert (first.power_samples, first.power_sum, first.power_max, first.memory_total) == (
        2,
        400.0,
        300.0,
        81559.0,
    )
    assert first.first_bucket == first.last_bucket == T0

    _, hours = telemetry(store).usage(T0, T0 + timedelta(hours=1), Resolution.HOUR)
    assert [(u.name, u.holder) for u in hours] == [("node1:0", ALICE), ("node1:1", None)]
    held, free = hours
    assert (held.samples, held.seconds, held.util_sum, held.util_min, held.util_max) == (
        3,
        90.0,
        90.0,
        10.0,
        50.0,
    )
    assert (held.memory_used_sum, held.power_sum, held.model) == (6000.0, 600.0, H100)
    assert (free.samples, free.util_sum, free.memory_samples, free.memory_total) == (1, 99.0, 0, None)


def test_a_second_batch_adds_to_the_buckets_the_first_wrote(store: Store) -> None:
    one_batch, two_batches = telemetry(store), telemetry(store)
    first = [(sample(T0, None, memory=500.0), ALICE), (sample(T0 + timedelta(seconds=30), 40.0), ALICE)]
    second = [(sample(T0 + timedelta(seconds=45), 20.0, power=250.0), ALICE)]
    one_batch.record(first)
    two_batches.record(second)

    for resolution in Resolution:
        _, (usage,) = telemetry(store).usage(T0, T0 + timedelta(hours=1), resolution)
        assert (usage.samples, usage.seconds) == (3, 90.0)
        assert (usage.util_samples, usage.util_sum, usage.util_min, usage.util_max) == (2, 60.0, 20.0, 40.0)
        assert (usage.memory_samples, usage.memory_used_max, usage.memory_total) == (1, 500.0, 81559.0)
        assert (usage.power_samples, usage.power_max) == (1, 250.0)
    # The same minute written twice is still one row in each table.
    assert (rows_in(store, MINUTES), rows_in(store, HOURS)) == (1, 1)


def test_samples_without_utilisation_do_not_count_as_idle(store: Store) -> None:
    telemetry(store).record(
        [
            (sample(T0, None, memory=1000.0), ALICE),
            (sample(T0 + timedelta(seconds=30), None, memory=1000.0), ALICE),
            (sample(T0 + timedelta(minutes=1), 60.0, memory=1000.0), ALICE),
        ]
    )
    _, (usage,) = telemetry(store).usage(T0, T0 + timedelta(hours=1), Resolution.HOUR)
    assert (usage.samples, usage.util_samples, usage.memory_samples) == (3, 1, 3)
    assert usage.mean_utilization_pct == 60.0  # not (0 + 0 + 60) / 3
    assert usage.util_min == 60.0


def test_a_gpu_that_changes_holder_inside_an_hour_is_charged_to_each(store: Store) -> None:
    batch: list[HeldSample] = [(sample(T0 + timedelta(minutes=m), 10.0), ALICE) for m in range(20)]
    batch += [(sample(T0 + timedelta(minutes=m), 90.0), BOB) for m in range(20, 50)]
    batch += [(sample(T0 + timedelta(minutes=m), 0.0), None) for m in range(50, 60)]
    telemetry(store).record(batch, interval_seconds=60)
    _, hours = telemetry(store).usage(T0, T0 + timedelta(hours=1), Resolution.HOUR)
    by_holder = {u.holder: (u.seconds, u.mean_utilization_pct) for u in hours}
    assert by_holder == {ALICE: (1200.0, 10.0), BOB: (1800.0, 90.0), None: (600.0, 0.0)}
    assert rows_in(store, MINUTES) == 60


def test_retention_prunes_minutes_after_hours_and_hours_after_days(store: Store) -> None:
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    settings = RollupSettings(minutes_kept_hours=48, hours_kept_days=90)
    store_now = TelemetryStore(store.engine, settings, clock=lambda: now)
    for age in (timedelta(days=91), timedelta(days=89), timedelta(hours=49), timedelta(hours=47)):
        store_now.record([(sample(now - age, 50.0), ALICE)])
    assert (rows_in(store, MINUTES), rows_in(store, HOURS)) == (4, 4)

    pruned = store_now.prune(now)
    assert (pruned.minute_rows, pruned.hour_rows) == (3, 1)
    with store.engine.connect() as connection:
        kept_minutes = connection.execute(select(MINUTES.c.bucket_start)).scalars().all()
        kept_hours = sorted(connection.execute(select(HOURS.c.bucket_start)).scalars().all())
    assert kept_minutes == [now - timedelta(hours=47)]
    assert kept_hours == [now - timedelta(days=89), now - timedelta(hours=49), now - timedelta(hours=47)]
    assert store_now.prune(now) == type(pruned)(0, 0)


def test_short_recent_periods_read_minutes_and_others_hours(store: Store) -> None:
    now = T0
    reader = telemetry(store, now)
    assert reader.resolution_for(now - timedelta(hours=2), now) is Resolution.MINUTE
    assert reader.resolution_for(now - timedelta(hours=24), now) is Resolution.HOUR
    # Minutes are kept 48 h: a short period three days ago can only come from hours.
    three_days_ago = now - timedelta(days=3)
    assert reader.resolution_for(three_days_ago, three_days_ago + timedelta(hours=1)) is Resolution.HOUR


def test_the_utilisation_grid_has_a_cell_per_gpu_per_bucket(store: Store) -> None:
    telemetry(store).record(
        [
            (sample(T0, 20.0), ALICE),
            (sample(T0 + timedelta(seconds=30), 40.0), BOB),  # two holders in one minute: one cell
            (sample(T0 + timedelta(minutes=2), None), ALICE),
            (sample(T0 + timedelta(minutes=1), 70.0, gpu="1"), None),
        ]
    )
    grid = telemetry(store).utilization_grid(T0, T0 + timedelta(minutes=3), Resolution.MINUTE)
    assert grid.bucket_starts == (T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2))
    assert [(row.name, row.utilization_pct) for row in grid.rows] == [
        ("node1:0", (30.0, None, None)),
        ("node1:1", (None, 70.0, None)),
    ]


def test_naive_timestamps_are_refused(store: Store) -> None:
    naive = datetime(2026, 3, 2, 10, 0)
    with pytest.raises(ValueError, match="naive"):
        telemetry(store).usage(naive, naive + timedelta(hours=1))
    with pytest.raises(ValueError, match="naive"):
        telemetry(store).record([(sample(naive, 1.0), None)])
