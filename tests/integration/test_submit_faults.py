"""Faults between the cluster and the store: nothing is lost, nothing is submitted twice.

Each test makes one fault for real at one step of a submit on the real Slurm (SQLite and
PostgreSQL): the database broken right after sbatch, the process SIGKILLed just after sbatch or
just before it, PostgreSQL dropping every connection, sbatch's answer lost. Then a tracker pass
(the reconciler) runs, and the request's final record must match the cluster: one job with the
request's tag, recorded once, or none and a record that says so.

The faults are made by a Backend passed into the engine that wraps the real SlurmBackend and acts
right before or after the real sbatch; the engine itself is not changed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text

from backends.errors import BackendUnavailable
from backends.slurm.backend import SlurmBackend
from backends.types import Identity, JobRef, QueueFilter
from bot.engine import AlreadySubmitted, Concierge, SubmittedNotRecorded
from bot.store import Store
from bot.store.lifecycle import ACTIVE
from bot.tracker import Tracker
from bot.understanding.grammar import understand
from policies import load_policy
from tests.fakes.faulty_slurm import FaultySlurm
from tests.slurm_cluster import LocalSlurm

pytestmark = pytest.mark.slurm

ALICE = Identity(requester="U-ALICE", unix_user="alice")
POLICY = load_policy(None)
REQUEST = "1 a100 for 1 hour to run sleep 600"
REPO = Path(__file__).resolve().parents[2]


def _tagged(slurm: LocalSlurm, request_id: str) -> list[str]:
    jobs = SlurmBackend(slurm.settings).queue(QueueFilter())
    return [job.ref.job_id for job in jobs if job.request_id == request_id]


def _settle(store: Store, slurm: LocalSlurm, *, later: timedelta = timedelta(0)) -> None:
    """One tracker pass, `later` than now (the reconciler's grace for submits cut short)."""
    Tracker(
        store, {"slurm": SlurmBackend(slurm.settings)}, clock=lambda: datetime.now(UTC) + later
    ).poll_once()


def _execute(database_url: str, statement: str) -> None:
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as connection:
        connection.execute(text(statement))
    engine.dispose()


def test_the_database_failing_right_after_sbatch_loses_nothing(slurm: LocalSlurm, database_url: str) -> None:
    store = Store(database_url)
    store.migrate()
    broken = FaultySlurm(
        SlurmBackend(slurm.settings),
        after=lambda ref: _execute(database_url, "ALTER TABLE requests RENAME TO requests_away"),
    )
    concierge = Concierge(store, {"slurm": broken}, understand, POLICY)
    preview = concierge.prepare(ALICE, REQUEST, "cli", check=False)

    with pytest.raises(SubmittedNotRecorded) as told:
        concierge.submit(preview)
    (job,) = _tagged(slurm, preview.request_id)
    assert told.value.exit_code == 6
    assert f"job {job} was submitted and runs as you" in told.value.message
    assert "Do not submit it again" in told.value.message

    _execute(database_url, "ALTER TABLE requests_away RENAME TO requests")
    assert store.request(preview.request_id).outcome == "submitting"  # counted, not yet tracked
    _settle(store, slurm)
    record = store.request(preview.request_id)
    assert record.job_id == job and record.outcome in ACTIVE  # adopted, then tracked in the same pass
    assert store.tracked_jobs() == [JobRef(backend="slurm", job_id=job)]
    assert _tagged(slurm, preview.request_id) == [job]  # still one job: nothing was submitted twice
    store.close()


@pytest.mark.postgres
def test_a_read_only_postgres_after_sbatch_loses_nothing(slurm: LocalSlurm, postgres_url: str) -> None:
    store = Store(postgres_url)
    store.migrate()
    name = postgres_url.rsplit("/", 1)[1]

    def read_only(ref: JobRef) -> None:
        _as_admin(postgres_url, f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        _terminate_connections(postgres_url, name)

    concierge = Concierge(
        store, {"slurm": FaultySlurm(SlurmBackend(slurm.settings), after=read_only)}, understand, POLICY
    )
    preview = concierge.prepare(ALICE, REQUEST, "cli", check=False)
    with pytest.raises(SubmittedNotRecorded):
        concierge.submit(preview)
    _as_admin(postgres_url, f'ALTER DATABASE "{name}" SET default_transaction_read_only = off')
    _terminate_connections(postgres_url, name)
    _settle(store, slurm)
    (job,) = _tagged(slurm, preview.request_id)
    assert store.request(preview.request_id).job_id == job
    store.close()


@pytest.mark.postgres
def test_postgres_dropping_every_connection_between_sbatch_and_record(
    slurm: LocalSlurm, postgres_url: str
) -> None:
    store = Store(postgres_url)
    store.migrate()
    name = postgres_url.rsplit("/", 1)[1]
    dropping = FaultySlurm(
        SlurmBackend(slurm.settings), after=lambda ref: _terminate_connections(postgres_url, name)
    )
    concierge = Concierge(store, {"slurm": dropping}, understand, POLICY)
    preview = concierge.prepare(ALICE, REQUEST, "cli", check=False)
    ref = concierge.submit(preview)  # the pool notices the dead connections and opens new ones
    assert _tagged(slurm, preview.request_id) == [ref.job_id]
    assert store.request(preview.request_id).job_id == ref.job_id
    store.close()


def test_an_answer_lost_after_sbatch_finds_the_job_by_its_tag(slurm: LocalSlurm, database_url: str) -> None:
    def lost(ref: JobRef) -> None:
        raise BackendUnavailable("sbatch did not answer within 30 s")

    store = Store(database_url)
    store.migrate()
    concierge = Concierge(
        store, {"slurm": FaultySlurm(SlurmBackend(slurm.settings), after=lost)}, understand, POLICY
    )
    preview = concierge.prepare(ALICE, REQUEST, "cli", check=False)
    ref = concierge.submit(preview)  # not "try again": the job was found by its request id
    assert _tagged(slurm, preview.request_id) == [ref.job_id]
    assert store.request(preview.request_id).outcome in ACTIVE
    store.close()


@pytest.mark.parametrize("when", ["after", "before"])
def test_the_process_killed_around_sbatch(slurm: LocalSlurm, database_url: str, when: str) -> None:
    store = Store(database_url)
    store.migrate()
    concierge = Concierge(store, {"slurm": SlurmBackend(slurm.settings)}, understand, POLICY)
    preview = concierge.prepare(ALICE, REQUEST, "cli", check=False)
    died = _submit_in_a_process_that_dies(database_url, preview.request_id, slurm, when)
    assert died.returncode == -signal.SIGKILL, died.stderr
    assert store.request(preview.request_id).outcome == "submitting"

    if when == "after":
        (job,) = _tagged(slurm, preview.request_id)
        _settle(store, slurm)
        record = store.request(preview.request_id)
        assert record.job_id == job and record.outcome in ACTIVE
    else:
        assert _tagged(slurm, preview.request_id) == []
        _settle(store, slurm)  # within the grace a submit may still be under way elsewhere
        assert store.request(preview.request_id).outcome == "submitting"
        _settle(store, slurm, later=timedelta(minutes=6))
        record = store.request(preview.request_id)
        assert (record.job_id, record.outcome) == (None, "failed")
        assert record.error is not None and "nothing runs; ask again" in record.error
    # A second Submit of the same preview reports what happened instead of submitting again.
    with pytest.raises(AlreadySubmitted) as again:
        concierge.submit(preview)
    assert again.value.job_id == store.request(preview.request_id).job_id
    assert len(_tagged(slurm, preview.request_id)) == (1 if when == "after" else 0)
    store.close()


def _submit_in_a_process_that_dies(
    database_url: str, request_id: str, slurm: LocalSlurm, when: str
) -> subprocess.CompletedProcess[str]:
    """Another process loads the stored preview and submits it; SIGKILL hits it right before or
    right after the real sbatch, as a crash or an OOM kill would."""
    program = SUBMIT_AND_DIE.format(url=database_url, request_id=request_id, when=when)
    return subprocess.run(
        [sys.executable, "-c", program],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


SUBMIT_AND_DIE = """
import os, signal
from backends.slurm.backend import SlurmBackend
from backends.slurm.settings import SlurmSettings
from bot.engine import Concierge, prepared_from
from bot.store import Store
from bot.store.lifecycle import ACTIVE
from bot.understanding.grammar import understand
from policies import load_policy
from tests.fakes.faulty_slurm import FaultySlurm

die = lambda *_: os.kill(os.getpid(), signal.SIGKILL)
real = SlurmBackend(SlurmSettings(output_pattern="/dev/null"))
backend = FaultySlurm(real, **{{"{when}": die}})
store = Store("{url}")
concierge = Concierge(store, {{"slurm": backend}}, understand, load_policy(None))
concierge.submit(prepared_from(store.request("{request_id}")))
"""


def _as_admin(postgres_url: str, statement: str, *values: str) -> None:
    """A statement on the server's maintenance database (the test's own may be read-only)."""
    admin = postgres_url.rsplit("/", 1)[0].replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(statement.encode(), values or None)


def _terminate_connections(postgres_url: str, name: str) -> None:
    """What a PostgreSQL restart does to its clients: every session of the database ends."""
    _as_admin(
        postgres_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid()",
        name,
    )
