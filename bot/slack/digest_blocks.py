"""A digest as a Block Kit message (the chart goes separately, as a file upload).

The sentences are the CLI's (bot.telemetry.digest_text), so both doors say the same thing. Tables
go in code blocks, where columns line up; lists are cut to fit a section (3,000 characters) with a
count of what was left out; the message stays far below Slack's 50 blocks whatever the cluster's
size, and `as_dicts` (slack_sdk's models) checks every limit before anything is posted.
"""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import Block, DividerBlock, HeaderBlock

from bot.slack.blocks import HEADER_LIMIT, SECTION_LIMIT, code, context, escaped, fitted, section
from bot.telemetry.digest import Digest, GroupFigures
from bot.telemetry.digest_text import (
    GROUP_HEADERS,
    cluster_line,
    group_rows,
    hours_line,
    idle_line,
    judged,
    nudge_line,
    period,
    queue_line,
    table,
    trend_line,
    unattributed_line,
)
from bot.telemetry.nudges import IdleNote

_ROOM_FOR_MORE = 60  # characters kept free in a section for "… and N more"


def digest_summary(digest: Digest) -> str:
    """The message's plain `text`: what notifications and screen readers show."""
    if not digest.has_data:
        return f"GPU digest {period(digest)}: no GPU samples in this period"
    return f"GPU digest {period(digest)}: {cluster_line(digest)}; {len(digest.idle)} idle allocations"


def digest_blocks(digest: Digest, max_groups: int = 20, nudges: Sequence[IdleNote] = ()) -> list[Block]:
    """The digest as Block Kit; `nudges` (what was done about each idle job) are listed for admins."""
    blocks: list[Block] = [HeaderBlock(text=fitted(f"GPU digest: {period(digest)}", HEADER_LIMIT))]
    if not digest.has_data:
        blocks.append(
            section(
                "No GPU samples were recorded in this period: is the GPU sampler running?\n"
                f"*Queue:* {escaped(queue_line(digest.queue))}"
            )
        )
        return blocks
    blocks.append(
        section(
            f"*Cluster:* {escaped(cluster_line(digest))}\n*GPU-hours:* {escaped(hours_line(digest.cluster))}"
        )
    )
    blocks.append(code(_groups_table("MODEL", digest.by_model, max_groups), title="By GPU type"))
    if digest.by_partition:
        blocks.append(code(_groups_table("PARTITION", digest.by_partition, max_groups), title="By partition"))
    blocks.append(DividerBlock())
    thresholds = digest.thresholds
    title = (
        f"*Idle allocations* (0 % unused, ≤ {thresholds.low_pct:g} % low, "
        f"≤ {thresholds.somewhat_low_pct:g} % somewhat low; {judged(thresholds)})"
    )
    blocks.append(section(_bullets(title, [idle_line(job) for job in digest.idle], "none")))
    if nudges:
        blocks.append(
            section(_bullets("*Idle-GPU nudges* (for admins)", [nudge_line(n) for n in nudges], ""))
        )
    if digest.top_users:
        rows = [
            (user.owner, str(user.jobs), f"{user.gpu_hours:,.1f}", f"{user.used_gpu_hours:,.1f}")
            for user in digest.top_users
        ]
        blocks.append(
            code(table(("OWNER", "JOBS", "GPU-H", "USED GPU-H"), rows), title="Top users by GPU-hours")
        )
    lines = [f"*Queue:* {escaped(queue_line(digest.queue))}"]
    if digest.trend:
        lines.append(f"*Trend:* {escaped(trend_line(digest.trend))}")
    lines.append(f"*Unattributed:* {escaped(unattributed_line(digest.unattributed))}")
    blocks.append(section("\n".join(lines)))
    blocks.append(
        context(
            f"from {escaped(digest.resolution.value)} roll-ups · utilisation means count only "
            "samples that had a reading"
        )
    )
    return blocks


def _groups_table(label: str, groups: Sequence[GroupFigures], max_groups: int) -> str:
    rows = group_rows(groups[:max_groups])
    text = table((label, *GROUP_HEADERS[1:]), rows)
    if len(groups) > max_groups:
        text += f"\n… and {len(groups) - max_groups} more"
    return text


def _bullets(title: str, lines: Sequence[str], empty: str) -> str:
    """A title and one bullet per line, as many as fit a section, then how many were left out."""
    text = title
    for shown, line in enumerate(lines):
        bullet = f"\n• {escaped(line)}"
        if len(text) + len(bullet) > SECTION_LIMIT - _ROOM_FOR_MORE:
            return f"{text}\n… and {len(lines) - shown} more"
        text += bullet
    return text if lines else f"{text}\n{empty}"
