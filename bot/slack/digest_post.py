"""Posting a digest to a channel: the Block Kit message, then the chart as a file in it.

The chart goes up with `files_upload_v2` (files.upload is sunset) as a reply in the digest's thread,
so a channel gets one message per digest. A failure raises: the schedule then gives the period's
claim back and a later run posts it, instead of marking it posted.
"""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.models.blocks import ContextBlock

from bot.slack.blocks import escaped, mrkdwn
from bot.slack.digest_blocks import digest_blocks, digest_summary
from bot.telemetry.reporting import DigestReport

CHART_FILENAME = "gpu-utilisation.png"


def post_digest(client: WebClient, channel: str, report: DigestReport) -> str:
    """Posts the digest; returns the message's ts."""
    blocks = digest_blocks(report.digest, nudges=report.nudges)
    text = escaped(digest_summary(report.digest))  # notifications read it as mrkdwn
    if report.notes:  # problems met on the way, which quote what other systems said
        text += "".join(f"\n(!) {escaped(note)}" for note in report.notes)
        # a context block holds at most 10 elements
        blocks.append(ContextBlock(elements=[mrkdwn(escaped(note)) for note in report.notes[:10]]))
    posted = client.chat_postMessage(channel=channel, text=text, blocks=[block.to_dict() for block in blocks])
    ts = str(posted["ts"])
    if report.chart_png is not None:
        client.files_upload_v2(
            channel=channel,
            thread_ts=ts,
            content=report.chart_png,
            filename=CHART_FILENAME,
            title="GPU utilisation",
        )
    return ts
