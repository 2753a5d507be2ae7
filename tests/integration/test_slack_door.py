"""The Slack door end to end, with everything real except Slack's servers and the cluster.

The Bolt app is built by `build_app` with a real `WebClient` pointed at the fake Slack Web API;
signed requests go through `app.dispatch` (bolt-python's own test style) and, once, through a real
HTTP server in HTTP mode. The engine is the real `Concierge` over a real store (SQLite and
PostgreSQL); only the cluster is a fake backend, which can hold a call at a gate so a test can
prove the ack came before the slow work.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from backends.types import Identity
from bot.slack.blocks import CANCEL_ACTION, SUBMIT_ACTION
from bot.slack.serve import http_server
from bot.store import Store
from tests.fakes.slack_app import (
    ALICE,
    BOB,
    EMAIL_RULE,
    REQUEST_TEXT,
    SECRET,
    Door,
    buttons,
    make_door,
    shown_text,
)
from tests.slack_fake import FakeSlack, signed_request, slash_command_body


def test_help_is_answered_privately(door: Door) -> None:
    response, url = door.command("help")
    assert response.status == 200
    (answer,) = door.answers_to(url)
    assert answer["response_type"] == "ephemeral"
    assert "/gpu why 1234" in shown_text(answer)


def test_free_text_is_acked_before_the_work_and_previewed_with_a_submit_button(door: Door) -> None:
    door.backend.gate = threading.Event()  # planning hangs until the test opens the gate
    started = time.monotonic()
    response, url = door.command(REQUEST_TEXT)
    acked_in = time.monotonic() - started
    assert response.status == 200 and acked_in < 1.0
    assert door.fake.responses == []  # the ack came back while the cluster was still being asked
    door.backend.gate.set()
    (preview,) = door.answers_to(url)
    assert preview["response_type"] == "ephemeral"
    (request,) = door.store.history(ALICE.requester)
    (submit,) = buttons(preview, SUBMIT_ACTION)
    (cancel,) = buttons(preview, CANCEL_ACTION)
    assert submit["value"] == cancel["value"] == request.id
    shown = shown_text(preview)  # the summary line, then the script, then the verdict
    assert shown.index("as alice") < shown.index("#SBATCH --gres=gpu:1") < shown.index("*Policy:*")
    assert door.backend.submitted == []


@pytest.mark.parametrize("ephemeral", [True, False], ids=["ephemeral", "shared"])
def test_submit_makes_one_job_and_replaces_the_preview_with_its_id(door: Door, ephemeral: bool) -> None:
    request_id = door.preview_request_id()
    url = door.click(SUBMIT_ACTION, request_id, ephemeral=ephemeral)
    if ephemeral:
        (answer,) = door.answers_to(url)
        assert answer["replace_original"] is True
        shown = shown_text(answer)
    else:
        (update,) = door.fake.wait_for("chat.update")
        assert update["ts"] == "1700000000.000100" and update["channel"] == "C0000CHAN"
        shown = update["text"] + json.dumps(update["blocks"])
    (job,) = door.backend.submitted
    job_id = door.store.request(request_id).job_id
    assert job_id is not None and job.request_id == request_id
    assert f"Submitted job {job_id}" in shown


def test_the_same_click_delivered_twice_makes_one_job(door: Door) -> None:
    request_id = door.preview_request_id()
    door.backend.gate = threading.Event()  # whichever click submits hangs at the cluster
    clicks = [door.click(SUBMIT_ACTION, request_id), door.click(SUBMIT_ACTION, request_id)]
    busy = door.first_answer(clicks)  # the workers may take the two clicks in either order
    assert "being submitted already" in shown_text(busy.body)
    door.backend.gate.set()
    (submitter,) = [url for url in clicks if not url.endswith(busy.token)]
    (done,) = door.answers_to(submitter)
    job_id = door.store.request(request_id).job_id
    assert job_id and f"Submitted job {job_id}" in shown_text(done)
    # A retry after the job exists shows the same job again, and submits nothing.
    (again,) = door.answers_to(door.click(SUBMIT_ACTION, request_id))
    assert f"Submitted job {job_id}" in shown_text(again)
    assert len(door.backend.submitted) == 1


def test_cancel_button_declines_and_submit_afterwards_is_refused(door: Door) -> None:
    request_id = door.preview_request_id()
    (declined,) = door.answers_to(door.click(CANCEL_ACTION, request_id))
    assert declined["replace_original"] is True and "not submitted" in shown_text(declined)
    assert door.store.request(request_id).outcome == "declined"
    (refused,) = door.answers_to(door.click(SUBMIT_ACTION, request_id))
    assert "declined" in shown_text(refused)
    assert door.backend.submitted == []


def test_only_the_requester_can_click_submit(door: Door) -> None:
    request_id = door.preview_request_id()
    (refused,) = door.answers_to(door.click(SUBMIT_ACTION, request_id, user=BOB))
    assert "only the person who asked" in shown_text(refused)
    assert door.backend.submitted == []


@pytest.mark.parametrize(("secret", "age_s"), [("forged-secret", 0), (SECRET, 600)], ids=["forged", "stale"])
def test_a_forged_or_stale_signature_is_refused_with_401(door: Door, secret: str, age_s: int) -> None:
    body = slash_command_body(REQUEST_TEXT, user_id=ALICE.requester, response_url=door.response_url())
    response = door.dispatch(body, secret=secret, timestamp=int(time.time()) - age_s)
    assert response.status == 401
    time.sleep(0.2)  # nothing may follow in the background either
    assert door.fake.responses == [] and door.store.history(ALICE.requester) == []


def test_cancelling_someone_elses_job_is_refused(door: Door) -> None:
    request_id = door.preview_request_id()
    door.answers_to(door.click(SUBMIT_ACTION, request_id))
    job_id = door.store.request(request_id).job_id
    _, url = door.command(f"cancel {job_id}", user=BOB)
    (refused,) = door.answers_to(url)
    assert f"job {job_id} belongs to alice" in shown_text(refused)
    assert door.backend.cancelled == []
    _, url = door.command(f"cancel {job_id}", user=ALICE)
    (done,) = door.answers_to(url)
    assert f"Cancelled job *{job_id}*" in shown_text(done) and door.backend.cancelled == [job_id]


def test_first_contact_maps_the_email_local_part(door: Door) -> None:
    door.fake.add_user("U0CAROL", "carol", "carol@example.org")
    carol = Identity(requester="U0CAROL")
    _, url = door.command(REQUEST_TEXT, user=carol)
    (preview,) = door.answers_to(url)
    assert "as carol" in shown_text(preview)
    mapped = door.store.identity_for("U0CAROL")
    assert mapped is not None and mapped.unix_user == "carol"
    assert door.fake.calls_to("users.info") == [{"user": "U0CAROL"}]


def test_without_a_rule_an_unmapped_person_is_told_to_ask_an_admin(store: Store, fake: FakeSlack) -> None:
    door = make_door(store, fake, identity_rule="none")
    fake.add_user("U0DAVE", "dave", "dave@example.org")
    _, url = door.command(REQUEST_TEXT, user=Identity(requester="U0DAVE"))
    (refused,) = door.answers_to(url)
    assert "concierge users map U0DAVE --unix" in shown_text(refused)
    assert store.identity_for("U0DAVE") is None and door.backend.submitted == []


def test_an_unexpected_error_gets_an_incident_id_and_the_app_keeps_answering(door: Door) -> None:
    door.backend.errors["queue"] = RuntimeError("kaboom inside")
    _, url = door.command("queue")
    (failed,) = door.answers_to(url)
    assert "incident `" in shown_text(failed) and "kaboom" not in shown_text(failed)
    del door.backend.errors["queue"]
    _, url = door.command("free a100")
    (answer,) = door.answers_to(url)
    assert "a100" in shown_text(answer)


def test_a_question_in_free_text_is_answered_not_previewed(door: Door) -> None:
    _, url = door.command("how many gpus are free")
    (answer,) = door.answers_to(url)
    assert buttons(answer, SUBMIT_ACTION) == [] and "Free GPUs" in shown_text(answer)


def test_http_mode_acks_a_signed_command_and_refuses_a_forged_one(door: Door) -> None:
    server = http_server(door.app, door.store, "127.0.0.1", 0, signing_secret=SECRET)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_port}/slack/events"
        url = door.response_url()
        body = slash_command_body("help", user_id=ALICE.requester, response_url=url)

        def post(secret: str) -> int:
            request = urllib.request.Request(
                endpoint, data=body.encode(), headers=signed_request(secret, body), method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as reply:
                    return int(reply.status)
            except urllib.error.HTTPError as e:
                return e.code

        assert post("forged-secret") == 401
        assert post(SECRET) == 200
        (answer,) = door.answers_to(url)
        assert "/gpu queue" in shown_text(answer)
    finally:
        server.shutdown()
        server.server_close()


def test_a_rate_limited_update_is_retried_after_its_retry_after(door: Door) -> None:
    request_id = door.preview_request_id()
    door.fake.rate_limit("chat.update", times=1, retry_after=1)
    door.click(SUBMIT_ACTION, request_id, ephemeral=False)
    (update,) = door.fake.wait_for("chat.update")
    assert [c.status for c in door.fake.calls if c.method == "chat.update"] == [429, 200]
    assert "Submitted job" in update["text"] and len(door.backend.submitted) == 1


def test_a_long_script_is_shown_whole_within_block_kit(door: Door) -> None:
    """Split between lines over sections of at most 3,000 characters each, none of it cut."""
    long_command = "python3 train.py " + " \\\n  ".join(f"--option-{i}=value" for i in range(800))
    response, url = door.command(f"1 a100 for 1 hour to run {long_command}")
    assert response.status == 200
    (preview,) = door.answers_to(url)
    texts = [b["text"]["text"] for b in preview["blocks"] if b["type"] == "section"]
    assert max(map(len, texts)) <= 3000 and len(long_command) > 3 * 3000
    assert all(f"--option-{i}=value" in shown_text(preview) for i in range(800))
    assert "more characters" not in shown_text(preview) and buttons(preview, SUBMIT_ACTION)


def test_free_text_asks_the_language_model_once_for_its_preview(store: Store, fake: FakeSlack) -> None:
    from bot.llm.client import LlmReader
    from bot.llm.routing import RoutedUnderstanding
    from bot.llm.settings import LlmSettings
    from tests.openai_fake import FakeVllm, Structured

    store.map_identity(ALICE)
    unsure = "could I maybe get a couple of a100 things for my experiment, it runs python train.py"
    with FakeVllm() as model:
        model.script(
            Structured({"intent": "submit", "gpus": 2, "gpu_type": "a100", "command": "python train.py"})
        )
        routing = RoutedUnderstanding(LlmReader.from_settings(LlmSettings(url=model.base_url)))
        door = make_door(store, fake, reader=routing.understand, **EMAIL_RULE)
        response, url = door.command(unsure)
        assert response.status == 200
        (preview,) = door.answers_to(url)
        assert buttons(preview, SUBMIT_ACTION) and "#SBATCH --gres=gpu:2" in shown_text(preview)
        assert len(model.completions) == 1 and model.problems == []
