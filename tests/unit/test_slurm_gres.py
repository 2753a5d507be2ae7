"""GRES/TRES strings of every Slurm version we meet become the same GpuAsk tuples."""

from __future__ import annotations

import pytest

from backends.slurm.gres import gres_option, parse_gpus, total_gpus
from backends.slurm.hostlist import expand_hostlist
from backends.types import GpuAsk

A100_2 = (GpuAsk(count=2, gpu_type="a100"),)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gpu:a100:2", A100_2),
        ("gres:gpu:a100:2", A100_2),  # tres_per_node up to 23.02
        ("gres/gpu:a100:2", A100_2),  # tres_per_node from 23.11
        ("gpu:a100:2(IDX:0-1)", A100_2),
        ("gpu:a100:2(S:0)", A100_2),
        ("gpu:a100:2(S:0-1)", A100_2),
        ("gres/gpu:a100=2", A100_2),  # TRES form
        ("gres/gpu=2", (GpuAsk(count=2),)),
        ("gres:gpu:2", (GpuAsk(count=2),)),
        ("gpu:2", (GpuAsk(count=2),)),
        ("gpu", (GpuAsk(count=1),)),
        ("gpu:l40s", (GpuAsk(count=1, gpu_type="l40s"),)),
        ("gpu:l40s:0(IDX:N/A)", (GpuAsk(count=0, gpu_type="l40s"),)),
        ("(null)", ()),
        ("N/A", ()),
        ("", ()),
        (None, ()),
        (
            "gpu:a100:3(IDX:0,2-3),gpu:l40s:1(IDX:2)",
            (GpuAsk(count=3, gpu_type="a100"), GpuAsk(count=1, gpu_type="l40s")),
        ),
        (
            "gpu:a100:2,gpu:l40s:2",
            (GpuAsk(count=2, gpu_type="a100"), GpuAsk(count=2, gpu_type="l40s")),
        ),
        (
            "gpu:1g.10gb:7,gpu:3g.40gb:1",
            (GpuAsk(count=7, gpu_type="1g.10gb"), GpuAsk(count=1, gpu_type="3g.40gb")),
        ),
        ("tmpsize:7T,gpu:l40s:4(S:0-1)", (GpuAsk(count=4, gpu_type="l40s"),)),
        ("shard:64,gpu:h100:8", (GpuAsk(count=8, gpu_type="h100"),)),
        ("gpu:h100:8(IDX:0-7),shard:0(0/16,0/16)", (GpuAsk(count=8, gpu_type="h100"),)),
        ("bandwidth:lustre:no_consume:4G", ()),
        ("gpu:a100:no_consume:2", A100_2),
    ],
)
def test_gres_spellings(text: str | None, expected: tuple[GpuAsk, ...]) -> None:
    assert parse_gpus(text) == expected


def test_tres_alloc_string_counts_typed_gpus_once() -> None:
    # Allocation strings list the untyped total and each typed count; the total must not double.
    text = "cpu=2,mem=4G,node=1,billing=2,gres/gpu=3,gres/gpu:a100=2,gres/gpu:l40s=1"
    asks = parse_gpus(text)
    assert asks == (GpuAsk(count=2, gpu_type="a100"), GpuAsk(count=1, gpu_type="l40s"))
    assert total_gpus(asks) == 3


def test_untyped_tres_total_alone_is_kept() -> None:
    assert parse_gpus("cpu=1,mem=1000M,node=1,billing=1,gres/gpu=4") == (GpuAsk(count=4),)


def test_gres_option() -> None:
    assert gres_option(2, "a100") == "gpu:a100:2"
    assert gres_option(1, None) == "gpu:1"


@pytest.mark.parametrize(
    ("text", "hosts"),
    [
        ("vm", ["vm"]),
        ("gpu[01-03]", ["gpu01", "gpu02", "gpu03"]),
        ("gpu[08-10,12],login1", ["gpu08", "gpu09", "gpu10", "gpu12", "login1"]),
        ("r[1-2]n[1-2]", ["r1n1", "r1n2", "r2n1", "r2n2"]),
        ("", []),
        (None, []),
        ("(null)", []),
    ],
)
def test_hostlists(text: str | None, hosts: list[str]) -> None:
    assert expand_hostlist(text) == hosts
