"""GPU model aliases reduced to families (bot/understanding/gpu_models.py)."""

from __future__ import annotations

import pytest

from bot.understanding.gpu_models import KNOWN_GPU_TYPES, GpuModel, canonical_gpu_type, read_gpu_model


@pytest.mark.parametrize(
    ("text", "family"),
    [
        ("A100", "a100"),
        ("A100s", "a100"),
        ("a100's", "a100"),
        ("NVIDIA H100", "h100"),
        ("H100 SXM", "h100"),
        ("h100 pcie", "h100"),
        ("H200", "h200"),
        ("GH200", "gh200"),
        ("Tesla V100", "v100"),
        ("T4s", "t4"),
        ("L4", "l4"),
        ("L40", "l40"),
        ("L40S", "l40s"),
        ("A10", "a10"),
        ("A10G", "a10"),  # the AWS build of the A10
        ("A2", "a2"),
        ("RTX 6000 Ada", "rtx6000ada"),
        ("RTX 6000 Ada Generation", "rtx6000ada"),
        ("RTX A6000", "a6000"),
        ("Quadro RTX 6000", "rtx6000"),
        ("RTX 4090", "rtx4090"),
        ("B200", "b200"),
        ("GB200", "gb200"),
        ("MI300X", "mi300x"),
    ],
)
def test_aliases_become_the_family(text: str, family: str) -> None:
    assert canonical_gpu_type(text) == family


@pytest.mark.parametrize(
    ("text", "model"),
    [
        ("A100 80GB", GpuModel("a100", 80)),
        ("a100-80gb", GpuModel("a100", 80)),
        ("A100-SXM4-40GB", GpuModel("a100", 40)),
        ("NVIDIA-H100-80GB-HBM3", GpuModel("h100", 80)),
        ("H100 NVL 94GB", GpuModel("h100", 94)),
        ("V100 (32 GB)", GpuModel("v100", 32)),
        ("H100", GpuModel("h100", None)),
    ],
)
def test_memory_written_with_the_model_is_kept(text: str, model: GpuModel) -> None:
    assert read_gpu_model(text) == model


@pytest.mark.parametrize("text", ["4090", "a1000", "gpu", "h1000", "nvidia", "", "A100 and H100"])
def test_not_one_model(text: str) -> None:
    assert read_gpu_model(text) is None


def test_every_family_is_a_valid_gpu_type_for_a_request() -> None:
    from backends.types import GPU_TYPE_PATTERN

    assert all(GPU_TYPE_PATTERN.match(family) for family in KNOWN_GPU_TYPES)
