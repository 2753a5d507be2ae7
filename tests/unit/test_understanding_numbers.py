"""Counts as people write them (bot/understanding/numbers.py)."""

from __future__ import annotations

import re

import pytest

from bot.understanding.numbers import NUMBER, read_count, read_number


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4", 4),
        ("1.5", 1.5),
        ("one", 1),
        ("a", 1),
        ("an", 1),
        ("a single", 1),
        ("eleven", 11),
        ("twenty", 20),
        ("twenty-four", 24),
        ("twenty four", 24),
        ("ninety", 90),
        ("a couple of", 2),
        ("a pair of", 2),
        ("a dozen", 12),
        ("half a dozen", 6),
        ("Twelve", 12),
    ],
)
def test_reads_digits_words_and_phrases(text: str, value: float) -> None:
    assert read_number(text) == value


@pytest.mark.parametrize("text", ["", "few", "several", "a few", "-3", "1e5", "twentyfour", "hundred"])
def test_words_that_name_no_number_are_not_read(text: str) -> None:
    assert read_number(text) is None


def test_a_count_must_be_whole() -> None:
    assert read_count("3") == 3
    assert read_count("1.5") is None


def test_an_absurdly_long_number_reads_as_large_not_infinite() -> None:
    value = read_count("9" * 400)
    assert value is not None and value >= 10**12


def test_the_pattern_prefers_the_longest_phrase() -> None:
    found = re.match(NUMBER, "seventeen", re.IGNORECASE)
    assert found is not None and found.group(0) == "seventeen"
    found = re.match(NUMBER, "a couple of gpus", re.IGNORECASE)
    assert found is not None and found.group(0) == "a couple of"
