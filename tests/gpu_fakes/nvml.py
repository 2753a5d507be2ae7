"""A fake NVML module: the functions NvmlSampler calls, over GPUs described as data.

It raises nvidia-ml-py's own error classes (`pynvml.NVMLError(code)` becomes the matching
`NVMLError_*` subclass, as in the real binding), returns names as str (nvidia-ml-py ≥ 11.5) or
bytes (older bindings), and counts nvmlInit/nvmlShutdown calls. Values are in NVML's units:
bytes, milliwatts, °C.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pynvml  # type: ignore[import-untyped]

NOT_SUPPORTED = pynvml.NVML_ERROR_NOT_SUPPORTED
GIB = 1024**3
MIB = 1024**2


@dataclass
class FakeMig:
    gpu_instance_id: int
    name: str  # "NVIDIA H100 80GB HBM3 MIG 1g.10gb"
    uuid: str
    memory_used: int
    memory_total: int
    pids: tuple[tuple[int, int | None], ...] = ()
    slices: int = 1
    memory_size_mb: int = 9856
    # What a MIG device answers NotSupported for on an H100 (utilisation, power, temperature).
    errors: dict[str, int] = field(
        default_factory=lambda: {
            "nvmlDeviceGetUtilizationRates": NOT_SUPPORTED,
            "nvmlDeviceGetPowerUsage": NOT_SUPPORTED,
            "nvmlDeviceGetTemperature": NOT_SUPPORTED,
        }
    )


@dataclass
class FakeGpu:
    name: str
    uuid: str
    utilization: int = 0
    memory_used: int = 0
    memory_total: int = 80 * GIB
    power_mw: int = 70_000
    temperature: int = 30
    pids: tuple[tuple[int, int | None], ...] = ()  # (pid, usedGpuMemory or None)
    mig_enabled: bool | None = False  # None: NVML answers NotSupported (pre-Ampere GPUs)
    mig_slots: int = 7
    migs: dict[int, FakeMig] = field(default_factory=dict)  # slot → device
    errors: dict[str, int] = field(default_factory=dict)  # function name → NVML error code


def h100(index: int, **changes: Any) -> FakeGpu:
    """An H100 at work (37 %, 10 GiB used, 71 W, 41 °C, two processes), with `changes` made."""
    gpu = FakeGpu(
        name="NVIDIA H100 80GB HBM3",
        uuid=f"GPU-5c7a3b1e-0000-4000-8000-00000000000{index}",
        utilization=37,
        memory_used=10 * GIB,
        memory_total=81559 * MIB,
        power_mw=71_234,
        temperature=41,
        pids=((1234, None), (5678, 2 * GIB)),
    )
    for name, value in changes.items():
        setattr(gpu, name, value)
    return gpu


class FakeNvml:
    NVMLError = pynvml.NVMLError
    NVMLError_NotSupported = pynvml.NVMLError_NotSupported
    NVML_TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU
    NVML_DEVICE_MIG_ENABLE = pynvml.NVML_DEVICE_MIG_ENABLE
    NVML_DEVICE_MIG_DISABLE = pynvml.NVML_DEVICE_MIG_DISABLE

    def __init__(
        self,
        gpus: list[FakeGpu],
        *,
        init_error: int | None = None,
        names_as_bytes: bool = False,
        driver_version: str = "550.54.15",
        nvml_version: str = "12.550.54.15",
        cuda_version: int = 12040,
    ) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.names_as_bytes = names_as_bytes
        self.driver_version = driver_version
        self.nvml_version = nvml_version
        self.cuda_version = cuda_version
        self.init_calls = 0
        self.shutdown_calls = 0
        self.initialised = False

    # -- helpers ----------------------------------------------------------------------------

    def _text(self, value: str) -> str | bytes:
        return value.encode() if self.names_as_bytes else value

    def _check(self, handle: FakeGpu | FakeMig, function: str) -> None:
        if not self.initialised:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)
        code = handle.errors.get(function)
        if code is not None:
            raise pynvml.NVMLError(code)

    # -- library ----------------------------------------------------------------------------

    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self.shutdown_calls += 1
        self.initialised = False

    def nvmlSystemGetDriverVersion(self) -> str | bytes:
        return self._text(self.driver_version)

    def nvmlSystemGetNVMLVersion(self) -> str | bytes:
        return self._text(self.nvml_version)

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return self.cuda_version

    def nvmlDeviceGetCount(self) -> int:
        if not self.initialised:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        gpu = self.gpus[index]
        self._check(gpu, "nvmlDeviceGetHandleByIndex")
        return gpu

    # -- per device -------------------------------------------------------------------------

    def nvmlDeviceGetName(self, handle: FakeGpu | FakeMig) -> str | bytes:
        self._check(handle, "nvmlDeviceGetName")
        return self._text(handle.name)

    def nvmlDeviceGetUUID(self, handle: FakeGpu | FakeMig) -> str | bytes:
        self._check(handle, "nvmlDeviceGetUUID")
        return self._text(handle.uuid)

    def nvmlDeviceGetUtilizationRates(self, handle: FakeGpu | FakeMig) -> Any:
        self._check(handle, "nvmlDeviceGetUtilizationRates")
        assert isinstance(handle, FakeGpu)
        return SimpleNamespace(gpu=handle.utilization, memory=0)

    def nvmlDeviceGetMemoryInfo(self, handle: FakeGpu | FakeMig) -> Any:
        self._check(handle, "nvmlDeviceGetMemoryInfo")
        free = handle.memory_total - handle.memory_used
        return SimpleNamespace(total=handle.memory_total, used=handle.memory_used, free=free)

    def nvmlDeviceGetPowerUsage(self, handle: FakeGpu | FakeMig) -> int:
        self._check(handle, "nvmlDeviceGetPowerUsage")
        assert isinstance(handle, FakeGpu)
        return handle.power_mw

    def nvmlDeviceGetTemperature(self, handle: FakeGpu | FakeMig, sensor: int) -> int:
        self._check(handle, "nvmlDeviceGetTemperature")
        assert isinstance(handle, FakeGpu) and sensor == pynvml.NVML_TEMPERATURE_GPU
        return handle.temperature

    def nvmlDeviceGetComputeRunningProcesses(self, handle: FakeGpu | FakeMig) -> list[Any]:
        self._check(handle, "nvmlDeviceGetComputeRunningProcesses")
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in handle.pids]

    def nvmlDeviceGetMigMode(self, handle: FakeGpu) -> list[int]:
        self._check(handle, "nvmlDeviceGetMigMode")
        if handle.mig_enabled is None:
            raise pynvml.NVMLError(NOT_SUPPORTED)
        mode = pynvml.NVML_DEVICE_MIG_ENABLE if handle.mig_enabled else pynvml.NVML_DEVICE_MIG_DISABLE
        return [mode, mode]

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: FakeGpu) -> int:
        self._check(handle, "nvmlDeviceGetMaxMigDeviceCount")
        return handle.mig_slots

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: FakeGpu, slot: int) -> FakeMig:
        self._check(handle, "nvmlDeviceGetMigDeviceHandleByIndex")
        if slot not in handle.migs:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        return handle.migs[slot]

    def nvmlDeviceGetGpuInstanceId(self, handle: FakeMig) -> int:
        self._check(handle, "nvmlDeviceGetGpuInstanceId")
        return handle.gpu_instance_id

    def nvmlDeviceGetAttributes(self, handle: FakeMig) -> Any:
        self._check(handle, "nvmlDeviceGetAttributes")
        return SimpleNamespace(gpuInstanceSliceCount=handle.slices, memorySizeMB=handle.memory_size_mb)
