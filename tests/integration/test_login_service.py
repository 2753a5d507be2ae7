"""Login nodes use the service (bot/remote/): the installed CLI, run as alice and as bob with root's
site file naming a service on 127.0.0.1, proves who runs it with the real munged; the service
(in this process: the real engine and store, the one fake cluster, the Slack app beside it) judges,
records and answers. Forged, lifted and replayed credentials are refused before anything runs.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.engine import Concierge
from bot.remote import protocol
from bot.remote.handlers import LoginDoor
from bot.remote.service import LoginService
from bot.remote.settings import LoginServiceSettings
from bot.settings import Settings
from bot.slack.blocks import SUBMIT_ACTION
from bot.store import Store
from bot.understanding.grammar import understand
from policies import load_policy
from tests.fakes.backend import FakeBackend
from tests.fakes.slack_app import ALICE, Door, slack_app
from tests.helpers.cli import cli_env, wait_for
from tests.helpers.login_node import LoginNode, credential, login_env, post, service_site, write_site
from tests.helpers.serve import concierge_serve, free_port, listening
from tests.helpers.startup import probe_argv, probed
from tests.slack_fake import FakeSlack


def _munged_answers() -> bool:
    if shutil.which("munge") is None:
        return False
    return subprocess.run(["munge", "-n"], capture_output=True, check=False).returncode == 0


pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None or not _munged_answers(),
    reason="needs root (runuser; a private mount namespace for the site file), unshare(1) and munged running",
)
TRAIN = "1 a100 for 1 hour to run python3 train.py"
EVAL = "2 a100 for 1 hour to run python3 eval.py"
# A client as the person runs it, to send what the CLI would not (another's request id, a decline late).
CLIENT = """
import sys
from backends.errors import ConciergeError
from bot.remote.client import ServiceClient
try:
    print(ServiceClient(sys.argv[1], "the test").call(sys.argv[2], request_id=sys.argv[3]))
except ConciergeError as e:
    print(e.message, file=sys.stderr)
    sys.exit(e.exit_code)
"""


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def concierge(store: Store, backend: FakeBackend) -> Concierge:
    return Concierge(store, {"slurm": backend}, understand, load_policy(None))


@pytest.fixture
def service(concierge: Concierge, store: Store, tmp_path: Path) -> Iterator[LoginService]:
    door = LoginDoor(
        concierge, store, Settings(database_url="sqlite://"), site_file=tmp_path / "no-site.yaml"
    )
    running = LoginService(door, LoginServiceSettings(port=0))
    running.start()
    try:
        yield running
    finally:
        running.shutdown()
        running.server_close()


@pytest.fixture
def node(service: LoginService, tmp_path: Path) -> LoginNode:
    return LoginNode(service_site(tmp_path / "site", service.url), login_env(tmp_path / "home"))


def test_alice_and_bob_use_one_store_and_each_sees_their_own(
    node: LoginNode, store: Store, backend: FakeBackend, tmp_path: Path
) -> None:
    alices = node.concierge("alice", "ask", "--yes", TRAIN)
    assert alices.code == 0, alices.err
    assert "#SBATCH --gres=gpu:1" in alices.out and "Submitted job 501 (request" in alices.out
    bobs = node.concierge("bob", "ask", "--yes", EVAL)
    assert bobs.code == 0, bobs.err
    assert [plan.identity.unix_user for plan in backend.submitted] == ["alice", "bob"]

    recorded = store.history(None, 10)
    assert {(r.requester, r.text, r.door, r.job_id) for r in recorded} == {
        ("alice", TRAIN, "cli", "501"),
        ("bob", EVAL, "cli", "502"),
    }
    alice_history = node.concierge("alice", "history")
    assert "train.py" in alice_history.out and "eval.py" not in alice_history.out, alice_history.err
    bob_history = node.concierge("bob", "history")
    assert "eval.py" in bob_history.out and "train.py" not in bob_history.out, bob_history.err
    everyone = node.concierge("bob", "history", "--everyone")
    assert (
        everyone.code == 3
        and everyone.err == "error: only admins may see everybody's requests; drop --everyone to see yours\n"
    )
    assert not (tmp_path / "home" / "never-made.db").exists()  # the login node kept no store


def test_the_question_verbs_answer_as_the_caller(node: LoginNode, backend: FakeBackend) -> None:
    assert node.concierge("alice", "ask", "--yes", TRAIN).code == 0
    queue = node.concierge("bob", "queue", "--json")
    assert queue.code == 0, queue.err
    assert [job["user"] for job in json.loads(queue.out)] == ["alice"]
    assert node.concierge("bob", "queue", "--mine").out.count("\n") == 1  # the header alone
    status = node.concierge("alice", "status", "501")
    assert status.code == 0 and "Requested by alice via cli" in status.out, status.out
    why = node.concierge("alice", "why", "501")
    assert why.code == 0, why.err
    free = node.concierge("bob", "free")
    assert free.code == 0 and "a100" in free.out

    refused = node.concierge("bob", "cancel", "501")
    assert refused.code == 3 and "alice" in refused.err and "Traceback" not in refused.err
    cancelled = node.concierge("alice", "cancel", "501")
    assert cancelled.code == 0 and cancelled.out == "Cancelled job 501.\n", cancelled.err
    bobs = node.concierge("bob", "history")
    assert "cancel 501" in bobs.out and "denied" in bobs.out


def test_a_preview_is_submitted_only_by_the_person_who_asked(
    node: LoginNode, store: Store, backend: FakeBackend, service: LoginService
) -> None:
    unanswered = node.concierge("alice", "ask", TRAIN)  # no terminal to ask y/N on
    assert unanswered.code == 2 and "no terminal to ask on" in unanswered.err
    assert "#SBATCH --gres=gpu:1" in unanswered.out
    (preview,) = store.history("alice", 1)
    assert preview.outcome == "planned" and backend.submitted == []

    def client(user: str, path: str) -> tuple[int, str]:
        done = node.run(user, sys.executable, "-c", CLIENT, service.url, path, preview.id)
        return done.code, done.err

    code, said = client("bob", protocol.SUBMIT)
    assert code == 3 and "asked by someone else" in said
    code, said = client("bob", protocol.DECLINE)
    assert code == 3 and store.request(preview.id).outcome == "planned"
    code, said = client("alice", protocol.SUBMIT)
    assert code == 0, said
    assert [plan.identity.unix_user for plan in backend.submitted] == ["alice"]
    code, said = client("alice", protocol.SUBMIT)
    assert code == 2 and "no longer a preview (submitted)" in said
    # A late "no" may not rewrite a submitted request (it would drop out of alice's GPUs in flight).
    code, said = client("alice", protocol.DECLINE)
    assert code == 2 and store.request(preview.id).outcome == "submitted"


def test_what_alice_holds_through_slack_counts_at_her_login_node(
    node: LoginNode, store: Store, backend: FakeBackend, concierge: Concierge, fake: FakeSlack
) -> None:
    store.map_identity(ALICE)  # her Slack user runs as unix alice
    door = Door(slack_app(store, fake, concierge), fake, backend, store)
    door.click(SUBMIT_ACTION, door.preview_request_id("4 a100 for 1 hour to run python3 a.py"))
    wait_for(lambda: len(backend.submitted) == 1)
    assert node.concierge("alice", "ask", "--yes", "4 a100 for 1 hour to run python3 b.py").code == 0
    # 8 GPUs held (max_gpus_per_user: 8): one more needs an approver, for alice only.
    over = node.concierge("alice", "ask", "--yes", "1 a100 for 1 hour to run python3 c.py")
    assert over.code == 3, over.err
    assert "needs an approver" in over.err and "8" in over.err
    assert node.concierge("bob", "ask", "--yes", "4 a100 for 1 hour to run python3 d.py").code == 0
    assert [p.identity.unix_user for p in backend.submitted] == ["alice", "alice", "bob"]


def test_forged_lifted_and_replayed_credentials_are_refused(service: LoginService, store: Store) -> None:
    url, path = service.url, protocol.ANSWER
    body = json.dumps({"act_as": None, "kind": "queue"}).encode()
    payload = protocol.bound_payload(protocol.joined(url, path), body)

    def refused(status_and_answer: tuple[int, dict[str, object]]) -> str:
        status, answer = status_and_answer
        assert status in {401, 403}, answer
        error = answer["error"]
        assert isinstance(error, dict) and error["exit_code"] == 3
        return str(error["message"])

    assert "no MUNGE credential" in refused(post(url, path, body, None))
    assert "not a MUNGE credential" in refused(post(url, path, body, "garbage"))
    assert "refused your MUNGE credential" in refused(post(url, path, body, "MUNGE:AAAAgarbage:"))
    # Root can make a credential as alice; one made for another body or service is still refused.
    other_body = protocol.bound_payload(protocol.joined(url, path), b'{"kind": "queue", "mine": true}')
    assert "made for another request" in refused(
        post(url, path, body, credential("root", other_body, "-U", "alice"))
    )
    other_service = protocol.bound_payload(protocol.joined("http://elsewhere:8790", path), body)
    assert "made for another request" in refused(post(url, path, body, credential("alice", other_service)))
    # Bob cannot have munged vouch for alice, nor act for her with his own.
    assert (
        subprocess.run(
            ["runuser", "-u", "bob", "--", "munge", "-U", "alice", "-n"], capture_output=True
        ).returncode
        != 0
    )
    as_alice = json.dumps({"act_as": "alice", "kind": "queue"}).encode()
    bobs = credential("bob", protocol.bound_payload(protocol.joined(url, path), as_alice))
    assert "only root or an admin may act as another person" in refused(post(url, path, as_alice, bobs))
    # A good credential works once; sent again, munged refuses it.
    alices = credential("alice", payload)
    status, answer = post(url, path, body, alices)
    assert status == 200 and "text" in answer, answer
    assert "used already (a replayed credential)" in refused(post(url, path, body, alices))
    assert [(r.requester, r.text) for r in store.history(None, 10)] == [("alice", "queue")]


def test_a_service_that_is_down_is_an_error_not_a_local_store(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]  # nobody listens once it is closed
    node = LoginNode(
        service_site(tmp_path / "site", f"http://127.0.0.1:{closed}"), login_env(tmp_path / "home")
    )
    for argv in (("queue",), ("ask", "--yes", TRAIN), ("history",)):
        result = node.concierge("alice", *argv)
        assert result.code == 6, result
        named = f"http://127.0.0.1:{closed} (named in /etc/gpu-concierge/site.yaml)"
        assert result.err.startswith(f"error: the concierge service at {named} could not be reached")
        assert "Traceback" not in result.err
    assert not (tmp_path / "home" / "never-made.db").exists()


def test_a_site_file_others_can_write_names_no_service(node: LoginNode) -> None:
    (node.site / "site.yaml").chmod(0o666)
    result = node.concierge("alice", "queue")
    assert result.code == 7 and "not trusted" in result.err and "chmod go-w" in result.err


def test_a_service_url_that_is_not_http_is_refused(tmp_path: Path) -> None:
    site = write_site(tmp_path / "site", "service: {url: 'file:///etc/passwd'}\n")
    result = LoginNode(site, login_env(tmp_path / "home")).concierge("alice", "queue")
    assert result.code == 7 and "service.url" in result.err, result.err


def test_a_login_node_loads_no_store_engine_or_settings(node: LoginNode) -> None:
    """The remote commands import no database driver, engine or settings (nor their start-up time)."""
    for argv in (("queue",), ("ask", "--dry-run", TRAIN), ("history",)):
        result = node.run("alice", *probe_argv(*argv))
        code, modules, heavy = probed(result.err)
        assert code == 0, result.err
        assert heavy == []
        assert "bot.remote.client" in modules  # the probe saw the remote path


def test_root_acts_for_a_person_with_as_and_people_only_for_themselves(
    node: LoginNode, backend: FakeBackend
) -> None:
    for_alice = node.concierge("root", "--as", "alice", "ask", "--yes", TRAIN)
    assert for_alice.code == 0, for_alice.err
    assert [plan.identity.unix_user for plan in backend.submitted] == ["alice"]
    bob_as_alice = node.concierge("bob", "--as", "alice", "queue")
    assert bob_as_alice.code == 3 and "you are bob, not an admin" in bob_as_alice.err


def test_a_system_account_is_refused(node: LoginNode, store: Store) -> None:
    refused = node.concierge("daemon", "queue")  # uid 1: outside login.defs' UID_MIN-UID_MAX
    assert refused.code == 3, refused
    assert "daemon is a system account" in refused.err and "answers people" in refused.err
    assert store.history(None, 10) == []


def test_an_address_that_is_not_the_service_is_said_so(tmp_path: Path, fake: FakeSlack) -> None:
    node = LoginNode(service_site(tmp_path / "site", fake.api_url), login_env(tmp_path / "home"))
    result = node.concierge("alice", "queue")  # the Slack fake answers, but not as the service
    assert result.code == 6 and "without the concierge service's answer" in result.err, result


def test_a_request_over_the_cap_is_refused_before_it_is_read(service: LoginService) -> None:
    status, answer = post(service.url, protocol.ASK, b"x" * (65 * 1024), None)
    assert status == 413 and answer["error"]["exit_code"] == 2


def test_ask_prints_json_and_answers_questions_as_standalone(node: LoginNode, store: Store) -> None:
    planned = node.concierge("alice", "ask", "--dry-run", "--json", TRAIN)
    assert planned.code == 0, planned.err
    printed = json.loads(planned.out)  # nothing but the JSON on stdout
    assert printed["decision"]["verdict"] == "allow" and printed["backend"] == "slurm"
    assert store.history("alice", 1)[0].outcome == "dry_run"
    submitted = json.loads(node.concierge("alice", "ask", "--yes", "--json", TRAIN).out)
    assert submitted["submitted"]["job_id"] == "501"
    refused = node.concierge("alice", "ask", "--yes", "--json", "16 a100 for 1 hour to run python3 big.py")
    assert refused.code == 3 and json.loads(refused.out)["submitted"] is None and "16" in refused.err
    no_prompt = node.concierge("alice", "ask", "--json", TRAIN)
    assert no_prompt.code == 2 and "--json prints no prompt" in no_prompt.err
    asked = node.concierge("alice", "ask", "why is 501 pending?")
    assert asked.code == 0 and "501" in asked.out, asked.err


def test_serve_without_slack_serves_the_login_nodes(tmp_path: Path) -> None:
    port, probes_port = free_port(), free_port()
    env = cli_env(
        tmp_path,
        f"sqlite:///{tmp_path / 'service.db'}",
        LOGIN_SERVICE__PORT=str(port),
        METRICS__HOST="127.0.0.1",
        METRICS__PORT=str(probes_port),
    )
    node = LoginNode(
        service_site(tmp_path / "site", f"http://127.0.0.1:{port}"), login_env(tmp_path / "home")
    )
    with concierge_serve(env) as served:
        wait_for(lambda: listening(port) or served.poll() is not None, timeout=60)
        assert served.poll() is None, "serve ended before the login service opened its port"
        history = node.concierge("alice", "history", "--all")
        assert history.code == 0 and history.out == "No requests recorded yet.\n", history
        # Its probes and metrics, as the Slack bot's: ready once the database answers.
        base = f"http://127.0.0.1:{probes_port}"
        with urllib.request.urlopen(f"{base}/readyz", timeout=5) as ready:
            assert ready.status == 200
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as scraped:
            assert b"concierge_requests_total" in scraped.read()
