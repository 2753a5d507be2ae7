"""NvmlSampler over a fake NVML module (tests/gpu_fakes/nvml.py) and the real binding without a driver."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pynvml  # type: ignore[import-untyped]
import pytest

from backends.gpu.nvml import NvmlSampler, NvmlStatus, NvmlUnavailable, mig_profile_from_name
from backends.gpu.samples import GpuSample
from tests.gpu_fakes.nvml import GIB, MIB, NOT_SUPPORTED, FakeMig, FakeNvml, h100

T0 = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_every_field_of_every_gpu_in_our_units() -> None:
    nvml = FakeNvml([h100(0), h100(1, utilization=0, memory_used=0, pids=())])
    busy = GpuSample(
        at=T0,
        host="gpu01",
        gpu="0",
        source="nvml",
        uuid="GPU-5c7a3b1e-0000-4000-8000-000000000000",
        model="NVIDIA H100 80GB HBM3",
        utilization_pct=37.0,
        memory_used_mib=10240.0,
        memory_total_mib=81559.0,
        power_w=71.234,
        temperature_c=41.0,
        pids=(1234, 5678),
    )
    idle = replace(
        busy,
        gpu="1",
        uuid="GPU-5c7a3b1e-0000-4000-8000-000000000001",
        utilization_pct=0.0,
        memory_used_mib=0.0,
        pids=(),
    )
    assert NvmlSampler(nvml, "gpu01", clock=Clock()).sample() == [busy, idle]


def test_a_field_that_raises_becomes_none_and_the_rest_is_read() -> None:
    errors = {
        "nvmlDeviceGetPowerUsage": NOT_SUPPORTED,
        "nvmlDeviceGetTemperature": NOT_SUPPORTED,
        "nvmlDeviceGetMemoryInfo": pynvml.NVML_ERROR_GPU_IS_LOST,
        "nvmlDeviceGetComputeRunningProcesses": pynvml.NVML_ERROR_NO_PERMISSION,
    }
    nvml = FakeNvml([h100(0, errors=errors), h100(1)])
    first, second = NvmlSampler(nvml, "gpu01", clock=Clock()).sample()
    assert [first.power_w, first.temperature_c, first.memory_used_mib, first.memory_total_mib] == [None] * 4
    assert first.pids == ()
    assert (first.utilization_pct, first.uuid, first.model) == (37.0, h100(0).uuid, "NVIDIA H100 80GB HBM3")
    assert (second.power_w, second.temperature_c) == (71.234, 41.0)


def test_every_field_unsupported_still_gives_a_sample_of_unknowns() -> None:
    every = [
        "nvmlDeviceGetName",
        "nvmlDeviceGetUUID",
        "nvmlDeviceGetUtilizationRates",
        "nvmlDeviceGetMemoryInfo",
        "nvmlDeviceGetPowerUsage",
        "nvmlDeviceGetTemperature",
        "nvmlDeviceGetComputeRunningProcesses",
        "nvmlDeviceGetMigMode",
    ]
    nvml = FakeNvml([h100(0, errors=dict.fromkeys(every, NOT_SUPPORTED))])
    assert NvmlSampler(nvml, "gpu01", clock=Clock()).sample() == [
        GpuSample(at=T0, host="gpu01", gpu="0", source="nvml")
    ]


def test_a_gpu_whose_handle_cannot_be_had_is_listed_unknown() -> None:
    nvml = FakeNvml([h100(0), h100(1, errors={"nvmlDeviceGetHandleByIndex": pynvml.NVML_ERROR_GPU_IS_LOST})])
    samples = NvmlSampler(nvml, "gpu01", clock=Clock()).sample()
    assert [s.gpu for s in samples] == ["0", "1"]
    assert samples[1] == GpuSample(at=T0, host="gpu01", gpu="1", source="nvml")


def test_mig_devices_are_samples_of_their_own() -> None:
    board = h100(
        0,
        mig_enabled=True,
        memory_used=20 * GIB,
        pids=(),
        errors={"nvmlDeviceGetUtilizationRates": NOT_SUPPORTED},  # as NVML does with MIG on
        migs={
            0: FakeMig(
                gpu_instance_id=1,
                name="NVIDIA H100 80GB HBM3 MIG 3g.40gb",
                uuid="MIG-2201f4b1-a001-5ae1-87df-c6ef1d8adfab",
                memory_used=15 * GIB,
                memory_total=40448 * MIB,
                pids=((4242, None),),
                slices=3,
                memory_size_mb=40448,
            ),
            # slots 1 and 2 empty (NVML answers NotFound)
            3: FakeMig(
                gpu_instance_id=9,
                name="NVIDIA H100 80GB HBM3 MIG 1g.10gb",
                uuid="MIG-9a7c1d2e-b002-5ae1-87df-c6ef1d8adfab",
                memory_used=13 * MIB,
                memory_total=9856 * MIB,
            ),
            4: FakeMig(
                gpu_instance_id=5,
                name="NVIDIA H100 80GB HBM3",  # no profile in the name: from the attributes
                uuid="MIG-0b1c2d3e-c003-5ae1-87df-c6ef1d8adfab",
                memory_used=0,
                memory_total=19968 * MIB,
                slices=2,
                memory_size_mb=19968,
            ),
        },
    )
    samples = NvmlSampler(FakeNvml([board, h100(1)]), "gpu01", clock=Clock()).sample()
    assert [
        (s.gpu, s.mig_profile, s.utilization_pct, s.memory_used_mib, s.memory_total_mib) for s in samples
    ] == [
        ("0", None, None, 20480.0, 81559.0),
        ("0/1", "3g.40gb", None, 15360.0, 40448.0),
        ("0/9", "1g.10gb", None, 13.0, 9856.0),
        ("0/5", "2g.20gb", None, 0.0, 19968.0),
        ("1", None, 37.0, 10240.0, 81559.0),
    ]
    whole, big, small, _, _ = samples
    assert (whole.power_w, whole.temperature_c) == (71.234, 41.0)
    assert (big.power_w, big.temperature_c, big.pids) == (None, None, (4242,))
    assert small.uuid == "MIG-9a7c1d2e-b002-5ae1-87df-c6ef1d8adfab"
    assert small.model == "NVIDIA H100 80GB HBM3 MIG 1g.10gb"


def test_gpus_without_mig_support_give_no_mig_samples() -> None:
    nvml = FakeNvml([h100(0, mig_enabled=None)])
    assert [s.gpu for s in NvmlSampler(nvml, "gpu01", clock=Clock()).sample()] == ["0"]


def test_old_bindings_that_return_bytes_read_the_same() -> None:
    as_text = NvmlSampler(FakeNvml([h100(0)]), "gpu01", clock=Clock())
    as_bytes = NvmlSampler(FakeNvml([h100(0)], names_as_bytes=True), "gpu01", clock=Clock())
    assert as_bytes.sample() == as_text.sample()
    assert as_bytes.status() == as_text.status()


def test_nvml_starts_once_and_shuts_down_once() -> None:
    nvml = FakeNvml([h100(0)])
    with NvmlSampler(nvml, "gpu01", clock=Clock()) as sampler:
        sampler.sample()
        sampler.sample()
        sampler.status()
        assert (nvml.init_calls, nvml.shutdown_calls) == (1, 0)
    assert (nvml.init_calls, nvml.shutdown_calls) == (1, 1)
    sampler.close()
    assert nvml.shutdown_calls == 1


def test_status_reports_versions_and_count() -> None:
    status = NvmlSampler(FakeNvml([h100(0), h100(1)]), "gpu01", clock=Clock()).status()
    assert status == NvmlStatus(
        available=True,
        driver_version="550.54.15",
        nvml_version="12.550.54.15",
        cuda_driver_version="12.4",
        device_count=2,
    )
    assert status.describe() == "NVML 12.550.54.15, driver 550.54.15, CUDA 12.4, 2 GPU(s)"


def test_no_driver_is_a_clear_status_not_a_crash() -> None:
    clock = Clock()
    nvml = FakeNvml([h100(0)], init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
    sampler = NvmlSampler(nvml, "gpu01", clock=clock, init_retry_s=60)
    with pytest.raises(NvmlUnavailable) as raised:
        sampler.sample()
    assert raised.value.message == (
        "NVML unavailable: Driver Not Loaded (the NVIDIA kernel driver is not loaded (nvidia-smi "
        "fails too); load it (modprobe nvidia) or check dmesg for why it failed)"
    )
    assert raised.value.exit_code == 6  # a BackendUnavailable
    status = sampler.status()
    assert status.available is False
    assert status.describe() == raised.value.message
    assert nvml.init_calls == 1  # the status did not try again within init_retry_s

    clock.now += timedelta(seconds=61)
    nvml.init_error = None  # the driver got loaded
    assert [s.gpu for s in sampler.sample()] == ["0"]
    assert nvml.init_calls == 2
    sampler.close()
    assert nvml.shutdown_calls == 1


def test_no_library_names_the_fix() -> None:
    nvml = FakeNvml([], init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    status = NvmlSampler(nvml, "gpu01", clock=Clock()).status()
    assert status.reason == (
        "NVML Shared Library Not Found (libnvidia-ml.so is not installed on this host (no NVIDIA "
        "driver); install the NVIDIA driver or run the agent on a GPU node)"
    )


def test_the_real_binding_without_a_driver_degrades() -> None:
    sampler = NvmlSampler(pynvml, "here", clock=Clock())
    status = sampler.status()
    if status.available:
        sampler.close()
        pytest.skip("this machine has a working NVIDIA driver; the no-driver path cannot be seen here")
    assert status.reason is not None and status.reason.startswith("NVML Shared Library Not Found")
    with pytest.raises(NvmlUnavailable):
        sampler.sample()


@pytest.mark.parametrize(
    ("name", "profile"),
    [
        ("NVIDIA A100-SXM4-40GB MIG 1g.5gb", "1g.5gb"),
        ("NVIDIA H100 80GB HBM3 MIG 1g.10gb+me", "1g.10gb+me"),
        ("NVIDIA H200 MIG 7g.141gb", "7g.141gb"),
        ("NVIDIA H100 80GB HBM3", None),
    ],
)
def test_mig_profile_from_name(name: str, profile: str | None) -> None:
    assert mig_profile_from_name(name) == profile
