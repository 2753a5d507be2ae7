"""Rendering a digest: plain text, Block Kit within Slack's limits, and a PNG chart of fixed size."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from io import BytesIO

from matplotlib.image import imread
from slack_sdk.models.blocks import SectionBlock

from bot.slack.blocks import MESSAGE_BLOCK_LIMIT, SECTION_LIMIT, as_dicts
from bot.slack.digest_blocks import digest_blocks, digest_summary
from bot.store.telemetry import GridRow, Resolution, UtilizationGrid
from bot.telemetry.chart import utilization_chart
from bot.telemetry.digest import (
    Trend,
)
from bot.telemetry.digest_text import render_digest, wait
from tests.helpers.digests import SINCE, digest, group

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_text_states_the_figures_and_cuts_long_lists() -> None:
    text = render_digest(digest(idle_jobs=45), max_rows=30)
    lines = text.splitlines()
    assert lines[0] == "GPU digest 2026-03-02 00:00 UTC → 2026-03-03 00:00 UTC (hour roll-ups)"
    assert (
        lines[2]
        == "Cluster: 1,000 GPUs, mean utilisation 40.0 % (▲ 5.0 points vs previous), memory 30.0 % used"
    )
    assert (
        lines[3]
        == "GPU-hours: 20,000.0 GPU-h allocated, 8,000.0 used (40.0 % of the measured allocated time)"
    )
    assert "… and 15 more idle jobs" in lines
    assert (
        "Queue: 4 pending; longest wait 1 day 2 h 5 min (job 201, dave); most common reason Resources (4)"
        in lines
    )
    assert lines[-1].endswith(
        "busy without a job: node0:1, node1:1, node2:1, node3:1, node4:1, node5:1, "
        "node6:1, node7:1, node8:1, node9:1 and 20 more"
    )


def test_a_trend_without_a_previous_period_says_so() -> None:
    first = replace(
        digest(), trend=Trend(SINCE - timedelta(days=1), SINCE, 0, None, 0.0, 0.0, None, 1.0, 1.0)
    )
    text = render_digest(first)
    assert "Cluster: 1,000 GPUs, mean utilisation 40.0 %, memory 30.0 % used" in text
    assert (
        "Trend: no GPU samples in the previous period (2026-03-01 00:00 UTC → 2026-03-02 00:00 UTC)" in text
    )


def test_waits_read_naturally() -> None:
    assert [wait(timedelta(minutes=m)) for m in (4, 65, 60 * 24 * 3 + 61)] == [
        "4 min",
        "1 h 5 min",
        "3 days 1 h 1 min",
    ]
    assert wait(None) == "n/a"


def test_an_empty_period_says_so() -> None:
    empty = digest(idle_jobs=0, models=0, users=0, gpus=0)
    queue = "Queue: 4 pending; longest wait 1 day 2 h 5 min (job 201, dave); most common reason Resources (4)"
    assert render_digest(empty).endswith(f"no GPU samples were recorded in this period.\n{queue}")
    blocks = as_dicts(digest_blocks(empty))
    assert len(blocks) == 2
    assert "sampler" in blocks[1]["text"]["text"] and "4 pending" in blocks[1]["text"]["text"]
    assert "no GPU samples" in digest_summary(empty)


def test_blocks_fit_slack_limits_for_a_huge_cluster() -> None:
    huge = digest(idle_jobs=2_000, models=60, users=100)
    blocks = digest_blocks(huge)
    dicts = as_dicts(blocks)  # slack_sdk validates every block here and raises on a breach
    assert len(dicts) <= MESSAGE_BLOCK_LIMIT
    sections = [b for b in blocks if isinstance(b, SectionBlock)]
    assert all(len(s.text.text) <= SECTION_LIMIT for s in sections if s.text)
    idle_section = next(
        s.text.text for s in sections if s.text and s.text.text.startswith("*Idle allocations*")
    )
    shown = idle_section.count("\n• ")
    assert 10 < shown < 2_000
    assert idle_section.endswith(f"… and {2_000 - shown} more")
    assert "… and 40 more" in str(dicts)  # 60 models, 20 shown


def test_names_from_the_cluster_cannot_mention_or_link() -> None:
    blocks = str(as_dicts(digest_blocks(digest(owner="<!channel> & <https://x|y>"))))
    assert "<!channel>" not in blocks
    assert "&lt;!channel&gt; &amp; &lt;https://x|y&gt;" in blocks


def grid(rows: int, buckets: int, resolution: Resolution = Resolution.HOUR) -> UtilizationGrid:
    starts = tuple(SINCE + i * resolution.bucket for i in range(buckets))
    return UtilizationGrid(
        since=SINCE,
        until=SINCE + buckets * resolution.bucket,
        resolution=resolution,
        bucket_starts=starts,
        rows=tuple(
            GridRow(
                f"node{r // 8:03d}",
                str(r % 8),
                "NVIDIA L40S",
                tuple(None if (r + b) % 7 == 0 else float((r * b) % 101) for b in range(buckets)),
            )
            for r in range(rows)
        ),
    )


def decoded_shape(png: bytes) -> tuple[int, ...]:
    assert png.startswith(PNG_SIGNATURE)
    return tuple(imread(BytesIO(png), format="png").shape)


def test_the_chart_has_one_size_whatever_it_shows() -> None:
    models = [group("NVIDIA H100 80GB HBM3"), group("NVIDIA L40S", util=None), group("NVIDIA A100-SXM4-80GB")]
    assert decoded_shape(utilization_chart(grid(1_000, 24), models)) == (700, 1200, 4)
    assert decoded_shape(utilization_chart(grid(3, 90, Resolution.MINUTE), models[:1])) == (700, 1200, 4)
    assert decoded_shape(utilization_chart(grid(0, 0))) == (700, 1200, 4)
