"""A pending job's priority and its factors from ONE `sprio` call, in plain words.

`sprio -h -o FORMAT -j IDS` (sprio(1), 22.05) prints one line per job and partition with the
weighted factors that add up to its priority (multifactor plugin): `%Y` priority, `%A` age,
`%F` fair share, `%J` job size, `%P` partition, `%Q` QOS, `%B` association, and `%f` the
normalized fair-share factor (0..1). The fields are joined with `|` here so that no width or
padding matters; `%T` (TRES, text) is not asked for. With priority/basic sprio answers
"Unable to find jobs for specified options" or "sprio: error: ... PriorityType", and
the reading says the factors are not available.
Which factor explains the gap to the job ahead is the one with the largest weighted difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from backends.errors import ConciergeError
from backends.slurm.json_formats import SlurmJob
from backends.slurm.runner import CommandRunner

SPRIO_FORMAT = "%i|%r|%u|%Y|%A|%F|%f|%J|%P|%Q|%B"
MAX_AHEAD = 20  # jobs ahead asked about with it: the first in line is among the highest

# Weighted factors, in the order they are told, with the words for them.
FACTORS: tuple[tuple[str, str], ...] = (
    ("fair_share", "fair share"),
    ("age", "age"),
    ("job_size", "job size"),
    ("partition", "partition"),
    ("qos", "QOS"),
    ("association", "association"),
)


@dataclass(frozen=True)
class PriorityFactors:
    job_id: str
    partition: str
    user: str
    priority: float
    age: float
    fair_share: float
    fair_share_factor: float  # normalized, 0..1
    job_size: float
    partition_factor: float
    qos: float
    association: float

    def weighted(self, name: str) -> float:
        return self.partition_factor if name == "partition" else float(getattr(self, name))


def sprio_argv(job_ids: Sequence[str]) -> list[str]:
    return ["sprio", "--noheader", "-o", SPRIO_FORMAT, f"-j{','.join(job_ids)}"]


def _number(text: str) -> float:
    try:
        return float(text.strip() or 0)
    except ValueError:
        return 0.0


def parse_sprio(text: str) -> list[PriorityFactors]:
    rows: list[PriorityFactors] = []
    for line in text.splitlines():
        parts = [part.strip() for part in line.split("|")]
        if len(parts) != 11 or not parts[0].split("_")[0].isdigit():
            continue
        job_id, partition, user, *numbers = parts
        values = [_number(n) for n in numbers]
        rows.append(
            PriorityFactors(
                job_id=job_id,
                partition=partition,
                user=user,
                priority=values[0],
                age=values[1],
                fair_share=values[2],
                fair_share_factor=values[3],
                job_size=values[4],
                partition_factor=values[5],
                qos=values[6],
                association=values[7],
            )
        )
    return rows


def _whole(value: float) -> str:
    return f"{value:.0f}"


def _fair_share_words(factor: float) -> str:
    return (
        f"the fair-share factor of its account and user is {factor:.2f} of 1 (1 when they have used "
        "none of their share lately; the more they used, the lower)"
    )


def describe_priority(job: PriorityFactors, ahead: Sequence[PriorityFactors]) -> str:
    """The job's priority as the sum of its factors, and what puts the first job ahead of it."""
    parts = [f"{words} {_whole(job.weighted(name))}" for name, words in FACTORS if job.weighted(name)]
    made_of = f" = {' + '.join(parts)}" if parts else ""
    sentence = f"Its priority is {_whole(job.priority)}{made_of}; {_fair_share_words(job.fair_share_factor)}."
    if not ahead:
        return sentence
    first = max(ahead, key=lambda row: row.priority)
    gaps = sorted(
        ((first.weighted(name) - job.weighted(name), words, name) for name, words in FACTORS),
        reverse=True,
    )
    gap, words, name = gaps[0]
    whose = f"job {first.job_id} ({first.user})"
    sentence += f" First in line is {whose} with {_whole(first.priority)}"
    if gap > 0:
        sentence += (
            f", ahead mostly by {words} ({_whole(first.weighted(name))} against {_whole(job.weighted(name))})"
        )
        if name == "fair_share":
            sentence += (
                f": its fair-share factor is {first.fair_share_factor:.2f}, yours {job.fair_share_factor:.2f}"
            )
        elif name == "age":
            sentence += ": it has waited longer"
    return sentence + "."


def priority_words(runner: CommandRunner, job: SlurmJob, ahead: Sequence[SlurmJob]) -> str:
    """The sentence on a Priority-pending job's factors, or why they could not be read."""
    first = sorted(ahead, key=lambda other: -(other.priority or 0))[:MAX_AHEAD]
    try:
        rows = parse_sprio(runner.run(sprio_argv([job.job_id, *(other.job_id for other in first)])))
    except ConciergeError as e:
        return f"The priority factors could not be read ({e.message})."
    own = next((row for row in rows if row.job_id == job.job_id and row.partition == job.partition), None)
    own = own or next((row for row in rows if row.job_id == job.job_id), None)
    if own is None:
        return (
            "Slurm gave no priority factors for it (they exist only with PriorityType=priority/multifactor)."
        )
    return describe_priority(own, [row for row in rows if row.job_id != job.job_id])
