"""Free and total GPUs per partition and type, from ONE `sinfo` call.

`sinfo -N -h -O NodeList:0|,Partition:0|,StateComplete:0|,Gres:0|,GresUsed:0|,Time:0|` prints
one line per (node, partition) with the node's configured GRES, the GRES in use, its full state
(`idle`, `mixed+drain`, `down+not_responding`…) and the partition's time limit. The `|` suffix
makes the columns unambiguous (GRES index lists contain commas and spaces never appear), the
`:0` width turns truncation off, and the -O field names exist unchanged from 20.11 to 25.x, where
`sinfo --json` changed shape twice. One call serves `capacity()`, `explain()`'s alternatives and
the partition time limits.

Nodes that cannot take new work (down, drained or draining, failing, not responding, powered
down, in maintenance…) are left out of totals and listed in `unavailable_nodes`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from backends.slurm.durations import parse_slurm_duration
from backends.slurm.gres import parse_gpus
from backends.types import GpuPool, PoolTally

SINFO_ARGV: tuple[str, ...] = (
    "sinfo",
    "-N",
    "-h",
    "-O",
    "NodeList:0|,Partition:0|,StateComplete:0|,Gres:0|,GresUsed:0|,Time:0|",
)

_UNAVAILABLE_WORDS = frozenset(
    {
        "down",
        "drain",
        "drained",
        "draining",
        "drng",
        "fail",
        "failing",
        "not_responding",
        "no_respond",
        "maint",
        "reboot",
        "reboot_issued",
        "reboot_requested",
        "power_down",
        "powered_down",
        "powering_down",
        "powering_up",
        "power_up",
        "future",
        "inval",
        "invalid",
        "invalid_reg",
        "unknown",
    }
)
# StateLong/StateCompact suffixes: * not responding, ~ powered off, # powering up,
# % powering down, ! power down pending, @ reboot pending, ^ reboot issued.
_UNAVAILABLE_SUFFIXES = frozenset("*~#%!@^")


def node_is_unavailable(state: str) -> bool:
    cleaned = state.strip().lower()
    if not cleaned:
        return True
    if cleaned[-1] in _UNAVAILABLE_SUFFIXES:
        return True
    return any(word in _UNAVAILABLE_WORDS for word in cleaned.replace("+", " ").split())


@dataclass(frozen=True)
class NodeLine:
    node: str
    partition: str
    state: str
    gres: str
    gres_used: str
    max_time_minutes: int | None


def parse_sinfo_nodes(text: str) -> list[NodeLine]:
    lines: list[NodeLine] = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        fields = raw.split("|")
        if len(fields) < 6:
            continue
        node, partition, state, gres, gres_used, time_limit = (f.strip() for f in fields[:6])
        lines.append(
            NodeLine(
                node=node,
                partition=partition.rstrip("*"),  # `*` marks the default partition
                state=state,
                gres=gres,
                gres_used=gres_used,
                max_time_minutes=parse_slurm_duration(time_limit),
            )
        )
    return lines


@dataclass(frozen=True)
class ClusterCapacity:
    """What one sinfo call says: GPU pools plus every partition's time limit (even GPU-less ones)."""

    pools: tuple[GpuPool, ...]
    partition_max_minutes: Mapping[str, int | None]
    partition_order: tuple[str, ...]

    def pools_in(self, partition: str) -> list[GpuPool]:
        return [pool for pool in self.pools if pool.pool == partition]


def _used_by_type(gres_used: str) -> dict[str | None, int]:
    used: dict[str | None, int] = defaultdict(int)
    for ask in parse_gpus(gres_used):
        used[ask.gpu_type] += ask.count
    return used


def capacity_from_sinfo(text: str) -> ClusterCapacity:
    lines = parse_sinfo_nodes(text)
    tallies: dict[tuple[str, str | None], PoolTally] = {}
    max_minutes: dict[str, int | None] = {}
    order: list[str] = []
    for line in lines:
        if line.partition not in max_minutes:
            order.append(line.partition)
        max_minutes[line.partition] = line.max_time_minutes
        configured: dict[str | None, int] = defaultdict(int)
        for ask in parse_gpus(line.gres):
            configured[ask.gpu_type] += ask.count
        used = _used_by_type(line.gres_used)
        unavailable = node_is_unavailable(line.state)
        for gpu_type, count in configured.items():
            tally = tallies.setdefault((line.partition, gpu_type), PoolTally(gpu_type))
            tally.add(line.node, count, used.get(gpu_type, 0), unavailable=unavailable)
    pools = tuple(tally.pool("slurm", part, max_minutes.get(part)) for (part, _), tally in tallies.items())
    return ClusterCapacity(pools=pools, partition_max_minutes=max_minutes, partition_order=tuple(order))


def largest_single_node_free(pool: GpuPool) -> int:
    return max(pool.free_per_node, default=0)


def nodes_with_free(pool: GpuPool, per_node: int) -> int:
    return sum(1 for free in pool.free_per_node if free >= per_node)


def pools_sorted(pools: Sequence[GpuPool]) -> list[GpuPool]:
    return sorted(pools, key=lambda p: (p.pool, p.gpu_type or ""))
