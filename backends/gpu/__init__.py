"""GPU telemetry sources: NVML on a GPU node, dcgm-exporter endpoints and Prometheus.

`pynvml` (nvidia-ml-py) and the exposition-format parsing stay in this package; everything else
sees `GpuSample`s.
"""
