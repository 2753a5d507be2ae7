"""GPU samples and the telemetry store over a test's store, for the roll-up and housekeeping tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Table, func, select

from backends.gpu.samples import GpuHolder, GpuSample
from bot.settings import RollupSettings
from bot.store import Store
from bot.store.telemetry import HeldSample, TelemetryStore

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
ALICE = GpuHolder(backend="slurm", job_id="101", owner="alice")
BOB = GpuHolder(backend="k8s", job_id="ml/train-7", owner="bob")
H100 = "NVIDIA H100 80GB HBM3"


def sample(
    at: datetime,
    util: float | None,
    gpu: str = "0",
    memory: float | None = None,
    power: float | None = None,
    host: str = "node1",
) -> GpuSample:
    return GpuSample(
        at=at,
        host=host,
        gpu=gpu,
        source="dcgm",
        model=H100,
        utilization_pct=util,
        memory_used_mib=memory,
        memory_total_mib=81559.0 if memory is not None else None,
        power_w=power,
    )


def telemetry(store: Store, now: datetime = T0) -> TelemetryStore:
    return TelemetryStore(store.engine, RollupSettings(), clock=lambda: now)


def rows_in(store: Store, table: Table) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def held(
    host: str,
    gpu: str,
    model: str,
    start: datetime,
    hours: int,
    util: float | None,
    memory: float,
    holder: GpuHolder | None,
) -> list[HeldSample]:
    """`hours` of samples every 30 s of one GPU held by `holder`."""
    return [
        (
            GpuSample(
                at=start + timedelta(seconds=30 * i),
                host=host,
                gpu=gpu,
                source="dcgm",
                model=model,
                utilization_pct=util,
                memory_used_mib=memory,
                memory_total_mib=80_000.0,
                power_w=300.0,
            ),
            holder,
        )
        for i in range(hours * 120)  # every 30 s
    ]
