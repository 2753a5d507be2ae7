"""A digest as plain text, for the CLI (and as the words the Slack blocks reuse).

Times are printed in UTC with the zone named: a digest is about a cluster shared across time
zones, and the same text may be pasted anywhere. Long lists stop at `max_rows` with a count of
what was left out, so a thousand-GPU cluster's digest still fits a terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from backends.durations_text import duration, plural
from bot.settings import DigestThresholds
from bot.telemetry.digest import Digest, GroupFigures, IdleJob, QueueFigures, Trend, Unattributed
from bot.telemetry.nudges import IdleNote, NudgeStatus

TIME_FORMAT = "%Y-%m-%d %H:%M UTC"


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} %"


def gpu_hours(value: float) -> str:
    return f"{value:,.1f}"


def points(change: float | None) -> str:
    if change is None:
        return "n/a"
    arrow = "▲" if change > 0 else "▼" if change < 0 else "="
    return f"{arrow} {abs(change):.1f} points"


def signed_hours(change: float) -> str:
    return f"{change:+,.1f} GPU-h"


def wait(length: timedelta | None) -> str:
    return "n/a" if length is None else duration(seconds=length.total_seconds())


def moment(when: datetime) -> str:
    return when.strftime(TIME_FORMAT)


def period(digest: Digest) -> str:
    return f"{moment(digest.since)} → {moment(digest.until)}"


def cluster_line(digest: Digest) -> str:
    cluster = digest.cluster
    trend = digest.trend
    change = ""
    if trend is not None and trend.utilization_change_points is not None:
        change = f" ({points(trend.utilization_change_points)} vs previous)"
    return (
        f"{cluster.gpus:,} GPUs, mean utilisation {percent(cluster.mean_utilization_pct)}{change}, "
        f"memory {percent(cluster.mean_memory_used_pct)} used"
    )


def hours_line(cluster: GroupFigures) -> str:
    share = cluster.allocated_used_pct
    used = f" ({percent(share)} of the measured allocated time)" if share is not None else ""
    line = (
        f"{gpu_hours(cluster.allocated_gpu_hours)} GPU-h allocated, "
        f"{gpu_hours(cluster.used_gpu_hours)} used{used}"
    )
    if cluster.unmeasured_gpu_hours:
        line += f"; {gpu_hours(cluster.unmeasured_gpu_hours)} GPU-h allocated without a utilisation reading"
    if cluster.allocated_from == "accounting":
        line += " (allocated hours from the scheduler's accounting, utilisation from the GPU samples)"
    return line


def idle_line(job: IdleJob) -> str:
    return (
        f"{job.level.value}: job {job.job_id} ({job.backend}) of {job.owner or 'unknown'}, "
        f"{job.gpus} {plural(job.gpus, 'GPU', 'GPUs')} ({gpu_names(job)}), held {job.held_hours:.1f} h at "
        f"{percent(job.mean_utilization_pct)} since {moment(job.since)}"
    )


def gpu_names(job: IdleJob, shown: int = 4) -> str:
    """Which GPUs (host:index), the first few of a large job."""
    more = f" +{len(job.gpu_names) - shown}" if len(job.gpu_names) > shown else ""
    return ", ".join(job.gpu_names[:shown]) + more


def judged(thresholds: DigestThresholds) -> str:
    """How the idle list was judged: after GPU-hours held, or (a snapshot: one reading, no hours
    held) from the utilisation read now, which cannot say how long a GPU has been idle."""
    if thresholds.min_held_gpu_hours > 0:
        return f"judged after {thresholds.min_held_gpu_hours:g} GPU-h held"
    return "judged by the utilisation read now: one reading says nothing of how long"


def nudge_line(note: IdleNote) -> str:
    """What was done about one idle job, for the admins' list."""
    said = {
        NudgeStatus.NUDGED: "owner told now",
        NudgeStatus.COOLING_DOWN: "owner told already",
        NudgeStatus.KEPT: f"owner chose Keep until {moment(note.kept_until)}" if note.kept_until else "kept",
        NudgeStatus.UNREACHABLE: "owner not reachable on Slack (no mapped user)",
        NudgeStatus.FAILED: "telling the owner failed; tried again next round",
        NudgeStatus.NOT_YET: "owner told at the next round",
    }[note.status]
    told = f", {note.nudges} {plural(note.nudges, 'nudge', 'nudges')} so far" if note.nudges else ""
    return (
        f"job {note.job_id} ({note.backend}) of {note.owner}: {note.gpus} {plural(note.gpus, 'GPU', 'GPUs')} "
        f"at {percent(note.mean_utilization_pct)} for {wait(note.idle_for)}; {said}{told}"
    )


def queue_line(queue: QueueFigures) -> str:
    if not queue.pending:
        return "no jobs pending"
    line = f"{queue.pending} pending"
    if queue.longest_wait is not None:
        line += f"; longest wait {wait(queue.longest_wait)} (job {queue.longest_waiting_job}"
        line += f", {queue.longest_waiting_user})"
    if queue.most_common_reason:
        line += f"; most common reason {queue.most_common_reason} ({queue.reasons[0][1]})"
    return line


def trend_line(trend: Trend) -> str:
    if not trend.gpus:
        return f"no GPU samples in the previous period ({moment(trend.since)} → {moment(trend.until)})"
    return (
        f"previous period {moment(trend.since)} → {moment(trend.until)}: mean utilisation "
        f"{percent(trend.mean_utilization_pct)} ({points(trend.utilization_change_points)} since), "
        f"{gpu_hours(trend.allocated_gpu_hours)} GPU-h allocated "
        f"({signed_hours(trend.allocated_gpu_hours_change)}), "
        f"{gpu_hours(trend.used_gpu_hours)} used ({signed_hours(trend.used_gpu_hours_change)})"
    )


def unattributed_line(found: Unattributed, max_names: int = 10) -> str:
    if not found.gpus:
        return "every GPU sampled was attributed to a job"
    line = (
        f"{found.gpus:,} GPUs had time no job was found to hold: {gpu_hours(found.gpu_hours)} GPU-h, "
        f"mean utilisation {percent(found.mean_utilization_pct)}"
    )
    if found.busy_gpus:
        shown = ", ".join(found.busy_gpus[:max_names])
        more = f" and {len(found.busy_gpus) - max_names} more" if len(found.busy_gpus) > max_names else ""
        line += f"; busy without a job: {shown}{more}"
    return line


def group_rows(groups: Sequence[GroupFigures]) -> list[tuple[str, ...]]:
    return [
        (
            group.name,
            f"{group.gpus:,}",
            gpu_hours(group.allocated_gpu_hours),
            gpu_hours(group.used_gpu_hours),
            percent(group.mean_utilization_pct),
            percent(group.mean_memory_used_pct),
        )
        for group in groups
    ]


GROUP_HEADERS = ("", "GPUS", "ALLOC GPU-H", "USED GPU-H", "UTIL", "MEMORY")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(map(len, column)) for column in zip(headers, *rows, strict=True)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def render_digest(digest: Digest, max_rows: int = 30, nudges: Sequence[IdleNote] = ()) -> str:
    """The digest as plain text; `nudges` (what was done about each idle job) are listed after
    the idle allocations, as the Slack digest lists them for admins."""
    if not digest.has_data:
        return (
            f"GPU digest {period(digest)}: no GPU samples were recorded in this period.\n"
            f"Queue: {queue_line(digest.queue)}"
        )
    thresholds = digest.thresholds
    parts = [
        f"GPU digest {period(digest)} ({digest.resolution.value} roll-ups)",
        "",
        f"Cluster: {cluster_line(digest)}",
        f"GPU-hours: {hours_line(digest.cluster)}",
        "",
        "By GPU type",
        table(("MODEL", *GROUP_HEADERS[1:]), group_rows(digest.by_model)),
    ]
    if digest.by_partition:
        parts += [
            "",
            "By partition",
            table(("PARTITION", *GROUP_HEADERS[1:]), group_rows(digest.by_partition)),
        ]
    parts += [
        "",
        f"Idle allocations (mean utilisation 0 % unused, ≤ {thresholds.low_pct:g} % low, "
        f"≤ {thresholds.somewhat_low_pct:g} % somewhat low; {judged(thresholds)})",
    ]
    if digest.idle:
        rows = [
            (
                job.level.value,
                job.job_id,
                job.backend,
                job.owner or "unknown",
                gpu_names(job),
                f"{job.held_hours:.1f} h",
                percent(job.mean_utilization_pct),
                moment(job.since),
            )
            for job in digest.idle[:max_rows]
        ]
        parts.append(table(("LEVEL", "JOB", "BACKEND", "OWNER", "GPUS", "HELD", "UTIL", "SINCE"), rows))
        if len(digest.idle) > max_rows:
            parts.append(f"… and {len(digest.idle) - max_rows} more idle jobs")
    else:
        parts.append("none")
    if nudges:
        parts += ["", "Idle-GPU nudges", *(f"- {nudge_line(note)}" for note in nudges[:max_rows])]
        if len(nudges) > max_rows:
            parts.append(f"… and {len(nudges) - max_rows} more")
    if digest.top_users:
        users = [
            (
                user.owner,
                str(user.jobs),
                gpu_hours(user.gpu_hours),
                gpu_hours(user.used_gpu_hours),
                percent(user.mean_utilization_pct),
            )
            for user in digest.top_users
        ]
        parts += [
            "",
            "Top users by GPU-hours",
            table(("OWNER", "JOBS", "GPU-H", "USED GPU-H", "UTIL"), users),
        ]
    parts += ["", f"Queue: {queue_line(digest.queue)}"]
    if digest.trend:
        parts.append(f"Trend: {trend_line(digest.trend)}")
    parts.append(f"Unattributed: {unattributed_line(digest.unattributed)}")
    return "\n".join(parts)
