"""`concierge digest` and `concierge agent`: GPU use, from the store or from one scrape, and the
node agent that samples NVML.

They live apart from main.py so the door's file stays readable, and use the same `App` (settings,
store) as every other command. The snapshot (`digest --dcgm URL`) rolls one scrape up in an
in-memory store and reads it back through the same digest path, so a snapshot and a stored digest
can never disagree on what a figure means.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from backends.errors import BackendUnavailable, ConfigurationError
from bot.terminal_text import echo

if TYPE_CHECKING:
    from bot.cli.main import App
    from bot.telemetry.agent import GpuSample, NvmlSampler
    from bot.telemetry.reporting import DigestReport

# A snapshot is one scrape: it is read back as the minute it fell in.
SNAPSHOT_SPAN = timedelta(minutes=1)


@click.command()
@click.option(
    "--since", "since_text", default="24h", show_default=True, help='The period: "24h", "7d", "90m".'
)
@click.option(
    "--now", "collect_now", is_flag=True, help="Read the configured GPU sources once before building."
)
@click.option(
    "--chart", type=click.Path(dir_okay=False, path_type=Path), help="Write the chart (PNG) to this file."
)
@click.option("--post", "channel", help="Also post it to this Slack channel (needs the Slack settings).")
@click.option(
    "--dcgm",
    "dcgm_urls",
    multiple=True,
    help="Snapshot: scrape these dcgm-exporter (or agent) /metrics URLs once; the store is not read.",
)
@click.pass_obj
def digest(
    app: App,
    since_text: str,
    collect_now: bool,
    chart: Path | None,
    channel: str | None,
    dcgm_urls: tuple[str, ...],
) -> None:
    """GPU use: utilisation by type, idle allocated GPUs, GPU-hours by user, the queue, the trend."""
    from bot.assembly import build_digest_maker
    from bot.telemetry.schedule_settings import window

    try:
        period = window(since_text)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--since") from e
    wants_chart = chart is not None or channel is not None
    if dcgm_urls:
        report = _snapshot(app, dcgm_urls, wants_chart)
    else:
        notes = _collect_once(app) if collect_now else ()
        report = build_digest_maker(app.settings, app.store).make_until_now(
            period, datetime.now(UTC), chart=wants_chart, notes=notes
        )
    _show(app, report, chart, channel)


def _show(app: App, report: DigestReport, chart: Path | None, channel: str | None) -> None:
    from bot.telemetry.digest_text import render_digest

    echo(render_digest(report.digest, nudges=report.nudges))  # job names and owners from the cluster
    for note in report.notes:
        echo(f"note: {note}", err=True)
    if chart is not None and report.chart_png is not None:
        chart.write_bytes(report.chart_png)
        click.echo(f"Chart written to {chart} ({len(report.chart_png):,} bytes).")
    if channel is not None:
        if app.settings.slack is None:
            raise ConfigurationError("--post needs the Slack settings: set CONCIERGE_SLACK__BOT_TOKEN")
        from bot.slack.app import web_client
        from bot.slack.digest_post import post_digest

        ts = post_digest(web_client(app.settings.slack), channel, report)
        click.echo(f"Posted to {channel} (message {ts}).")


def _collect_once(app: App) -> tuple[str, ...]:
    from bot.assembly import build_gpu_collector

    if not app.settings.gpu.has_cluster_sources:
        return (
            "no GPU source is configured (CONCIERGE_GPU__DCGM__ENDPOINTS, __DCGM__SERVICE or "
            "__PROMETHEUS__URL): "
            "showing what the store holds",
        )
    return build_gpu_collector(app.settings, app.store).collect_once().problems


def _snapshot(app: App, urls: Sequence[str], chart: bool) -> DigestReport:
    from bot.assembly import build_digest_maker, build_gpu_collector
    from bot.store import Store

    memory = Store("sqlite://")
    memory.migrate()
    collected = build_gpu_collector(app.settings, memory, urls).collect_once()
    if collected.samples == 0:
        raise BackendUnavailable("no GPU was read: " + "; ".join(collected.problems))
    now = datetime.now(UTC)
    # One reading holds no GPU-hours: idle and low-use GPUs are judged by the utilisation now.
    at_once = app.settings.digest.model_copy(update={"min_held_gpu_hours": 0.0})
    settings = app.settings.model_copy(update={"digest": at_once})
    return build_digest_maker(settings, memory, accounting=False).make(
        now - SNAPSHOT_SPAN, now + SNAPSHOT_SPAN, chart=chart, notes=collected.problems
    )


@click.command()
@click.option("--check", is_flag=True, help="Say whether NVML works here (driver, GPUs) and exit.")
@click.option(
    "--store", "to_store", is_flag=True, help="Roll samples up into the store, attributed to Slurm jobs."
)
@click.option(
    "--serve", "listen", metavar="HOST:PORT", help="Serve /metrics in dcgm-exporter's names, e.g. :9400."
)
@click.option(
    "--interval", type=click.FloatRange(min=1), help="Seconds between samples (default: settings, 30)."
)
@click.option(
    "--passes", type=click.IntRange(min=1), help="Stop after this many samples (default: run until stopped)."
)
@click.pass_obj
def agent(
    app: App, check: bool, to_store: bool, listen: str | None, interval: float | None, passes: int | None
) -> None:
    """Sample this node's GPUs through NVML, into the store and/or on /metrics."""
    from bot.telemetry.agent import node_sampler

    sampler = node_sampler(socket.gethostname(), app.settings.gpu.nvml.init_retry_s)
    if check:
        status = sampler.status()
        if not status.available:
            raise BackendUnavailable(status.describe())
        echo(status.describe())
        for sample in sampler.sample():
            echo(_sample_line(sample))
        sampler.close()
        return
    if not to_store and listen is None:
        raise click.UsageError("say where samples go: --store, --serve HOST:PORT, or both")
    _run_agent(app, sampler, to_store, listen, interval or app.settings.gpu.nvml.interval_s, passes)


def _run_agent(
    app: App, sampler: NvmlSampler, to_store: bool, listen: str | None, interval: float, passes: int | None
) -> None:
    from bot.assembly import build_gpu_collector
    from bot.logs import configure_logging
    from bot.metrics import Metrics
    from bot.telemetry.agent import LatestSamples, SamplingLoop, Sink, agent_probes

    configure_logging(app.settings.log_format)
    sinks: list[Sink] = []
    latest = LatestSamples()
    server = None
    metrics = Metrics()
    probes = agent_probes(app.settings.metrics, metrics, app.store if to_store else None)
    if probes is not None:
        where = f"{app.settings.metrics.host}:{probes.server_port}"
        click.echo(f"The agent's own /metrics, /healthz and /readyz on {where}")
    if listen is not None:
        host, port = _host_port(listen)
        server = latest.serve(host, port)
        sinks.append(latest.replace)
        click.echo(f"Serving /metrics on {host or '0.0.0.0'}:{server.server_port}")  # noqa: S104
    if to_store:
        sinks.append(build_gpu_collector(app.settings, app.store).store)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        done = SamplingLoop(sampler, interval, sinks, metrics).run(stop, passes)
        click.echo(f"Sampled {done} time(s).")
    except KeyboardInterrupt:
        pass
    finally:
        sampler.close()
        if server is not None:
            server.shutdown()
        if probes is not None:
            probes.shutdown()


def _host_port(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter(
            f"{listen!r} is not HOST:PORT, e.g. :9400 or 127.0.0.1:9400", param_hint="--serve"
        )
    return host, int(port)


def _sample_line(sample: GpuSample) -> str:
    def shown(value: float | None, unit: str) -> str:
        return "n/a" if value is None else f"{value:g}{unit}"

    return (
        f"{sample.host}:{sample.gpu} {sample.model or '?'}: util {shown(sample.utilization_pct, '%')}, "
        f"memory {shown(sample.memory_used_mib, '')}/{shown(sample.memory_total_mib, ' MiB')}, "
        f"power {shown(sample.power_w, ' W')}, {shown(sample.temperature_c, ' °C')}, "
        f"processes {list(sample.pids) or 'none'}"
    )
