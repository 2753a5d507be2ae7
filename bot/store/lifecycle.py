"""A request's lifecycle, as the `requests.outcome` column spells it.

    received → planned → submitting → submitted → running → (the job's end state)
    and, instead of going on: invalid / denied / needs_approval / awaiting_approval / rejected /
    failed / declined / superseded / answered / …; a cancel the model read waits in
    awaiting_confirmation until the person confirms it (bot/confirmation.py)

Why `submitting` exists: the request is written as `submitting` (with its GPUs) in the same
transaction that judged it against the person's limit, *before* sbatch or the Kubernetes create.
So a second submit judged a moment later already counts it, and if anything fails after the
cluster accepted the job (the database gone, the process killed), the row still says a job may
exist; the reconciler (bot/reconciler.py) then finds the job by the request id it carries (Slurm
comment, Kubernetes label) and records it, or, once no job can still appear, says it never ran.
"""

from __future__ import annotations

RECEIVED = "received"  # stored the moment it arrived; nothing else known yet
PLANNED = "planned"  # understood, judged and planned: a preview that can still be submitted
SUBMITTING = "submitting"  # admitted against the limits; the cluster is being asked
SUBMITTED = "submitted"  # a job exists and has not been seen running or ending
RUNNING = "running"  # the job was last seen running (or completing, suspended)
AWAITING_APPROVAL = "awaiting_approval"  # shown to approvers; Approve submits it
DENIED_BY_APPROVER = "denied_by_approver"  # an approver said no (and why)
AWAITING_CONFIRMATION = "awaiting_confirmation"  # a cancel the model read, shown to the person first
UNKNOWN = "unknown"  # a job whose end can no longer be observed
FAILED = "failed"

# A previewed request whose Submit (button, prompt, "submit it") may still act.
OPEN = (RECEIVED, PLANNED)
# A job that holds (or will hold) GPUs: tracked, and counted against its owner.
ACTIVE = (SUBMITTED, RUNNING)
