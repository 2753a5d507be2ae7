"""GPU telemetry at cluster scale: 1,000 GPUs × 24 h of 30 s samples (2.88 M) through the roll-up
path into a fresh store, then the day's digest built from it.

Samples are generated synthetically before each batch is timed (generation is not counted): 125
hosts × 8 GPUs, four GPU models, jobs of 1–8 GPUs lasting 1–12 h with a per-job utilisation
level (some at 0 %, some low, most busy, a few MIG devices without a reading), and about a fifth
of GPU time unattributed. Batches are `--batch-minutes` of samples from every GPU, as a collector
flushing that often would write them.
Timed: `TelemetryStore.record` for all batches (roll-up + upsert), then `build_digest` for the
last 24 h with the previous-period trend; the text, Block Kit and chart renderings are timed
apart. Goal (issue 6): digest build ≤ 3 s.

Usage: .venv/bin/python bench/digest_rollup.py [--gpus 1000] [--hours 24] [--batch-minutes 10]
       [--database-url postgresql://…]   (default: a fresh SQLite file in a temp dir)
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from backends.gpu.samples import GpuHolder, GpuSample
from backends.types import JobRef, JobState, JobStatus
from bot.slack.blocks import as_dicts
from bot.slack.digest_blocks import digest_blocks
from bot.store import Store
from bot.store.telemetry import HOURS, MINUTES, HeldSample, TelemetryStore
from bot.telemetry.chart import utilization_chart
from bot.telemetry.digest import DigestThresholds, build_digest
from bot.telemetry.digest_text import render_digest

GOAL_S = 3.0
INTERVAL_S = 30
GPUS_PER_HOST = 8
MODELS = ("NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB", "NVIDIA L40S", "NVIDIA A100-SXM4-40GB")
MEMORY_MIB = {MODELS[0]: 81_559.0, MODELS[1]: 81_920.0, MODELS[2]: 46_068.0, MODELS[3]: 40_960.0}
USERS = [f"user{i:02d}" for i in range(60)]
START = datetime(2026, 3, 2, tzinfo=UTC)


class Allocation:
    """What one GPU is doing until `ends`: held by a job at a utilisation level, or by nobody."""

    __slots__ = ("ends", "holder", "level", "measured")

    def __init__(self, ends: int, holder: GpuHolder | None, level: float, measured: bool) -> None:
        self.ends, self.holder, self.level, self.measured = ends, holder, level, measured


def next_allocation(rng: random.Random, now: int, job_ids: Iterator[int]) -> Allocation:
    if rng.random() < 0.2:  # nobody holds it for a while
        return Allocation(now + rng.randint(600, 4 * 3600), None, rng.choice((0.0, 0.0, 3.0, 60.0)), True)
    level = rng.choice((0.0, 8.0, 12.0, 20.0, 45.0, 70.0, 85.0, 95.0, 95.0))
    holder = GpuHolder("slurm", str(next(job_ids)), rng.choice(USERS))
    return Allocation(now + rng.randint(3600, 12 * 3600), holder, level, rng.random() > 0.03)


def batches(gpus: int, hours: int, batch_minutes: int, seed: int = 6) -> Iterator[list[HeldSample]]:
    rng = random.Random(seed)
    job_ids = iter(range(100_000, 10_000_000))
    names = [(f"gpu-node{i // GPUS_PER_HOST:03d}", str(i % GPUS_PER_HOST)) for i in range(gpus)]
    models = [MODELS[(i // GPUS_PER_HOST) % len(MODELS)] for i in range(gpus)]
    doing = [next_allocation(rng, 0, job_ids) for _ in range(gpus)]
    steps_per_batch = batch_minutes * 60 // INTERVAL_S
    total_steps = hours * 3600 // INTERVAL_S
    noise = [rng.uniform(-4, 4) for _ in range(997)]
    for first in range(0, total_steps, steps_per_batch):
        batch: list[HeldSample] = []
        for step in range(first, min(first + steps_per_batch, total_steps)):
            offset = step * INTERVAL_S
            at = START + timedelta(seconds=offset)
            for i, ((host, gpu), model) in enumerate(zip(names, models, strict=True)):
                now = doing[i]
                if offset >= now.ends:
                    now = doing[i] = next_allocation(rng, offset, job_ids)
                util = None
                if now.measured:
                    util = (
                        0.0 if now.level == 0 else min(100.0, max(0.0, now.level + noise[(i + step) % 997]))
                    )
                total = MEMORY_MIB[model]
                sample = GpuSample(
                    at=at,
                    host=host,
                    gpu=gpu,
                    source="dcgm",
                    model=model,
                    utilization_pct=util,
                    memory_used_mib=total * (util or 0.0) / 150,
                    memory_total_mib=total,
                    power_w=80.0 + 3 * (util or 0.0),
                )
                batch.append((sample, now.holder))
        yield batch


def pending_queue(count: int, now: datetime) -> list[JobStatus]:
    reasons = ("Resources", "Priority", "QOSMaxGRESPerUser", "Resources")
    return [
        JobStatus(
            ref=JobRef(backend="slurm", job_id=str(900_000 + i)),
            name=f"waiting-{i}",
            user=USERS[i % len(USERS)],
            state=JobState.PENDING,
            raw_state="PENDING",
            reason=reasons[i % len(reasons)],
            submitted_at=now - timedelta(minutes=7 * i + 3),
        )
        for i in range(count)
    ]


def sqlite_bytes(url: str) -> int | None:
    if not url.startswith("sqlite:///"):
        return None
    path = Path(url.removeprefix("sqlite:///"))
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gpus", type=int, default=1000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--batch-minutes", type=int, default=10)
    parser.add_argument(
        "--database-url", default=None, help="an empty database (default: a fresh SQLite file)"
    )
    parser.add_argument("--chart", type=Path, default=None, help="also write the chart PNG here")
    args = parser.parse_args()

    workdir = tempfile.TemporaryDirectory(prefix="digest-bench-")
    url = args.database_url or f"sqlite:///{workdir.name}/concierge.db"
    store = Store(url)
    store.migrate()
    until = START + timedelta(hours=args.hours)
    telemetry = TelemetryStore(store.engine, clock=lambda: until)

    samples = minute_rows = hour_rows = 0
    rollup_s = rollup_cpu_s = generate_s = 0.0
    started = time.perf_counter()
    for batch in batches(args.gpus, args.hours, args.batch_minutes):
        generated, cpu = time.perf_counter(), time.process_time()
        generate_s += generated - started
        counts = telemetry.record(batch)
        started = time.perf_counter()
        rollup_s += started - generated
        rollup_cpu_s += time.process_time() - cpu
        samples += counts.samples
        minute_rows += counts.minute_rows
        hour_rows += counts.hour_rows
    with store.engine.connect() as connection:
        stored_minutes = connection.execute(select(func.count()).select_from(MINUTES)).scalar_one()
        stored_hours = connection.execute(select(func.count()).select_from(HOURS)).scalar_one()

    queue = pending_queue(200, until)
    since = until - timedelta(hours=24)
    started, cpu = time.perf_counter(), time.process_time()
    digest = build_digest(telemetry, since, until, queue, DigestThresholds())
    digest_s, digest_cpu_s = time.perf_counter() - started, time.process_time() - cpu

    started = time.perf_counter()
    text = render_digest(digest)
    text_s = time.perf_counter() - started
    started = time.perf_counter()
    blocks = as_dicts(digest_blocks(digest))
    blocks_s = time.perf_counter() - started
    started = time.perf_counter()
    png = utilization_chart(telemetry.utilization_grid(since, until), digest.by_model)
    chart_s = time.perf_counter() - started
    if args.chart:
        args.chart.write_bytes(png)

    where = "SQLite file" if args.database_url is None else store.engine.dialect.name
    print(f"GPU roll-up + digest: {args.gpus:,} GPUs × {args.hours} h of {INTERVAL_S} s samples into {where}")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"  (seconds are wall clock; 'cpu' is this process's CPU time; load average now {load})")
    print(
        f"  roll-up: {samples:,} samples in {rollup_s:.1f} s, cpu {rollup_cpu_s:.1f} s "
        f"({samples / rollup_s:,.0f} samples/s), "
        f"batches of {args.batch_minutes} min; {minute_rows:,} minute and {hour_rows:,} hour bucket writes "
        f"(generation, not counted: {generate_s:.1f} s)"
    )
    size = sqlite_bytes(url)
    shown_size = f", {size / 1e6:,.1f} MB on disk" if size is not None else ""
    print(f"  store after roll-up: {stored_minutes:,} minute rows, {stored_hours:,} hour rows{shown_size}")
    print(
        f"  digest (24 h + previous period, {digest.cluster.gpus:,} GPUs, {len(digest.idle)} idle jobs, "
        f"{digest.queue.pending} pending): {digest_s:.2f} s, cpu {digest_cpu_s:.2f} s"
    )
    print(
        f"  renderings: text {text_s * 1000:.0f} ms ({len(text.splitlines())} lines), "
        f"Block Kit {blocks_s * 1000:.0f} ms ({len(blocks)} blocks), "
        f"chart {chart_s:.2f} s ({len(png) / 1e3:.0f} kB PNG)"
    )
    print(f"  total: {rollup_s + digest_s:.1f} s (roll-up + digest)")
    verdict = "met" if digest_s <= GOAL_S else "NOT met"
    print(f"  goal digest ≤ {GOAL_S:.0f} s: {verdict} ({digest_s / GOAL_S:.2f}× the goal)")
    store.close()
    workdir.cleanup()


if __name__ == "__main__":
    main()
