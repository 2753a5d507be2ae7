"""`/gpu new`: the modal form, its checks at submission, the preview it leads to, and Edit.

Same door as test_slack_door.py (real Bolt app, real WebClient against the fake Slack, real store
on SQLite and PostgreSQL, a fake cluster); the form's submission is a signed `view_submission`.
"""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import BoltResponse

from bot.slack.blocks import EDIT_ACTION, SUBMIT_ACTION
from bot.slack.form import FORM_CALLBACK
from tests.fakes.slack_app import ALICE, BOB, Door, buttons, entered, shown_text
from tests.slack_fake.inbound import block_action_body, view_submission_body


def submit_form(door: Door, values: dict[str, Any], metadata: str = "") -> BoltResponse:
    body = view_submission_body(FORM_CALLBACK, values, ALICE.requester, private_metadata=metadata)
    return door.dispatch(body)


def opened_view(door: Door, count: int = 1) -> dict[str, Any]:
    return dict(door.fake.wait_for("views.open", count)[-1]["view"])


def inputs(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {block["block_id"]: block["element"] for block in view["blocks"] if block["type"] == "input"}


def test_gpu_new_opens_the_form_with_the_clusters_gpu_types(door: Door) -> None:
    response, _ = door.command("new")
    assert response.status == 200
    (call,) = door.fake.wait_for("views.open")
    assert call["trigger_id"]
    view = call["view"]
    assert view["type"] == "modal" and view["callback_id"] == FORM_CALLBACK
    assert len(view["title"]["text"]) <= 24
    fields = inputs(view)
    assert list(fields) == ["gpus", "gpu_type", "time", "place", "image", "command"]
    assert fields["gpus"]["type"] == "number_input"
    assert [o["value"] for o in fields["gpu_type"]["options"]] == ["a100"]
    assert fields["command"]["multiline"] is True
    assert door.fake.responses == [] and door.store.history(ALICE.requester) == []


def test_a_valid_form_is_previewed_with_submit_in_a_dm(door: Door) -> None:
    values = entered(gpus="2", gpu_type="a100", time="4h", place="gpu", command="python train.py")
    response = submit_form(door, values)
    assert response.status == 200 and response.body in ("", None)
    (preview,) = door.fake.wait_for("chat.postMessage")
    assert preview["channel"] == ALICE.requester
    (request,) = door.store.history(ALICE.requester)
    (submit,) = buttons(preview, SUBMIT_ACTION)
    assert submit["value"] == request.id and request.door == "slack"
    assert request.intent is not None and request.intent["gpus"] == 2
    assert request.intent["time_limit_minutes"] == 240
    assert "#SBATCH --gres=gpu:2" in shown_text(preview) and "as alice" in shown_text(preview)
    assert "gpus 2, gpu type a100, time limit minutes 240" in request.text and door.backend.submitted == []


def test_an_invalid_form_stays_open_with_an_error_under_each_wrong_field(door: Door) -> None:
    values = entered(gpus="two", gpu_type="a100", time="soonish", command="python train.py")
    response = submit_form(door, values)
    answer = json.loads(str(response.body))
    assert answer["response_action"] == "errors"
    assert set(answer["errors"]) == {"gpus", "time"}
    assert "two" in answer["errors"]["gpus"] and "soonish" in answer["errors"]["time"]
    assert door.store.history(ALICE.requester) == []


def test_a_field_the_request_refuses_is_named(door: Door) -> None:
    response = submit_form(door, entered(gpus="2000", time="1h", command="python train.py"))
    answer = json.loads(str(response.body))
    assert answer["response_action"] == "errors" and list(answer["errors"]) == ["gpus"]


def test_edit_opens_the_form_prefilled_and_its_submission_is_a_new_preview(door: Door) -> None:
    request_id = door.preview_request_id("3 a100 for 90 minutes to run python train.py")
    body = block_action_body(EDIT_ACTION, request_id, ALICE.requester, response_url=door.response_url())
    assert door.dispatch(body).status == 200
    view = opened_view(door)
    fields = inputs(view)
    assert fields["gpus"]["initial_value"] == "3"
    assert fields["gpu_type"]["initial_option"]["value"] == "a100"
    assert fields["time"]["initial_value"] == "1 h 30 min"
    assert fields["command"]["initial_value"] == "python train.py"
    assert json.loads(view["private_metadata"]) == {"edits": request_id}
    submit_form(
        door,
        entered(gpus="4", gpu_type="a100", time="1h30m", command="python train.py"),
        view["private_metadata"],
    )
    (preview,) = door.fake.wait_for("chat.postMessage")
    (submit,) = buttons(preview, SUBMIT_ACTION)
    edited = door.store.request(str(submit["value"]))
    assert edited.id != request_id and f"edit of request {request_id[:8]}" in edited.text
    assert "#SBATCH --gres=gpu:4" in shown_text(preview)
    # The old preview is replaced: its Submit runs nothing now.
    assert door.store.request(request_id).outcome == "superseded"
    door.answers_to(door.click(SUBMIT_ACTION, request_id))
    assert door.backend.submitted == []


def test_only_the_requester_can_edit(door: Door) -> None:
    request_id = door.preview_request_id()
    body = block_action_body(EDIT_ACTION, request_id, BOB.requester, response_url=door.response_url())
    assert door.dispatch(body).status == 200
    (refusal,) = door.fake.wait_for("chat.postMessage")
    assert refusal["channel"] == BOB.requester and "only the person who asked" in refusal["text"]
    assert door.fake.calls_to("views.open") == []
