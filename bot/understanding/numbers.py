"""Counts written the way people write them: digits, number words, "a", "a couple of", "a dozen".

One regex fragment (`NUMBER`) and one reader (`read_number`) so every extractor (GPUs, nodes,
hours, replicas) accepts the same spellings. Word numbers go up to ninety-nine: nobody writes
"one hundred and twenty-eight GPUs" in words, and a bigger vocabulary only adds false matches.
"a few" and "several" are left out on purpose: they name no number.
"""

from __future__ import annotations

import re

from bot.understanding.lazy_re import lazy

_UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_PHRASES = {
    "a": 1,
    "an": 1,
    "a single": 1,
    "single": 1,
    "a couple of": 2,
    "a couple": 2,
    "couple of": 2,
    "a pair of": 2,
    "pair of": 2,
    "a dozen": 12,
    "dozen": 12,
    "half a dozen": 6,
}

_TENS_WORDS = "|".join(_TENS)
_UNIT_WORDS = "|".join(sorted(_UNITS, key=len, reverse=True))
_PHRASE_WORDS = "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in sorted(_PHRASES, key=len, reverse=True))

# Compound tens ("twenty-four"), single words, phrases; longest first so "a couple of" beats "a".
# "a" and "an" read as 1 ("an hour"), but standing alone in a sentence they state no number.
ARTICLES = frozenset({"a", "an"})
WORD_NUMBER = (
    rf"(?:(?:{_TENS_WORDS})(?:[\s-]+(?:one|two|three|four|five|six|seven|eight|nine))?"
    rf"|{_PHRASE_WORDS}"
    rf"|{_UNIT_WORDS})"
)
NUMBER = rf"(?:\d+(?:\.\d+)?|{WORD_NUMBER})"
# Only whole counts: GPUs, nodes, CPUs, replicas are never fractional.
WHOLE_NUMBER = rf"(?:\d+|{WORD_NUMBER})"

_LARGEST = 1e12
_NUMBER_ONLY = lazy(rf"^{NUMBER}$", re.IGNORECASE)
_SPACES = lazy(r"[\s-]+")


def read_number(text: str) -> float | None:
    """The value of one number as written ("4", "1.5", "twenty-four", "a couple of"), else None."""
    cleaned = _SPACES.sub(" ", text.strip().lower())
    if not cleaned or not _NUMBER_ONLY.match(cleaned):
        return None
    if cleaned[0].isdigit():
        # A count too long to be real still reads as too big (and is refused later), never as inf.
        return min(float(cleaned), _LARGEST)
    if cleaned in _PHRASES:
        return float(_PHRASES[cleaned])
    if cleaned in _UNITS:
        return float(_UNITS[cleaned])
    tens, _, unit = cleaned.partition(" ")
    if tens in _TENS and (not unit or unit in _UNITS):
        return float(_TENS[tens] + (_UNITS[unit] if unit else 0))
    return None


def read_count(text: str) -> int | None:
    """A whole count, or None when the text is not one (a fraction is not a count of GPUs)."""
    value = read_number(text)
    if value is None or value != int(value):
        return None
    return int(value)
