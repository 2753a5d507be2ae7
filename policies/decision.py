"""What the policies answer, and the usage they answer against.

A `Decision` is data, not an exception: the engine stores it with the request, shows it to the
person, and only then acts on it. Its printed form is fixed by shared/contracts/parse.md
(`{"verdict": …, "reasons": […]}`), so `to_contract` is the one place that shape lives.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from backends.cluster_limits import ClusterGpuLimit
from backends.types import VALUE_MODEL


class Verdict(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    NEEDS_APPROVAL = "needs_approval"


class Decision(BaseModel):
    """The verdict and every reason for it, each a sentence a person can act on."""

    model_config = VALUE_MODEL

    verdict: Verdict
    reasons: tuple[str, ...] = ()

    def to_contract(self) -> dict[str, Any]:
        return {"verdict": self.verdict.value, "reasons": list(self.reasons)}


class Usage(BaseModel):
    """What the person already holds: jobs submitted and not yet finished (running or pending), and
    the cluster's own GPU limits the request would meet, with their use now (read from the cluster
    where its backend can: Slurm QOS and association limits)."""

    model_config = VALUE_MODEL

    gpus_in_use: int = Field(default=0, ge=0)
    jobs_active: int = Field(default=0, ge=0)
    cluster_limits: tuple[ClusterGpuLimit, ...] = ()
