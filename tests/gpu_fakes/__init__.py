"""Fakes of the GPU telemetry systems: an NVML module object, dcgm-exporter and Prometheus over HTTP,
and the texts (dcgm-exporter fixtures, `scontrol show job -d`) the tests read.

The NVML fake raises nvidia-ml-py's real error classes, so the code under test catches exactly
what the real binding raises; the HTTP fakes speak the real wire formats on 127.0.0.1.
"""
