"""Ack latency of `/gpu` in HTTP mode under concurrent signed requests, with a slow cluster.

Slack drops a command the bot has not answered within 3,000 ms, so the ack must never wait for the
cluster. Everything is the real stack except Slack and Slurm: `build_app` in HTTP mode with a
signing secret, served by `bot.slack.serve.http_server` on 127.0.0.1, a real `Concierge` over a
throw-away SQLite store, the real `WebClient` pointed at the fake Slack, and a fake backend whose
every cluster call sleeps 2 s (passed in through the constructor). Requests are real HTTP on
connections opened beforehand, written together from a separate process (one asyncio loop by
default; `--client threads`: one thread each, as before), a mix of free text, `queue` and `why 12`.

Reported: the time to each HTTP 200 (the ack) as p50/p99/max, acks over 3 s, non-200 answers,
and how long until every lazy answer reached its response_url (bounded by the worker pool).
Goal (issue 4): p99 ≤ 50 ms, no ack over 3 s.

Usage: .venv/bin/python bench/slack_ack.py [--requests 100] [--delay 2.0] [--runs 3]
                                           [--client asyncio|threads]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import logging
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

# Run as `python bench/slack_ack.py`: the repo root is not on sys.path then, and the fake Slack
# lives in tests/ (not an installed package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slack_sdk import WebClient

from backends.types import (
    Footprint,
    GpuPool,
    Identity,
    JobRef,
    JobStatus,
    PendingReason,
    Plan,
    QueueFilter,
    Target,
)
from bot.engine import Concierge
from bot.slack.app import build_app
from bot.slack.serve import http_server
from bot.slack.settings import SlackSettings
from bot.store import Store
from bot.understanding.grammar import understand
from policies import load_policy
from tests.slack_fake import FakeSlack, signed_request, slash_command_body

SECRET = "bench-signing-secret"
PERSON = Identity(requester="U0BENCH", unix_user="alice", k8s_user="alice")
TEXTS = ("1 a100 for 2 hours to run python train.py", "queue", "why 12")
GOAL_P99_MS = 50.0
SLACK_LIMIT_MS = 3000.0
PATH = "/slack/events"
# Keeps the whole run under 2 minutes even when answers go missing.
ANSWER_DEADLINE_S = 90.0
NO_ANSWER = 0  # the status recorded when the connection failed


class SlowBackend:
    """A Slurm stand-in where every cluster call takes `delay_s`, as an overloaded slurmctld would."""

    name: Target = "slurm"

    def __init__(self, delay_s: float) -> None:
        self._delay_s = delay_s

    def plan(self, footprint: Footprint, identity: Identity, request_id: str) -> Plan:
        time.sleep(self._delay_s)
        script = f"#!/bin/bash\n#SBATCH --gres=gpu:{footprint.gpus_per_unit}\n{footprint.request.command}\n"
        return Plan(
            backend="slurm",
            request_id=request_id,
            footprint=footprint,
            identity=identity,
            sbatch_script=script,
        )

    def validate(self, plan: Plan) -> list[str]:
        time.sleep(self._delay_s)
        return []

    def submit(self, plan: Plan) -> JobRef:
        raise AssertionError("the benchmark never clicks Submit")

    def statuses(self, refs: Sequence[JobRef]) -> list[JobStatus]:
        time.sleep(self._delay_s)
        return []

    def queue(self, filter: QueueFilter) -> list[JobStatus]:
        time.sleep(self._delay_s)
        return []

    def explain(self, ref: JobRef) -> list[PendingReason]:
        time.sleep(self._delay_s)
        return []

    def capacity(self) -> list[GpuPool]:
        time.sleep(self._delay_s)
        return [GpuPool(backend="slurm", pool="gpu", gpu_type="a100", total=8, allocated=3)]

    def cancel(self, ref: JobRef, identity: Identity) -> None:
        raise AssertionError("the benchmark never cancels")


def post_command(port: int, body: str, start: threading.Barrier) -> tuple[float, int]:
    """One signed slash command over real HTTP; returns (ms to the HTTP answer, its status)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.connect()  # outside the timing: Slack's connection to us is already open
    start.wait()
    # Signed after the barrier so the timestamp is fresh, as Slack's would be.
    headers = signed_request(SECRET, body)
    started = time.perf_counter()
    try:
        connection.request("POST", PATH, body=body.encode(), headers=headers)
        response = connection.getresponse()
        response.read()
        status = response.status
    except OSError:
        status = NO_ANSWER  # reset or refused: to Slack, a command that was never acknowledged
    finally:
        connection.close()
    return (time.perf_counter() - started) * 1000, status


FORK = multiprocessing.get_context("fork")


def fire_all(port: int, bodies: list[str], outbox: multiprocessing.Queue[list[tuple[float, int]]]) -> None:
    """In the client process: send every command at once (a barrier), collect (ms, status)."""
    start = threading.Barrier(len(bodies) + 1)
    results: list[tuple[float, int]] = []
    lock = threading.Lock()

    def client(body: str) -> None:
        outcome = post_command(port, body, start)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=client, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    start.wait()
    for thread in threads:
        thread.join()
    outbox.put(results)


async def post_on(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: str) -> tuple[float, int]:
    """One signed slash command on an open connection; (ms until the whole answer was read, status)."""
    payload = body.encode()
    headers = "".join(f"{name}: {value}\r\n" for name, value in signed_request(SECRET, body).items())
    request = f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(payload)}\r\n{headers}\r\n"
    started = time.perf_counter()
    try:
        writer.write(request.encode() + payload)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(
            (int(v) for n, _, v in (x.partition(":") for x in lines) if n.lower() == "content-length"), 0
        )
        await reader.readexactly(length)
        status = int(lines[0].split()[1])
    except (OSError, asyncio.IncompleteReadError):
        status = NO_ANSWER
    finally:
        writer.close()
    return (time.perf_counter() - started) * 1000, status


def fire_all_async(
    port: int, bodies: list[str], outbox: multiprocessing.Queue[list[tuple[float, int]]]
) -> None:
    """In the client process: one event loop writes every command at once, collects (ms, status).

    Slack's servers share no interpreter lock; 100 client threads in one process do. Against a
    server that only answers 200 (nothing else), the thread clients alone measured p99 36-77 ms
    (median of 10 bursts 58 ms) on the shared 2-core box, where this loop measured 6-13 ms:
    above 50 ms, `--client threads` mostly times itself.
    """

    async def fire() -> list[tuple[float, int]]:
        # Connected beforehand, as Slack's connections to us already are.
        connections = [await asyncio.open_connection("127.0.0.1", port) for _ in bodies]
        return list(
            await asyncio.gather(*(post_on(r, w, b) for (r, w), b in zip(connections, bodies, strict=True)))
        )

    outbox.put(asyncio.run(fire()))


CLIENTS = {"asyncio": fire_all_async, "threads": fire_all}


def wait_for_answers(fake: FakeSlack, expected: int, deadline: float) -> int:
    """How many response_url answers arrived, waiting until all did or the deadline passed."""
    while len(fake.responses) < expected and time.perf_counter() < deadline:
        time.sleep(0.05)
    return len(fake.responses)


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@dataclass(frozen=True)
class Burst:
    """One burst's outcome: (ms to the HTTP answer, status) per request, and the lazy answers."""

    results: list[tuple[float, int]]
    answered: int
    answered_after_s: float

    def report(self, number: int) -> bool:
        """Prints the burst's figures; True when it met the goal."""
        latencies = [ms for ms, _ in self.results]
        statuses = Counter(status for _, status in self.results)
        not_ok = len(self.results) - statuses[200]
        over_limit = sum(1 for ms in latencies if ms > SLACK_LIMIT_MS)
        p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
        met = p99 <= GOAL_P99_MS and over_limit == 0 and not_ok == 0
        print(f"  run {number}: ack p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(latencies):.1f} ms")
        print(f"    acks over {SLACK_LIMIT_MS:.0f} ms: {over_limit} (goal 0)")
        print(f"    HTTP statuses: {dict(sorted(statuses.items()))} ({not_ok} not 200)")
        verdict = "met" if met else "NOT met"
        print(f"    goal p99 ≤ {GOAL_P99_MS:.0f} ms: {verdict} (p99 / goal = {p99 / GOAL_P99_MS:.2f})")
        print(
            f"    lazy answers on their response_url: {self.answered} of {len(self.results)} "
            f"after {self.answered_after_s:.1f} s"
        )
        return met


def burst(port: int, fake: FakeSlack, requests: int, client: str) -> Burst:
    """Sends `requests` commands at once and waits for their lazy answers (so bursts never overlap)."""
    before = len(fake.responses)
    bodies = [
        slash_command_body(
            TEXTS[i % len(TEXTS)], user_id=PERSON.requester, response_url=fake.response_url(uuid4().hex)
        )
        for i in range(requests)
    ]
    # The clients stand for Slack's servers: they run in a process of their own, so their
    # threads do not compete with the bot for this process's interpreter lock.
    outbox: multiprocessing.Queue[list[tuple[float, int]]] = FORK.Queue()
    clients = FORK.Process(target=CLIENTS[client], args=(port, bodies, outbox))
    clients.start()
    results = outbox.get(timeout=120)
    released = time.perf_counter()
    clients.join()
    answered = wait_for_answers(fake, before + requests, released + ANSWER_DEADLINE_S) - before
    return Burst(results, answered, time.perf_counter() - released)


def run(requests: int, delay_s: float, workers: int, runs: int, client: str) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"/gpu acks in HTTP mode: {requests} concurrent signed requests, cluster calls {delay_s:g} s each")
    print(f"  mix: {', '.join(repr(t) for t in TEXTS)}; {workers} workers; {os.cpu_count()} cores")
    print(f"  clients: {client}, in a process of their own")
    print(f"  load average before (1, 5, 15 min): {load} (other work on the machine skews timings)")
    with tempfile.TemporaryDirectory() as scratch, FakeSlack() as fake:
        store = Store(f"sqlite:///{Path(scratch) / 'concierge.db'}")
        store.migrate()
        store.map_identity(PERSON)
        concierge = Concierge(store, {"slurm": SlowBackend(delay_s)}, understand, load_policy(None))
        settings = SlackSettings.model_validate(
            {"bot_token": "xoxb-bench", "signing_secret": SECRET, "mode": "http", "workers": workers}
        )
        app = build_app(
            concierge, store, settings, client=WebClient(token="xoxb-bench", base_url=fake.api_url)
        )
        server = http_server(app, store, "127.0.0.1", 0, PATH, signing_secret=SECRET)
        serving = threading.Thread(target=server.serve_forever, daemon=True)
        serving.start()
        try:
            met = [burst(server.server_port, fake, requests, client).report(n) for n in range(1, runs + 1)]
        finally:
            server.shutdown()
            server.server_close()
            store.close()
    print(f"  goal met in {sum(met)} of {runs} runs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--delay", type=float, default=2.0, help="seconds each cluster call takes")
    parser.add_argument("--workers", type=int, default=SlackSettings.model_fields["workers"].default)
    parser.add_argument("--runs", type=int, default=1, help="bursts, one after the other's answers")
    parser.add_argument("--client", choices=sorted(CLIENTS), default="asyncio", help="how the clients send")
    args = parser.parse_args()
    # Bolt logs an "Unhandled request" page per ack it gave up on; the status counts say it once.
    # Bolt's loggers copy the root level when the app is built, so set it before.
    logging.basicConfig(level=logging.ERROR)
    run(args.requests, args.delay, args.workers, args.runs, args.client)


if __name__ == "__main__":
    main()
