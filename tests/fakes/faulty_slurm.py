"""The real Slurm backend with a fault injected right before and/or after the real sbatch: the
cases where sbatch ran but the store never heard of it (tests/integration/test_submit_faults.py)."""

from __future__ import annotations

from collections.abc import Callable

from backends.slurm.backend import SlurmBackend
from backends.types import JobRef, Plan


class FaultySlurm(SlurmBackend):
    """The real Slurm backend with a fault right before and/or after the real sbatch."""

    def __init__(
        self,
        real: SlurmBackend,
        *,
        before: Callable[[], None] = lambda: None,
        after: Callable[[JobRef], None] = lambda ref: None,
    ) -> None:
        self.__dict__.update(real.__dict__)
        self._before, self._after = before, after

    def submit(self, plan: Plan) -> JobRef:
        self._before()
        ref = super().submit(plan)
        self._after(ref)
        return ref
