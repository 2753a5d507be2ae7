"""Memory sizes read as whole gigabytes (bot/understanding/sizes.py)."""

from __future__ import annotations

import pytest

from bot.understanding.sizes import parse_memory_gb


@pytest.mark.parametrize(
    ("text", "gigabytes"),
    [
        ("64G", 64),
        ("48Gi", 48),
        ("48GiB", 48),
        ("32GB", 32),
        ("16 gb", 16),
        ("512MB", 1),  # rounded up: less memory than asked kills a job
        ("1536MiB", 2),
        ("1.5TB", 1536),
        ("2T", 2048),
        ("0.5GB", 1),
    ],
)
def test_units(text: str, gigabytes: int) -> None:
    assert parse_memory_gb(text) == gigabytes


@pytest.mark.parametrize("text", ["90m", "64", "GB", "64 GBs of", "4h"])
def test_not_a_size(text: str) -> None:
    assert parse_memory_gb(text) is None
