"""The scheduled door: what the schedule's leader does on its timers, wired to Slack.

Digests are built by the Slack-free `DigestMaker` and posted with `post_digest`; the sampling
timer runs one collection pass over the configured GPU sources (dcgm-exporter endpoints, listed
or found behind a Kubernetes Service); the nudge timer DMs the owners of GPUs idle for longer than
`nudges.idle_minutes`; housekeeping deletes aged roll-ups and conversations idle past
`conversation.keep_days`. A failure raises to the schedule, which logs it
and, for a digest, gives the period's claim back so that it is posted later rather than lost.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from slack_sdk import WebClient

from bot.assembly import build_digest_maker, build_gpu_collector
from bot.settings import Settings
from bot.slack.digest_post import post_digest
from bot.slack.nudges import slack_nudger
from bot.store import Store
from bot.telemetry.digest import idle_allocations
from bot.telemetry.reporting import ReadQueue
from bot.telemetry.schedule import DigestRun, ScheduledWork

log = logging.getLogger("concierge.schedule")


def scheduled_work(
    settings: Settings, store: Store, client: WebClient, read_queue: ReadQueue
) -> ScheduledWork:
    telemetry = store.telemetry(settings.rollup)
    nudger = slack_nudger(store, client, settings.nudges)
    maker = build_digest_maker(settings, store, read_queue)
    collector = build_gpu_collector(settings, store)

    def post(run: DigestRun) -> None:
        post_digest(client, run.channel, maker.make(run.period_start, run.period_end, chart=run.chart))

    def sample() -> None:
        if settings.gpu.has_cluster_sources:  # node agents write to the store themselves
            collector.collect_once()

    def housekeeping() -> None:
        now = datetime.now(UTC)
        pruned = telemetry.prune(now)
        forgotten = store.forget_conversations(now - settings.conversation.keep_for)
        log.info(
            "housekeeping: %d minute and %d hour GPU rows aged out, %d idle conversations forgotten",
            pruned.minute_rows, pruned.hour_rows, forgotten,
        )  # fmt: skip

    def nudge() -> None:
        now = datetime.now(UTC)
        nudger.run(idle_allocations(telemetry, now - settings.nudges.idle_for, now, settings.digest))

    return ScheduledWork(post_digest=post, sample=sample, nudge=nudge, housekeeping=housekeeping)
