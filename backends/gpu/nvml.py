"""Reading the GPUs of this host through NVML (nvidia-ml-py, imported as `pynvml`).

Why it is built this way:
- The NVML module is a constructor argument, not an import: the agent passes the real `pynvml`,
  tests pass a fake object with the same function names and error classes. Nothing here imports
  `pynvml`, so this module (and `concierge agent --check`) loads on machines without a driver.
- `nvmlInit` runs once per sampler, not once per sample (it costs milliseconds and, on some
  drivers, seconds); `close()` shuts NVML down. When init fails (no library, no driver, no
  permission) the reason is kept and shown as `NvmlUnavailable`; init is tried again only after
  `init_retry_s`, so an agent started before the driver loaded recovers without hammering it.
- EVERY field read may raise `NVMLError_NotSupported` (utilisation on MIG-enabled GPUs, power on
  some boards) or another `NVMLError` (GPU lost, no permission): that field becomes None and the
  reading goes on. A missing value is never recorded as 0 (see samples.py).
- MIG: a MIG-enabled GPU gives one sample for the whole board (power, temperature, memory; no
  utilisation, which NVML does not report with MIG on) and one per MIG device, whose `gpu` is
  "<index>/<GPU instance id>" and whose `mig_profile` ("1g.10gb") comes from the device name
  ("NVIDIA H100 80GB HBM3 MIG 1g.10gb"), or else from its attributes (slices, memory).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from backends.errors import BackendUnavailable
from backends.gpu.samples import GpuSample

T = TypeVar("T")

_MIB = 1024 * 1024
_MIG_PROFILE = re.compile(r"(\d+g\.\d+gb(?:\+[a-z0-9]+)*)", re.IGNORECASE)
_MIG_ENABLED = 1  # NVML_DEVICE_MIG_ENABLE
_TEMPERATURE_GPU = 0  # NVML_TEMPERATURE_GPU

# What to do about each init failure, keyed by the pynvml error class name.
_INIT_HINTS = {
    "NVMLError_LibraryNotFound": "libnvidia-ml.so is not installed on this host (no NVIDIA driver); "
    "install the NVIDIA driver or run the agent on a GPU node",
    "NVMLError_DriverNotLoaded": "the NVIDIA kernel driver is not loaded (nvidia-smi fails too); "
    "load it (modprobe nvidia) or check dmesg for why it failed",
    "NVMLError_NoPermission": "this user may not open /dev/nvidia*; run the agent as a user "
    "with access to the GPU devices",
    "NVMLError_LibRmVersionMismatch": "the NVML library and the loaded kernel driver are different "
    "versions (a driver upgrade without a reboot); reboot or reload the driver",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


class NvmlUnavailable(BackendUnavailable):
    """NVML cannot be used on this host; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class NvmlStatus:
    """What `concierge agent --check` shows about NVML on this host."""

    available: bool
    reason: str | None = None  # why not, when not available
    driver_version: str | None = None
    nvml_version: str | None = None
    cuda_driver_version: str | None = None  # "12.4"
    device_count: int | None = None

    def describe(self) -> str:
        if not self.available:
            return f"NVML unavailable: {self.reason}"
        parts = [
            f"NVML {self.nvml_version or '?'}",
            f"driver {self.driver_version or '?'}",
            f"CUDA {self.cuda_driver_version or '?'}",
            f"{self.device_count if self.device_count is not None else '?'} GPU(s)",
        ]
        return ", ".join(parts)


def _text(value: object) -> str:
    """NVML strings come back as str from nvidia-ml-py ≥ 11.5 and as bytes from older bindings."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def mig_profile_from_name(name: str) -> str | None:
    """ "NVIDIA A100-SXM4-40GB MIG 1g.5gb" → "1g.5gb"; None when the name carries no profile."""
    found = _MIG_PROFILE.search(name)
    return found.group(1).lower() if found else None


def _profile_from_attributes(attributes: Any) -> str | None:
    """`<slices>g.<memory GB>gb` from nvmlDeviceGetAttributes: a fallback when the name has none.

    NVML reports the instance's usable memory (a 1g.10gb instance reports about 9.75 GiB), so
    the GB figure is rounded; the name is preferred because it is exact."""
    slices = getattr(attributes, "gpuInstanceSliceCount", None)
    memory_mb = getattr(attributes, "memorySizeMB", None)
    if not slices or not memory_mb:
        return None
    return f"{int(slices)}g.{round(int(memory_mb) / 1024)}gb"


class NvmlSampler:
    """Samples every GPU (and MIG device) of one host through an NVML module."""

    def __init__(
        self,
        nvml_module: Any,  # pynvml, or a fake with the same names: untyped by nature
        host: str,
        *,
        clock: Callable[[], datetime] = utc_now,
        init_retry_s: float = 60.0,
    ) -> None:
        self._nvml = nvml_module
        self._host = host
        self._clock = clock
        self._init_retry_s = init_retry_s
        self._initialised = False
        self._failure: str | None = None
        self._failed_at: datetime | None = None

    # -- lifetime ---------------------------------------------------------------------------

    def _error_class(self) -> type[BaseException]:
        error: type[BaseException] = getattr(self._nvml, "NVMLError", Exception)
        return error

    def start(self) -> None:
        """Initialise NVML once; raises NvmlUnavailable (with the reason) when it cannot be used."""
        if self._initialised:
            return
        now = self._clock()
        if (
            self._failure is not None
            and self._failed_at is not None
            and (now - self._failed_at).total_seconds() < self._init_retry_s
        ):
            raise NvmlUnavailable(f"NVML unavailable: {self._failure}")
        try:
            self._nvml.nvmlInit()
        except (self._error_class(), OSError) as e:
            self._failure = self._explain_init_failure(e)
            self._failed_at = now
            raise NvmlUnavailable(f"NVML unavailable: {self._failure}") from e
        self._initialised = True
        self._failure = None
        self._failed_at = None

    @staticmethod
    def _explain_init_failure(error: BaseException) -> str:
        name = type(error).__name__
        detail = str(error) or name
        hint = _INIT_HINTS.get(name)
        return f"{detail} ({hint})" if hint else detail

    def close(self) -> None:
        """Shut NVML down if this sampler started it; safe to call twice."""
        if not self._initialised:
            return
        self._initialised = False
        try:
            self._nvml.nvmlShutdown()
        except self._error_class():
            pass  # the process is letting go of NVML anyway

    def __enter__(self) -> NvmlSampler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------------

    def _read(self, call: Callable[..., T], *arguments: Any) -> T | None:
        """One NVML call; None when the GPU does not support it or NVML refuses (never 0)."""
        try:
            return call(*arguments)
        except self._error_class():
            return None

    def status(self) -> NvmlStatus:
        """Driver, NVML and CUDA versions and the GPU count, or why NVML is unavailable."""
        try:
            self.start()
        except NvmlUnavailable as e:
            return NvmlStatus(available=False, reason=self._failure or e.message)
        nvml = self._nvml
        cuda = self._read(nvml.nvmlSystemGetCudaDriverVersion)
        return NvmlStatus(
            available=True,
            driver_version=_optional_text(self._read(nvml.nvmlSystemGetDriverVersion)),
            nvml_version=_optional_text(self._read(nvml.nvmlSystemGetNVMLVersion)),
            cuda_driver_version=f"{int(cuda) // 1000}.{int(cuda) % 1000 // 10}" if cuda else None,
            device_count=self._read(nvml.nvmlDeviceGetCount),
        )

    def sample(self) -> list[GpuSample]:
        """One reading of every GPU and MIG device; raises NvmlUnavailable when NVML cannot start."""
        self.start()
        nvml = self._nvml
        at = self._clock()
        try:
            count = int(nvml.nvmlDeviceGetCount())
        except self._error_class() as e:
            raise NvmlUnavailable(
                f"NVML unavailable: it could not count the GPUs ({e}); check `nvidia-smi` on {self._host}"
            ) from e
        samples: list[GpuSample] = []
        for index in range(count):
            handle = self._read(nvml.nvmlDeviceGetHandleByIndex, index)
            if handle is None:
                # The GPU is there (counted) but unreadable, e.g. fallen off the bus: say so.
                samples.append(GpuSample(at=at, host=self._host, gpu=str(index), source="nvml"))
                continue
            mig_enabled = self._mig_enabled(handle)
            samples.append(self._device_sample(at, str(index), handle, mig_profile=None))
            if mig_enabled:
                samples.extend(self._mig_samples(at, index, handle))
        return samples

    def _mig_enabled(self, handle: Any) -> bool:
        modes = self._read(self._nvml.nvmlDeviceGetMigMode, handle)
        if not modes:
            return False
        current = modes[0] if isinstance(modes, list | tuple) else modes
        enabled = getattr(self._nvml, "NVML_DEVICE_MIG_ENABLE", _MIG_ENABLED)
        return bool(current == enabled)

    def _mig_samples(self, at: datetime, index: int, handle: Any) -> list[GpuSample]:
        nvml = self._nvml
        slots = self._read(nvml.nvmlDeviceGetMaxMigDeviceCount, handle) or 0
        samples: list[GpuSample] = []
        for slot in range(int(slots)):
            # Empty slots answer NVMLError_NotFound: skipped.
            mig = self._read(nvml.nvmlDeviceGetMigDeviceHandleByIndex, handle, slot)
            if mig is None:
                continue
            instance = self._read(nvml.nvmlDeviceGetGpuInstanceId, mig)
            gpu = f"{index}/{instance if instance is not None else f'slot{slot}'}"
            name = _optional_text(self._read(nvml.nvmlDeviceGetName, mig))
            profile = mig_profile_from_name(name) if name else None
            if profile is None:
                attributes = self._read(nvml.nvmlDeviceGetAttributes, mig)
                profile = _profile_from_attributes(attributes) if attributes is not None else None
            samples.append(self._device_sample(at, gpu, mig, mig_profile=profile, name=name))
        return samples

    def _device_sample(
        self,
        at: datetime,
        gpu: str,
        handle: Any,
        *,
        mig_profile: str | None,
        name: str | None = None,
    ) -> GpuSample:
        nvml = self._nvml
        if name is None:
            name = _optional_text(self._read(nvml.nvmlDeviceGetName, handle))
        utilisation = self._read(nvml.nvmlDeviceGetUtilizationRates, handle)
        memory = self._read(nvml.nvmlDeviceGetMemoryInfo, handle)
        power_mw = self._read(nvml.nvmlDeviceGetPowerUsage, handle)
        sensor = getattr(nvml, "NVML_TEMPERATURE_GPU", _TEMPERATURE_GPU)
        temperature = self._read(nvml.nvmlDeviceGetTemperature, handle, sensor)
        processes = self._read(nvml.nvmlDeviceGetComputeRunningProcesses, handle) or []
        pids: list[int] = []
        for process in processes:
            pid = getattr(process, "pid", None)
            if isinstance(pid, int) and pid not in pids:
                pids.append(pid)
        return GpuSample(
            at=at,
            host=self._host,
            gpu=gpu,
            source="nvml",
            uuid=_optional_text(self._read(nvml.nvmlDeviceGetUUID, handle)),
            model=name,
            utilization_pct=_number(getattr(utilisation, "gpu", None)),
            memory_used_mib=_scaled(getattr(memory, "used", None), _MIB),
            memory_total_mib=_scaled(getattr(memory, "total", None), _MIB),
            power_w=_scaled(power_mw, 1000),
            temperature_c=_number(temperature),
            mig_profile=mig_profile,
            pids=tuple(pids),
        )


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _scaled(value: object, divisor: int) -> float | None:
    number = _number(value)
    return None if number is None else number / divisor


def load_pynvml() -> Any:
    """The real NVML binding, for the agent and scripts; NvmlUnavailable if nvidia-ml-py is missing."""
    try:
        import pynvml  # type: ignore[import-untyped]
    except ImportError as e:
        raise NvmlUnavailable(
            "NVML unavailable: the Python package nvidia-ml-py (import pynvml) is not installed; "
            "pip install nvidia-ml-py"
        ) from e
    return pynvml
