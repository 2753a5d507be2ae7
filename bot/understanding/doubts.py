"""What in a request the grammar must ask about instead of guessing: a choice between two values,
a number it could not place, a length of time with no length.

A choice ("2 or 4 A100s", "3 or maybe 6 hours", "4 hours, maybe 6", "2-4 GPUs", "between 2 and 4
hours", "A100 or H100") is found at the word that joins its two sides: each side is read with the
same readers as the request (`read_details`), a side that is a bare number borrowing the other
side's unit ("2 or 4 A100s" reads "2 A100s" and "4 A100s"), and the sides that give one field two
values are a choice only the person can make. Whichever value the readers met first would
otherwise be taken without a word.

A number left over once every reader has taken its phrase, while the request lacks a wall time or
its GPUs ("2 A100s for 4 Stunden"), carried something the grammar could not read. It is named back
with the word after it, never dropped: a quantity guessed wrong costs a person hours in the queue.
A number after a word of its own ("seed 42", "cuda 12.4") is that word's value, and one beside a
request that lacks nothing ("with 8 workers") is the person's own business. A job's
id after "job"/"#" is a reference, not a quantity, and is left alone (so is a "uid 0": the identity
is never read from words).

A word in another language ("für", "días": a letter outside ASCII) is named back the same way, with
the unread words beside it, where the request lacks a wall time or its GPUs ("Résumé training" beside
a whole request is a name).

A length with no length ("overnight", "a few hours", "for a while", "the weekend") is asked about:
the site's default wall time would be a guess made silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.understanding.details import read_details
from bot.understanding.lazy_re import lazy
from bot.understanding.numbers import ARTICLES, WORD_NUMBER, read_number
from bot.understanding.vocabulary import FILLER, JOINING_WORDS

# The fields a choice can be between: counts, sizes, lengths and the GPU model.
CHOICE_FIELDS = (
    "gpus",
    "gpu_type",
    "gpu_memory_gb",
    "mig_profile",
    "nodes",
    "replicas",
    "time_limit_minutes",
    "cpus",
    "memory_gb",
)
_JOIN_RE = lazy(
    r"\s*,?\s+(?:or(?:\s+(?:maybe|perhaps|possibly|even|else|rather|alternatively))?|maybe|perhaps|possibly"
    r"|alternatively)\s+"
    r"|(?<=\d)\s*(?:-|\u2013|/|\bto\b)\s*(?=\d)"  # "2-4 hours", "2 to 4 GPUs", "2/4 gpus"
    r"|(?<=\d)\s+and\s+(?=\d)",  # "between 2 and 4 hours"
    re.IGNORECASE,
)
_MAY_JOIN_RE = lazy(
    r"\bor\b|\bmaybe\b|\bperhaps\b|\bpossibly\b|\balternatively\b|\d\s*(?:[-\u2013/]|to|and)\s*\d", re.I
)
_BETWEEN_RE = lazy(r"\bbetween\s+[\d.]+$", re.IGNORECASE)
_SIDE_ENDS = ",;:()\n"
_SIDE_WORDS = 3
_NUMBER_RE = lazy(rf"^(?:\d+(?:\.\d+)?|{WORD_NUMBER})$", re.IGNORECASE)

# A number in what nobody read: digits, digits run into letters and digits again ("4h3"), or a
# number word.
_RUN_INTO_LETTERS_RE = lazy(r"\d+[a-z]+\d\w*", re.IGNORECASE)
_LEFT_NUMBER_RE = lazy(
    rf"(?<![\w.:/=#@-])(?P<number>\d+(?:[.,]\d+)*|{_RUN_INTO_LETTERS_RE.pattern}|{WORD_NUMBER})"
    r"(?![\w:/@-]|[.,]\d)",
    re.IGNORECASE,
)
# A job's id is a reference; a user or group id is never taken from words (the identity comes from a
# verified source), so neither is a quantity to ask about.
_REFERENCE_BEFORE_RE = lazy(
    r"(?:\bjobs?|\bids?|\bnumber|\bno\.?|#|\bpid|\bport|\buid|\bgid|\buser\s+id)\s*[:#=]?\s*$", re.IGNORECASE
)
_WORD_RE = lazy(r"[^\W\d_][\w'-]*", re.UNICODE)

_VAGUE_LENGTH_RE = lazy(
    r"\b(?:overnight|over\s+night|all\s+(?:day|night|week(?:end)?)|(?:a\s+)?few\s+(?:more\s+)?(?:minutes|hours|days|weeks)"
    r"|several\s+(?:minutes|hours|days|weeks)|many\s+(?:hours|days)|some\s+(?:hours|days)|(?:a\s+)?(?:little\s+)?while"
    r"|(?:over\s+)?the\s+weekend|as\s+long\s+as\s+(?:possible|needed|it\s+takes|you\s+can)|indefinitely|forever"
    r"|a\s+long\s+time|(?:a\s+)?couple\s+(?:of\s+)?(?:days|hours)\s+or\s+so"
    r"|(?:the\s+)?rest\s+of\s+the\s+(?:day|night|week|month)|(?:a\s+)?(?:good\s+)?chunk\s+of\s+the\s+day"
    r"|(?:for|through|over)\s+(?:the\s+)?(?:whole\s+|entire\s+)?(?:morning|afternoon|evening|night|day|week)"
    r"|for\s+(?:tonight|today|this\s+(?:morning|afternoon|evening|week)))\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Choice:
    """The phrase that offers two alternatives, and the two values it gives each field it names."""

    phrase: str
    values: dict[str, tuple[Any, Any]]


def _side_tokens(text: str, *, before: bool) -> list[str]:
    cut = (
        max(text.rfind(c) for c in _SIDE_ENDS) + 1
        if before
        else min((i for i in (text.find(c) for c in _SIDE_ENDS) if i >= 0), default=len(text))
    )
    words = (text[cut:] if before else text[:cut]).split()
    return words[-_SIDE_WORDS:] if before else words[:_SIDE_WORDS]


def _is_number(token: str) -> bool:
    return bool(_NUMBER_RE.match(token.strip(".,;:!?"))) and token.lower() not in ARTICLES


def _read(words: list[str]) -> dict[str, Any]:
    fields = read_details(" ".join(words)).fields
    return {name: fields[name] for name in CHOICE_FIELDS if name in fields}


_GLUED_UNIT_RE = lazy(r"^\d+(?:\.\d+)?(?P<unit>[a-z]+)$", re.IGNORECASE)


def _sides(left: list[str], right: list[str]) -> tuple[list[str], list[str], list[str]]:
    """Each side as a phrase of its own (a bare number takes the unit of the other side), and the
    words of the left side that belong to the choice."""
    if left and _is_number(left[-1]) and right:
        glued = _GLUED_UNIT_RE.match(right[0])
        if _is_number(right[0]):
            return [left[-1], *right[1:]], right, left[-1:]  # "2 or 4 A100s": "2 A100s"
        if glued:
            return [left[-1] + glued.group("unit"), *right[1:]], right, left[-1:]  # "64 or 128GB"
    if right and _is_number(right[0]) and not _read(right):
        number_at = next((i for i in range(len(left) - 1, -1, -1) if read_number(left[i]) is not None), None)
        if number_at is not None:  # "4 hours, maybe 6": "6 hours"
            return left, [right[0], *left[number_at + 1 :]], left[number_at:]
    return left, right, left


def _reads(left: list[str], right: list[str], wanted: dict[str, Any]) -> bool:
    """Whether these words of the right side already give it the values wanted."""
    found = _read(_sides(left, right)[1])
    return all(found.get(name) == value for name, value in wanted.items())


def find_choices(text: str) -> list[Choice]:
    """Every phrase of `text` that gives a field two values joined as alternatives, in order."""
    if not _MAY_JOIN_RE.search(text):
        return []
    choices: list[Choice] = []
    for join in _JOIN_RE.finditer(text):
        before, after = text[: join.start()], text[join.end() :]
        if " and " in join.group(0) and not _BETWEEN_RE.search(before):
            continue
        left_words, right_words = _side_tokens(before, before=True), _side_tokens(after, before=False)
        left, right, shown = _sides(left_words, right_words)
        first, second = _read(left), _read(right)
        values = {
            name: (first[name], second[name])
            for name in first
            if name in second and first[name] != second[name]
        }
        if values:
            # Shown up to the word that gives the right side's value: "A100 or H100", not "… for 2".
            wanted = {name: second[name] for name in values}
            ends = range(1, len(right_words) + 1)
            upto = next((n for n in ends if _reads(left_words, right_words[:n], wanted)), len(right_words))
            words = f"{' '.join(shown)}{join.group(0)}{' '.join(right_words[:upto])}".split()
            choices.append(Choice(" ".join(words).strip(" ,;:"), values))
    return choices


def unread_quantity(leftover: str, *, lacking: bool) -> str | None:
    """A number nobody read that may be what the request lacks (`lacking`: no wall time or no GPUs
    were read), with the word after it ("4 Stunden"); or one run into letters ("4h3"); or None.

    A number after a word of its own ("seed 42", "cuda 12.4", "batch size 64") is that word's value,
    and a version ("0.6.3") is a name: neither is a quantity of the request's."""
    for found in _LEFT_NUMBER_RE.finditer(leftover):
        number = found.group("number")
        if _REFERENCE_BEFORE_RE.search(leftover[: found.start()]):
            continue
        if _RUN_INTO_LETTERS_RE.fullmatch(number):
            return number
        before_words = _WORD_RE.findall(leftover[: found.start()])
        labelled = bool(before_words) and before_words[-1].lower() not in FILLER
        if not lacking or labelled or number.count(".") > 1:
            continue
        after = _WORD_RE.match(leftover[found.end() :].lstrip())
        next_word = after.group(0) if after and leftover[found.end() :][:1].isspace() else None
        if not number[0].isdigit() and (
            next_word is None
            or next_word.lower() in FILLER
            or number.lower() in ARTICLES
            or read_number(number) is None
        ):
            continue  # "one" alone, "a": no quantity that went unread
        if next_word is not None and next_word.lower() not in JOINING_WORDS:
            return f"{number} {next_word}"  # "4 Stunden", and "4 gpus" when the GPUs were read elsewhere
        return number
    return None


_FOREIGN_WORD_RE = lazy(r"[^\W\d_]*[^\x00-\x7f\W][^\W\d_]*", re.UNICODE)
_WORD_RUN = 3


def foreign_words(leftover: str) -> str | None:
    """Words nobody read in another language than the grammar's ("für vier Stunden"), or None.

    A word with a letter outside ASCII is none the grammar knows; it is named with the unread
    words next to it, since those carry its meaning too."""
    found = _FOREIGN_WORD_RE.search(leftover)
    if found is None:
        return None
    before = leftover[: found.start()].split()
    after = leftover[found.end() :].split()
    run = [*before[-1:], found.group(0), *after[: _WORD_RUN - 1]]
    return " ".join(word.strip(",;:.!?") for word in run if word.strip(",;:.!?"))


def vague_length(text: str) -> str | None:
    """A phrase that speaks of how long without saying it ("overnight", "a few hours"), or None."""
    found = _VAGUE_LENGTH_RE.search(text)
    return " ".join(found.group(0).split()) if found else None
