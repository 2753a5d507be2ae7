"""GPU product names as GFD writes them, matched to the short types people ask for."""

from __future__ import annotations

import pytest

from backends.k8s.products import base_product, family_of, mig_profile_of, product_matches


@pytest.mark.parametrize(
    ("gpu_type", "product"),
    [
        ("a100", "A100-SXM4-40GB"),
        ("a100", "NVIDIA-A100-PCIE-40GB"),
        ("a100", "NVIDIA-A100-SXM4-80GB"),
        ("h100", "NVIDIA-H100-80GB-HBM3"),
        ("t4", "Tesla-T4"),
        ("l40s", "NVIDIA-L40S"),
        ("rtx6000ada", "NVIDIA-RTX-6000-Ada-Generation"),
        ("a6000", "NVIDIA-RTX-A6000"),
        ("A100", "nvidia-a100-sxm4-80gb"),
        ("t4", "Tesla-T4-SHARED"),
    ],
)
def test_a_type_matches_its_products(gpu_type: str, product: str) -> None:
    assert product_matches(gpu_type, product)


@pytest.mark.parametrize(
    ("gpu_type", "product"),
    [
        ("a10", "NVIDIA-A100-SXM4-80GB"),
        ("l4", "NVIDIA-L40S"),
        ("h100", "NVIDIA-H200"),
        ("a100", "NVIDIA-A10"),
        ("a100sxm", "NVIDIA-A100-SXM4-80GB"),
    ],
)
def test_a_type_never_matches_part_of_a_word(gpu_type: str, product: str) -> None:
    assert not product_matches(gpu_type, product)


@pytest.mark.parametrize(
    ("product", "family"),
    [
        ("NVIDIA-A100-SXM4-80GB", "a100"),
        ("A100-SXM4-40GB", "a100"),
        ("NVIDIA-H100-80GB-HBM3", "h100"),
        ("Tesla-T4", "t4"),
        ("Tesla-T4-SHARED", "t4"),
        ("NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", "a100"),
        ("NVIDIA-RTX-A6000", "a6000"),
        ("NVIDIA-RTX-6000-Ada-Generation", "rtx6000ada"),
        ("NVIDIA-GeForce-RTX-4090", "rtx4090"),
    ],
)
def test_the_family_is_what_people_call_it(product: str, family: str) -> None:
    assert family_of(product) == family


def test_suffixes_gfd_adds_are_read() -> None:
    assert mig_profile_of("NVIDIA-A100-SXM4-40GB-MIG-1g.5gb") == "1g.5gb"
    assert mig_profile_of("NVIDIA-A100-SXM4-40GB") is None
    assert base_product("NVIDIA-A100-SXM4-40GB-MIG-3g.20gb") == "NVIDIA-A100-SXM4-40GB"
    assert base_product("Tesla-T4-SHARED") == "Tesla-T4"
    assert family_of(None) is None
