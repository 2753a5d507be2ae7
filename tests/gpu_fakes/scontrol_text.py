"""`scontrol show job -d` texts as Slurm prints them, for the attribution tests.

Slurm's printer (src/api/job_info.c `slurm_sprint_job_info`, 22.05): a record per job,
three-space indents, the detail line `     Nodes=… CPU_IDs=… Mem=… GRES=…` under `JOB_GRES=`,
a blank line after each record; GRES detail from src/common/gres.c `gres_build_job_details`:
`gpu:a100:2(IDX:0-1)`, or `gpu:a100(CNT:1)` without a bitmap. Constructed, not captured: the
shared local Slurm may not be given jobs by these tests.
"""

from __future__ import annotations

from collections.abc import Sequence


def record(
    job_id: int,
    user: str,
    uid: int,
    state: str,
    reason: str,
    node_list: str,
    job_gres: str,
    details: Sequence[str],
    tres: str,
    num_nodes: int = 1,
) -> str:
    """One job as 22.05's `scontrol show job -d` prints it."""
    lines = [
        f"JobId={job_id} JobName=train-{job_id}",
        f"   UserId={user}({uid}) GroupId={user}({uid}) MCS_label=N/A",
        "   Priority=4294901753 Nice=0 Account=(null) QOS=(null)",
        f"   JobState={state} Reason={reason} Dependency=(null)",
        "   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0",
        "   DerivedExitCode=0:0",
        "   RunTime=00:03:12 TimeLimit=04:00:00 TimeMin=N/A",
        "   SubmitTime=2026-11-24T09:14:02 EligibleTime=2026-11-24T09:14:02",
        "   AccrueTime=2026-11-24T09:14:02",
        "   StartTime=2026-11-24T09:14:03 EndTime=2026-11-24T13:14:03 Deadline=N/A",
        "   SuspendTime=None SecsPreSuspend=0 LastSchedEval=2026-11-24T09:14:03 Scheduler=Main",
        "   Partition=gpu AllocNode:Sid=vm:2211",
        "   ReqNodeList=(null) ExcNodeList=(null)",
        f"   NodeList={node_list}",
        f"   BatchHost={node_list.split('[')[0] if node_list != '(null)' else '(null)'}",
        f"   NumNodes={num_nodes} NumCPUs=2 NumTasks=1 CPUs/Task=2 ReqB:S:C:T=0:0:*:*",
        f"   TRES={tres}",
        "   Socks/Node=* NtasksPerN:B:S:C=0:0:*:* CoreSpec=*",
        f"   JOB_GRES={job_gres}",
        *(f"     {detail}" for detail in details),
        "   MinCPUsNode=2 MinMemoryNode=1000M MinTmpDiskNode=0",
        "   Features=(null) DelayBoot=00:00:00",
        "   OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null)",
        f"   Command=/home/{user}/train.sh --nodes=2 Nodes=fake CPU_IDs=0 GRES=gpu:x:1(IDX:7)",
        f"   WorkDir=/home/{user}",
        f"   StdErr=/home/{user}/concierge-train-{job_id}.out",
        "   StdIn=/dev/null",
        f"   StdOut=/home/{user}/concierge-train-{job_id}.out",
        "   Power=",
        f"   TresPerNode=gres:{job_gres}",
        "",
        "",
    ]
    return "\n".join(lines)


# The local cluster's shape (node vm: gpu:a100:2 then gpu:l40s:2, so l40s are indices 2-3).
LOCAL_22_05 = (
    record(
        81,
        "alice",
        1001,
        "RUNNING",
        "None",
        "vm",
        "gpu:a100:2",
        ["Nodes=vm CPU_IDs=0-1 Mem=1000 GRES=gpu:a100:2(IDX:0-1)"],
        "cpu=2,mem=1000M,node=1,billing=2,gres/gpu=2,gres/gpu:a100=2",
    )
    + record(
        82,
        "bob",
        1002,
        "RUNNING",
        "None",
        "vm",
        "gpu:l40s:1",
        ["Nodes=vm CPU_IDs=2-3 Mem=1000 GRES=gpu:l40s:1(IDX:3)"],
        "cpu=2,mem=1000M,node=1,billing=2,gres/gpu=1,gres/gpu:l40s=1",
    )
    + record(
        83,
        "carol",
        1003,
        "PENDING",
        "Resources",
        "(null)",
        "gpu:a100:2",
        [],
        "cpu=2,mem=1000M,node=1,billing=2,gres/gpu=2,gres/gpu:a100=2",
    )
    + record(
        79,
        "dave",
        1004,
        "COMPLETED",
        "None",
        "vm",
        "gpu:l40s:1",
        ["Nodes=vm CPU_IDs=4-5 Mem=1000 GRES=gpu:l40s:1(IDX:2)"],  # kept by MinJobAge; GPUs freed
        "cpu=2,mem=1000M,node=1,billing=2,gres/gpu=1,gres/gpu:l40s=1",
    )
)

# Constructed for spellings the local cluster cannot show: multi-node host lists, nodes with
# different layouts, two GPU types on one node, the old count-less form, 23.11's `gres/` prefix,
# a count without indices, shards, a CPU-only job, a suspended job, a COMPLETING job whose GPU a
# RUNNING job already got.
CLUSTER = (
    record(
        5001,
        "erin",
        2001,
        "RUNNING",
        "None",
        "gpu[01-02],gpu04",
        "gpu:h100:4",
        [
            "Nodes=gpu[01-02] CPU_IDs=0-15 Mem=64000 GRES=gpu:h100:4(IDX:0-3)",
            "Nodes=gpu04 CPU_IDs=0-15 Mem=64000 GRES=gpu:h100:4(IDX:2-5)",
        ],
        "cpu=48,mem=192000M,node=3,billing=48,gres/gpu=12,gres/gpu:h100=12",
        num_nodes=3,
    )
    + record(
        5002,
        "frank",
        2002,
        "RUNNING",
        "None",
        "gpu03",
        "gpu:a100:1,gpu:l40s:1",
        ["Nodes=gpu03 CPU_IDs=0-3 Mem=8000 GRES=gpu:a100:1(IDX:0),gpu:l40s:1(IDX:6)"],
        "cpu=4,mem=8000M,node=1,billing=4,gres/gpu=2,gres/gpu:a100=1,gres/gpu:l40s=1",
    )
    + record(
        5003,
        "grace",
        2003,
        "RUNNING",
        "None",
        "gpu05",
        "gpu:a100:3",
        ["Nodes=gpu05 CPU_IDs=0-5 Mem=8000 GRES=gpu:a100(IDX:0,2-3)"],
        "cpu=6,mem=8000M,node=1,billing=6,gres/gpu=3,gres/gpu:a100=3",
    )
    + record(
        5004,
        "heidi",
        2004,
        "RUNNING",
        "None",
        "gpu06",
        "gres/gpu:h100:1",
        ["Nodes=gpu06 CPU_IDs=0-1 Mem=4000 GRES=gres/gpu:h100:1(IDX:7)"],
        "cpu=2,mem=4000M,node=1,billing=2,gres/gpu=1,gres/gpu:h100=1",
    )
    + record(
        5005,
        "ivan",
        2005,
        "RUNNING",
        "None",
        "gpu07",
        "gpu:a100:1,shard:a100:2",
        ["Nodes=gpu07 CPU_IDs=0-1 Mem=4000 GRES=gpu:a100(CNT:1),shard:a100:2(2/4,0/4)"],
        "cpu=2,mem=4000M,node=1,billing=2,gres/gpu=1,gres/shard=2",
    )
    + record(
        5006,
        "judy",
        2006,
        "RUNNING",
        "None",
        "cpu01",
        "(null)",
        ["Nodes=cpu01 CPU_IDs=0-31 Mem=64000 GRES="],
        "cpu=32,mem=64000M,node=1,billing=32",
    )
    + record(
        5007,
        "mallory",
        2007,
        "SUSPENDED",
        "None",
        "gpu08",
        "gpu:a100:1",
        ["Nodes=gpu08 CPU_IDs=0-1 Mem=4000 GRES=gpu:a100:1(IDX:1)"],
        "cpu=2,mem=4000M,node=1,billing=2,gres/gpu=1,gres/gpu:a100=1",
    )
    + record(
        5008,
        "niaj",
        2008,
        "COMPLETING",
        "None",
        "gpu05",
        "gpu:a100:1",
        ["Nodes=gpu05 CPU_IDs=6-7 Mem=4000 GRES=gpu:a100:2(IDX:1-2)"],
        "cpu=2,mem=4000M,node=1,billing=2,gres/gpu=2,gres/gpu:a100=2",
    )
)
