#!/usr/bin/env python3
"""Print one NVML reading of every GPU on this host as JSON, with NVML's status.

For checking the NVML sampler on real hardware (an H100, a MIG-enabled A100):

    python3 scripts/nvml_readings.py            # status + one sample per GPU / MIG device
    python3 scripts/nvml_readings.py --raw      # also every NVML call's raw answer or error class

Needs only the standard library, nvidia-ml-py (`import pynvml`) and backends/gpu/nvml.py from
this repository (found relative to this file, so no install is needed). Exit status: 0 with
readings, 3 when NVML is unavailable (the JSON then says why), 2 when pynvml is missing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import socket
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backends.gpu.nvml import NvmlSampler, NvmlUnavailable, load_pynvml

_RAW_CALLS = (
    "nvmlDeviceGetName",
    "nvmlDeviceGetUUID",
    "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetComputeRunningProcesses",
    "nvmlDeviceGetMigMode",
    "nvmlDeviceGetMaxMigDeviceCount",
)


def _plain(value: Any) -> Any:
    """ctypes structures and lists as JSON-able values."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    fields = getattr(value, "_fields_", None)
    if fields:
        return {name: _plain(getattr(value, name)) for name, *_ in fields}
    if hasattr(value, "__dict__") and not isinstance(value, int | float | str):
        return {k: _plain(v) for k, v in vars(value).items() if not k.startswith("_")}
    return value


def _call(nvml: Any, name: str, *arguments: Any) -> Any:
    try:
        return {"value": _plain(getattr(nvml, name)(*arguments))}
    except Exception as e:  # a diagnostic dump records every failure as data
        return {"error": type(e).__name__, "message": str(e)}


def _raw(nvml: Any) -> list[dict[str, Any]]:
    """Every call the sampler makes, answered by NVML directly, per GPU and MIG device."""
    devices: list[dict[str, Any]] = []
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        device: dict[str, Any] = {"index": index}
        for name in _RAW_CALLS:
            device[name] = _call(nvml, name, handle)
        device["nvmlDeviceGetTemperature"] = _call(nvml, "nvmlDeviceGetTemperature", handle, 0)
        migs = []
        count = device["nvmlDeviceGetMaxMigDeviceCount"].get("value") or 0
        mode = device["nvmlDeviceGetMigMode"].get("value")
        if mode and mode[0] == 1:
            for slot in range(count):
                try:
                    mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
                except nvml.NVMLError:
                    continue
                entry: dict[str, Any] = {"slot": slot}
                for name in (*_RAW_CALLS[:6], "nvmlDeviceGetGpuInstanceId", "nvmlDeviceGetAttributes"):
                    entry[name] = _call(nvml, name, mig)
                migs.append(entry)
        device["mig_devices"] = migs
        devices.append(device)
    return devices


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--raw", action="store_true", help="also dump every NVML call's raw answer")
    parser.add_argument(
        "--host", default=socket.gethostname(), help="host name to record (default: this one)"
    )
    arguments = parser.parse_args()
    try:
        nvml = load_pynvml()
    except NvmlUnavailable as e:
        print(json.dumps({"status": {"available": False, "reason": e.message}}, indent=2))
        return 2
    report: dict[str, Any] = {"host": arguments.host}
    with NvmlSampler(nvml, arguments.host) as sampler:
        status = sampler.status()
        report["status"] = dataclasses.asdict(status) | {"describe": status.describe()}
        if not status.available:
            print(json.dumps(report, indent=2))
            return 3
        samples = sampler.sample()
        report["samples"] = [dataclasses.asdict(sample) | {"at": sample.at.isoformat()} for sample in samples]
        if arguments.raw:
            report["raw"] = _raw(nvml)
    print(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
