"""The cluster's own GPU limits a request would meet (Slurm QOS and association limits), for the policy.

A backend that can read them offers `LimitAware`; the engine asks it beside the person's jobs and
hands the answer to `policies.judge` inside `Usage`, so a preview never promises what the cluster
will hold forever. Neutral data: the policy needs no Slurm words beyond `words`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field

from backends.types import VALUE_MODEL, Footprint, Identity


class ClusterGpuLimit(BaseModel):
    """One limit: "QOS team allows each user 2 GPUs at once", its use now and what the request asks."""

    model_config = VALUE_MODEL

    words: str
    limit: int = Field(ge=0)
    in_use: int | None = Field(default=None, ge=0)  # None for a per-job or per-node limit
    asked: int = Field(ge=0)
    held_by: str = ""  # " by your jobs 41, 42" when the holders are known

    @property
    def never_fits(self) -> bool:
        return self.asked > self.limit

    @property
    def room(self) -> int:
        return max(self.limit - (self.in_use or 0), 0)

    @property
    def fits_now(self) -> bool:
        return not self.never_fits and self.asked <= self.room


class ClusterLimits(BaseModel):
    model_config = VALUE_MODEL

    limits: tuple[ClusterGpuLimit, ...] = ()
    note: str | None = None  # why they could not be read, when they could not


@runtime_checkable
class LimitAware(Protocol):
    def gpu_limits(self, footprint: Footprint, identity: Identity) -> ClusterLimits:
        """The cluster's GPU limits that would apply to this job of this person (one cluster read)."""
        ...
