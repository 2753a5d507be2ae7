"""sinfo lines → GPU pools: totals, use, unavailable nodes, partition time limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.slurm.capacity import capacity_from_sinfo, node_is_unavailable
from backends.types import GpuPool

FIXTURES = Path(__file__).parents[1] / "fixtures" / "slurm"


def pools_by_key(text: str) -> dict[tuple[str, str | None], GpuPool]:
    return {(pool.pool, pool.gpu_type): pool for pool in capacity_from_sinfo(text).pools}


def test_captured_22_05_node() -> None:
    pools = pools_by_key((FIXTURES / "sinfo-22.05.txt").read_text())
    assert set(pools) == {("gpu", "a100"), ("gpu", "l40s"), ("short", "a100"), ("short", "l40s")}
    a100 = pools[("gpu", "a100")]
    assert (a100.total, a100.allocated, a100.free, a100.free_per_node) == (2, 2, 0, (0,))
    l40s = pools[("gpu", "l40s")]
    assert (l40s.total, l40s.allocated, l40s.free, l40s.nodes) == (2, 1, 1, ("vm",))
    assert a100.max_time_minutes == 24 * 60
    assert pools[("short", "l40s")].max_time_minutes == 60
    assert all(pool.unavailable_nodes == () for pool in pools.values())


def test_drained_down_and_draining_nodes_are_excluded_and_reported() -> None:
    capacity = capacity_from_sinfo((FIXTURES / "sinfo-constructed-mixed.txt").read_text())
    pools = {(pool.pool, pool.gpu_type): pool for pool in capacity.pools}
    a100 = pools[("gpu", "a100")]
    assert a100.nodes == ("gpu01", "gpu05")
    assert a100.unavailable_nodes == ("gpu02", "gpu03", "gpu04")
    assert (a100.total, a100.allocated, a100.free, a100.free_per_node) == (8, 3, 5, (1, 4))

    h100 = pools[("h100", "h100")]  # one node spelled gpu:…, the other gres/gpu:…
    assert (h100.total, h100.allocated, h100.free_per_node) == (16, 13, (0, 3))
    assert h100.max_time_minutes == 2 * 24 * 60

    assert (pools[("mig", "1g.10gb")].total, pools[("mig", "1g.10gb")].allocated) == (7, 2)
    assert pools[("mig", "3g.40gb")].free == 1

    powered_off = pools[("interactive", "l40s")]
    assert (powered_off.total, powered_off.unavailable_nodes) == (0, ("l40s01",))

    untyped = pools[("legacy", None)]
    assert (untyped.total, untyped.allocated, untyped.max_time_minutes) == (2, 1, None)

    assert ("cpu", None) not in pools  # no GPUs there
    assert capacity.partition_max_minutes["cpu"] is None
    assert capacity.partition_order == ("gpu", "h100", "mig", "interactive", "legacy", "cpu")


@pytest.mark.parametrize(
    ("state", "unavailable"),
    [
        ("idle", False),
        ("mixed", False),
        ("allocated", False),
        ("completing", False),
        ("mixed+reserved", False),
        ("idle+drain", True),
        ("drained", True),
        ("mixed+draining", True),
        ("down+not_responding", True),
        ("down*", True),
        ("idle~", True),
        ("idle+powered_down", True),
        ("idle#", True),
        ("allocated+fail", True),
        ("maint", True),
        ("future", True),
        ("", True),
    ],
)
def test_node_states(state: str, unavailable: bool) -> None:
    assert node_is_unavailable(state) is unavailable


def test_blank_and_short_lines_are_ignored() -> None:
    assert capacity_from_sinfo("\n\nnot|enough|fields\n").pools == ()
