"""Plain-text rendering: tables, plans, explanations, answers, as the terminal and Slack's code blocks show
them, and the text the model's phrasing falls back to (bot/llm/phrasing.py).

Outside every door, so each text door (the CLI, `chat`, Slack's commands and home tab) and the engine's
side reuse one renderer without importing another door; and so rendering a 10,000-row queue stays a tight
loop over strings (bench/queue_render.py measures it). Everything returned here is `printable`
(bot/terminal_text.py): request text, job names, reasons and errors come from people and other systems,
and their escape sequences are not passed on to the reader's terminal. A table is checked once, whole, and
its cells cleaned only when needed, so the columns still line up.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from backends.durations_text import clock
from backends.endings import ending_sentence, usage_sentence
from backends.types import GpuAsk, GpuPool, JobEnding, JobState, JobStatus, PendingReason, Plan
from bot.answers import (
    Answer,
    CancelAnswer,
    ConfirmCancel,
    FreeAnswer,
    JobReport,
    KeptAnswer,
    QueueAnswer,
    WhyAnswer,
)
from bot.job_output import OutputTail, ending_of
from bot.need_to_know import HIDDEN
from bot.terminal_text import is_printable, printable

if TYPE_CHECKING:  # the CLI imports this module at start-up: no engine or store for `--help`
    from bot.engine import Prepared
    from bot.store import RequestRecord


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    # A 10,000-row queue has 80,000 cells: widths come from zip and map(len), and every row goes
    # through one %-format string, so the per-cell work stays in C. The last column is not
    # padded, so lines carry no trailing blanks.
    widths = [max(map(len, column)) for column in zip(headers, *rows, strict=True)]
    line = "  ".join([*(f"%-{w}s" for w in widths[:-1]), "%s"])
    shown = "\n".join([line % tuple(headers), *map(line.__mod__, map(tuple, rows))])
    if is_printable(shown):
        return shown
    return table([printable(h) for h in headers], [[printable(cell) for cell in row] for row in rows])


def duration(seconds: int | None) -> str:
    return "-" if seconds is None else clock(int(seconds))


def when(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "-"
    return _when(moment, (now or datetime.now(UTC)).astimezone().date())


@lru_cache(maxsize=4096)  # a queue's expected starts cluster on a few backfill-plan instants
def _when(moment: datetime, today: date) -> str:
    local = moment.astimezone()
    return local.strftime("%H:%M") if local.date() == today else local.strftime("%Y-%m-%d %H:%M")


def gpus(status: JobStatus) -> str:
    return _gpus(status.gpus)


@lru_cache(maxsize=1024)  # a queue asks for a handful of GPU shapes
def _gpus(asks: tuple[GpuAsk, ...]) -> str:
    return ",".join(str(g) for g in asks) or "-"


QUEUE_HEADERS = ("ID", "NAME", "USER", "STATE", "REASON", "GPUS", "ELAPSED/LIMIT", "EXPECTED START")


def queue_rows(statuses: Sequence[JobStatus], now: datetime | None = None) -> list[tuple[str, ...]]:
    today = (now or datetime.now(UTC)).astimezone().date()
    return [
        (
            s.ref.job_id,
            s.name,
            s.user,
            s.state.upper(),  # a StrEnum: its value, upper-cased
            s.reason or "-",
            _gpus(s.gpus),
            _elapsed_and_limit(s.elapsed_seconds, s.time_limit_minutes),
            _when(s.expected_start, today)
            if s.expected_start is not None and s.state is JobState.PENDING
            else "-",
        )
        for s in statuses
    ]


@lru_cache(maxsize=8192)  # every pending job of a queue shares one of a few time limits
def _elapsed_and_limit(elapsed_seconds: int | None, limit_minutes: int | None) -> str:
    limit = duration(limit_minutes * 60) if limit_minutes is not None else "-"
    return f"{duration(elapsed_seconds)}/{limit}"


def queue(statuses: Sequence[JobStatus], now: datetime | None = None) -> str:
    if not statuses:
        return "No jobs in the queue."
    return table(QUEUE_HEADERS, queue_rows(statuses, now))


def pools(found: Sequence[GpuPool]) -> str:
    if not found:
        return "No GPUs found."
    rows = [
        (
            p.pool,
            p.gpu_type or "gpu",
            str(p.free),
            str(p.total),
            str(p.allocated),
            ", ".join(p.unavailable_nodes) or "-",
        )
        for p in found
    ]
    return table(("PARTITION", "TYPE", "FREE", "TOTAL", "IN USE", "UNAVAILABLE NODES"), rows)


def reasons(job_id: str, found: Sequence[PendingReason]) -> str:
    if not found:
        return printable(f"Job {job_id}: the scheduler gave no reason.")
    parts = []
    for r in found:
        # Backends usually name the job in their sentence already.
        text = r.sentence if job_id in r.sentence else f"Job {job_id}: {r.sentence}"
        if r.raw and r.raw not in text:
            text += f" (the scheduler says: {r.raw})"
        if r.expected_start:
            text += f"\nExpected start: {when(r.expected_start)}"
        if r.alternatives:
            text += "\nWhat would start sooner:\n" + "\n".join(f"  - {a}" for a in r.alternatives)
        parts.append(text)
    return printable("\n\n".join(parts))


def answer(found: Answer) -> str:
    """A question's answer as the terminal shows it (the CLI's verbs and `ask`, and `chat`)."""
    match found:
        case QueueAnswer(jobs=jobs):
            return queue(jobs)
        case JobReport():
            return job_report(found)
        case WhyAnswer(job=job, reasons=why, phrased=phrased):
            return printable(phrased) if phrased else reasons(job, why)
        case FreeAnswer(pools=found_pools):
            return pools(found_pools)
        case CancelAnswer(job=job):
            return printable(f"Cancelled job {job}.")
        case KeptAnswer(job=job):
            return printable(f"Job {job} was not cancelled.")
        case ConfirmCancel(confirm=confirm):
            return printable(confirm.explanation)


def prepared(p: Prepared) -> str:
    """The preview a person approves, the same at every door (Slack's blocks.preview lays out these
    parts): what runs in one line, the environment it runs in, the sbatch script or manifests, then
    the policy's verdict."""
    from bot.conversations.summary import summary  # the package holds the engine's side: not at start-up

    plan, decision = p.plan, p.decision
    lines = [f"Request {p.request_id[:8]} on {plan.backend}: {summary(plan)}"]
    if plan.environment:
        lines.append(f"The job {plan.environment}.")
    title, document = plan_document(plan)
    lines += [f"--- {title} ---", document, f"--- end of {title} ---"]  # YAML has its own ---
    lines.append(f"Policy: {decision.verdict.value}")
    lines.extend(f"  - {r}" for r in decision.reasons)
    lines.extend(f"Warning: {w}" for w in p.warnings)
    return printable("\n".join(lines))


def plan_document(plan: Plan) -> tuple[str, str]:
    """(title, text) of what the backend will run: its sbatch script, or its manifests dumped as YAML
    by the YAML library from the very objects it will create."""
    if plan.sbatch_script is not None:
        return "sbatch script", plan.sbatch_script.rstrip("\n")
    import yaml

    shown = yaml.safe_dump_all(list(plan.manifests), sort_keys=False, allow_unicode=True)
    return "Kubernetes manifests", shown.rstrip("\n")


def job_report(report: JobReport) -> str:
    lines = []
    s = report.status
    if s is not None:
        lines.append(
            f"Job {s.ref.job_id} ({s.name}) of {s.user}: {s.state.value.upper()}"
            + (f", reason {s.reason}" if s.reason and s.reason != "None" else "")
        )
        lines.append(f"  GPUs: {gpus(s)}   partition: {s.partition or '-'}   nodes: {s.nodes or '-'}")
        limit = duration(s.time_limit_minutes * 60) if s.time_limit_minutes is not None else "-"
        lines.append(f"  elapsed/limit: {duration(s.elapsed_seconds)}/{limit}")
        lines.append(f"  submitted: {when(s.submitted_at)}   started: {when(s.started_at)}")
    else:
        lines.append(f"Job {report.ref.job_id} is no longer in the scheduler's queue.")
    last = report.record.last_state if report.record is not None else None
    state = s.state if s is not None else last.state if last is not None else None
    if state is not None and state.is_final:
        lines.extend(f"  {line}" for line in ended(state, ending_of(s, report.record), report.output))
    r = report.record
    if r is not None:
        said = r.text if r.text == HIDDEN else repr(r.text)
        lines.append(f"Requested by {r.requester} via {r.door} at {when(r.created_at)}: {said}")
        lines.append(f"  outcome: {r.outcome}")
        for change in r.states:
            reason = f" ({change.reason})" if change.reason else ""
            lines.append(f"  {when(change.observed_at)}  {change.state}{reason}")
    else:
        lines.append("Not submitted through the concierge, so there is no recorded history.")
    return printable("\n".join(lines))


def ended(state: JobState, ending: JobEnding | None, output: OutputTail | None = None) -> list[str]:
    """How an ended job ended, as every door shows it (`status`, the Slack thread; `history` its first
    line): the exit code or signal and the scheduler's reason in words, the output file, and its last
    lines when the asker may read them (bot/job_output.py)."""
    lines = []
    said = ending_sentence(state, ending)
    if said:
        lines.append(f"It {said}.")
    if ending is not None and ending.output_path:
        lines.append(f"Output file: {ending.output_path}")
    if used := usage_sentence(ending):  # after the file: `history` keeps the first 300 characters
        lines.append(f"It {used} (from the cluster's accounting).")
    if output is not None and output.lines:
        lines.append("Its last lines:" if output.path else "Its last lines, as Kubernetes kept them:")
        lines.extend(f"  | {line}" for line in output.lines)
    elif output is not None and output.unread:
        lines.append(f"Its last lines are not shown: {output.unread}.")
    return lines


def history(records: Sequence[RequestRecord]) -> str:
    if not records:
        return "No requests recorded yet."
    rows = [
        (when(r.created_at), r.id[:8], r.requester, r.outcome, r.job_id or "-", _one_line(r.text, 60))
        for r in records
    ]
    lines = table(("WHEN", "REQUEST", "WHO", "OUTCOME", "JOB", "TEXT"), rows).splitlines()
    # The error, when there is one, goes under its request in full: it says what to do next.
    out = [lines[0]]
    for line, record in zip(lines[1:], records, strict=True):
        out.append(line)
        if record.error:
            out.append(f"    ↳ {_one_line(record.error, 300)}")
        last = record.last_state
        if last is not None and last.state.is_final and last.ending is not None:
            how = ended(last.state, last.ending)
            if how:
                out.append(f"    ↳ {last.state.value}: {_one_line(' '.join(how), 300)}")
    return printable("\n".join(out))


def _one_line(text: str, width: int) -> str:
    flat = " ".join(printable(text).split())  # the width is what the reader sees
    return flat if len(flat) <= width else flat[: width - 1] + "…"
