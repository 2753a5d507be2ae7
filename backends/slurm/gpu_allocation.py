"""Which Slurm job holds which GPU index on which node, from ONE `scontrol show job -d`.

Why scontrol: only the detailed job view says which GPU *indices* a job got; squeue and its JSON
give counts. One call lists every job, so attributing all GPUs of a cluster costs one controller
RPC per poll whatever the number of jobs (FIELD_NOTES: keep RPCs O(1) per poll).

The text (src/api/job_info.c; one record per job, a blank line between records; not `-o`,
whose one-line records could not tell a detail from a command line that looks like one):
    JobId=81 JobName=train
       UserId=alice(1001) GroupId=alice(1001) MCS_label=N/A
       JobState=RUNNING Reason=None Dependency=(null)
       …
       JOB_GRES=gpu:a100:2
         Nodes=vm CPU_IDs=0 Mem=1000 GRES=gpu:a100:2(IDX:0-1)
- One `Nodes=` line per group of nodes with the same layout, right after `JOB_GRES=` (before
  21.08: after `Socks/Node=`); only those lines are read. `Nodes=` may be a host list
  (`gpu[01-02]`), expanded with hostlist.py.
- GRES detail spellings: `gpu:a100:2(IDX:0-1)` (20.11+), `gpu:a100(IDX:0,2)` and `GRES_IDX=`
  (older), `gres/gpu…` and `gres:gpu…` prefixes (23.11+ TRES style) all read; `gpu:a100(CNT:1)`
  (a count without indices) and shards/MPS have no index to attribute and are skipped.
- Only jobs that hold their allocation count (RUNNING, SUSPENDED, COMPLETING, …): a finished job
  still listed because of MinJobAge keeps its detail lines but no longer holds the GPUs.
- IDX is Slurm's index among the node's `gpu` GRES in gres.conf order; with AutoDetect=nvml (or
  File=/dev/nvidiaN listed in order) it is the NVML index. MIG GRES indices do not name a GPU
  instance id, so MIG slices are not attributed from here.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from backends.gpu.samples import GpuHolder
from backends.slurm.gres import GRES_PREFIXES, split_items
from backends.slurm.hostlist import expand_hostlist
from backends.slurm.runner import CommandRunner, SlurmCli
from backends.slurm.settings import SlurmSettings

SHOW_JOBS_ARGV = ("scontrol", "show", "job", "-d")

HOLDING_STATES = frozenset(
    {"RUNNING", "SUSPENDED", "COMPLETING", "CONFIGURING", "SIGNALING", "STAGE_OUT", "RESIZING", "STOPPED"}
)

# (node name, GPU index as text, like GpuSample.gpu)
GpuSlot = tuple[str, str]

_RECORD_START = re.compile(r"(?m)^(?=JobId=\d)")
_JOB_ID = re.compile(r"^JobId=(\d+)\s")
_USER = re.compile(r"(?m)^\s+UserId=([^\s(]+)\(")
_STATE = re.compile(r"(?m)^\s+JobState=(\S+)")
# The lines after which Slurm prints the per-node detail (JOB_GRES= since 21.08, Socks/Node= before).
_DETAIL_BLOCK_START = ("JOB_GRES=", "Socks/Node=")
_DETAIL = re.compile(
    r"^\s+Nodes=(?P<nodes>\S+)\s+CPU_IDs=\S*(?:\s+Mem=\S*)?\s+GRES(?:_IDX)?=(?P<gres>\S*)\s*$"
)
_ITEM = re.compile(r"^(?P<spec>[^()]+)\((?P<kind>IDX|CNT):(?P<indices>[^)]*)\)$")


def _expand_indices(text: str) -> list[int]:
    """`0-1` → [0, 1]; `0,2-3` → [0, 2, 3]; `N/A` or anything unreadable → []."""
    indices: list[int] = []
    for piece in text.split(","):
        low, _, high = piece.strip().partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            return []
        indices.extend(range(int(low), int(high or low) + 1))
    return indices


def gpu_indices(gres_detail: str) -> list[int]:
    """The GPU indices named in one node's GRES detail (`gpu:a100:1(IDX:0),gpu:l40s:1(IDX:2)`)."""
    indices: list[int] = []
    for item in split_items(gres_detail):
        matched = _ITEM.match(item)
        if matched is None or matched["kind"] != "IDX":
            continue
        spec = matched["spec"]
        for prefix in GRES_PREFIXES:
            spec = spec.removeprefix(prefix)
        if spec.split(":", 1)[0] != "gpu":
            continue
        indices.extend(index for index in _expand_indices(matched["indices"]) if index not in indices)
    return indices


def _details(record: str) -> list[tuple[str, str]]:
    """(nodes, GRES detail) of the lines right after `JOB_GRES=`: text elsewhere in the record
    (a job name, a command line) that happens to look like a detail line is not read."""
    details: list[tuple[str, str]] = []
    in_block = False
    for line in record.splitlines():
        if line.strip().startswith(_DETAIL_BLOCK_START):
            in_block = True
            continue
        detail = _DETAIL.match(line) if in_block else None
        if detail is None:
            in_block = False
            continue
        details.append((detail["nodes"], detail["gres"]))
    return details


def parse_gpu_allocations(text: str) -> dict[GpuSlot, GpuHolder]:
    """(node, GPU index) → the job holding it, from `scontrol show job -d` output."""
    allocations: dict[GpuSlot, GpuHolder] = {}
    running_slots: set[GpuSlot] = set()
    for record in _RECORD_START.split(text):
        job = _JOB_ID.match(record)
        state = _STATE.search(record)
        if job is None or state is None or state[1] not in HOLDING_STATES:
            continue
        user = _USER.search(record)
        holder = GpuHolder(backend="slurm", job_id=job[1], owner=user[1] if user else "")
        for nodes, gres in _details(record):
            for index in gpu_indices(gres):
                for node in expand_hostlist(nodes):
                    slot = (node, str(index))
                    if slot in running_slots:
                        continue  # a RUNNING job's claim beats a COMPLETING one's
                    allocations[slot] = holder
                    if state[1] == "RUNNING":
                        running_slots.add(slot)
    return allocations


def read_gpu_allocations(runner: CommandRunner) -> dict[GpuSlot, GpuHolder]:
    """Every job's GPUs, with one scontrol call. Raises the runner's BackendUnavailable."""
    return parse_gpu_allocations(runner.run(list(SHOW_JOBS_ARGV)))


def gpu_allocations_reader(settings: SlurmSettings) -> Callable[[], dict[GpuSlot, GpuHolder]]:
    """Who holds which GPU, read again at each call over the real Slurm binaries (the collector's)."""
    slurm = SlurmCli(settings)
    return lambda: read_gpu_allocations(slurm)
