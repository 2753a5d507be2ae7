"""`/gpu new` and the preview's Edit button: a modal form instead of a sentence.

The form's fields become a `JobRequest` directly (no language to understand), which goes through
the engine's `prepare_request`: the same defaults, policy and plan as typed words, and the same
preview with Submit/Edit/Cancel, sent to the person as a DM from the app (it works in any channel,
even one the bot was not invited to).

Timing: a `trigger_id` is valid for 3 s, so the modal is opened from the background work at once;
the only cluster call before it (the GPU types for the select) gets a 1 s deadline, and when the
cluster is slower the form falls back to the types read last time, or to a text field. A
submission is checked while it is acknowledged (parsing only, microseconds), because only the ack
can put errors next to the fields (`response_action: errors`); the slow part (planning, the
cluster check) runs after the ack on our pool.

`private_metadata` carries only the id of the request being edited, if any. The fields arrive as
typed (modal inputs are not escaped by Slack): `text_in.form_value` reads them, and decodes nothing.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from pydantic import ValidationError
from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.models.blocks import (
    Block,
    InputBlock,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from backends.durations_text import duration
from backends.errors import ConciergeError, PermissionDenied
from backends.types import JobRequest
from bot.conversations.drafts import SUPERSEDED
from bot.engine import Concierge
from bot.slack import blocks
from bot.slack.commands import ResolveIdentity
from bot.slack.incidents import dm_reply, replying
from bot.slack.listeners import Background
from bot.slack.submission import DOOR, prepared_from
from bot.slack.text_in import form_value
from bot.store import Store
from bot.understanding.durations import parse_duration

log = logging.getLogger("concierge.slack")
FORM_CALLBACK = "gpu_new_request"
NEW_WORD = "new"
GPU_TYPES_DEADLINE_S = 1.0
_VALUE = "value"  # every input's action id; the block id names the field
GPUS, GPU_TYPE, TIME, PLACE, IMAGE, COMMAND = "gpus", "gpu_type", "time", "place", "image", "command"
# Which form field a JobRequest validation error belongs to.
_FIELD_BLOCKS = {
    "gpus": GPUS,
    "gpu_type": GPU_TYPE,
    "time_limit_minutes": TIME,
    "partition": PLACE,
    "namespace": PLACE,
    "image": IMAGE,
    "command": COMMAND,
}
_SELECT_LIMIT = 100  # Slack's limit on a static select's options


class GpuTypes:
    """The cluster's GPU types for the select, read within a deadline; the last answer is kept."""

    def __init__(self, concierge: Concierge) -> None:
        self._concierge = concierge
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="slack-gpu-types")
        self._known: tuple[str, ...] = ()

    def within(self, seconds: float) -> tuple[str, ...]:
        try:
            return self._pool.submit(self._read).result(timeout=seconds)
        except FutureTimeout:
            return self._known  # the read goes on and refreshes `_known` for the next form

    def _read(self) -> tuple[str, ...]:
        try:
            pools = self._concierge.capacity()
        except ConciergeError as e:
            log.info("GPU types unreadable for the form: %s", e.message)
            return self._known
        self._known = tuple(sorted({p.gpu_type for p in pools if p.gpu_type}))[:_SELECT_LIMIT]
        return self._known


def form_view(
    gpu_types: tuple[str, ...], request: JobRequest | None = None, edits: str | None = None
) -> View:
    """The modal; `request` prefills it (Edit), `edits` is the request id it replaces."""
    shown = request or JobRequest()
    place = shown.partition or shown.namespace
    time_text = duration(minutes=shown.time_limit_minutes) if shown.time_limit_minutes else None
    fields: list[Block] = [
        InputBlock(
            block_id=GPUS,
            label="GPUs",
            element=NumberInputElement(
                action_id=_VALUE,
                is_decimal_allowed=False,
                min_value=0,
                max_value=1024,
                initial_value=shown.gpus if shown.gpus is not None else None,
            ),
        ),
        InputBlock(
            block_id=GPU_TYPE,
            label="GPU type",
            optional=True,
            element=_type_element(gpu_types, shown.gpu_type),
        ),
        InputBlock(
            block_id=TIME,
            label="Time",
            hint="e.g. 4h, 90 min, 1-12:00:00",
            element=PlainTextInputElement(action_id=_VALUE, initial_value=time_text, placeholder="4h"),
        ),
        _optional_text(PLACE, "Partition or namespace", place),
        _optional_text(IMAGE, "Image", shown.image),
        InputBlock(
            block_id=COMMAND,
            label="Command",
            element=PlainTextInputElement(
                action_id=_VALUE,
                multiline=True,
                initial_value=shown.command,
                placeholder="python3 train.py --epochs 10",
            ),
        ),
    ]
    return View(
        type="modal",
        callback_id=FORM_CALLBACK,
        title="New GPU request",
        submit="Preview",
        close="Cancel",
        blocks=fields,
        private_metadata=json.dumps({"edits": edits}) if edits else "",
    )


def read_form(values: dict[str, Any]) -> tuple[JobRequest | None, dict[str, str]]:
    """The form's `state.values` as a request, or the errors to show, keyed by block id."""
    errors: dict[str, str] = {}
    gpus_text = _entered(values, GPUS)
    gpus: int | None = None
    if gpus_text is not None:
        try:
            gpus = int(gpus_text)
        except ValueError:
            errors[GPUS] = f"“{gpus_text}” is not a whole number of GPUs; e.g. 2"
    time_text = _entered(values, TIME)
    minutes = parse_duration(time_text) if time_text is not None else None
    if time_text is not None and minutes is None:
        errors[TIME] = f"“{time_text}” is not a time I can read; e.g. 4h, 90 min or 1-12:00:00"
    if errors:
        return None, errors
    gpu_type = _entered(values, GPU_TYPE)
    place = _entered(values, PLACE)
    try:
        request = JobRequest(
            gpus=gpus,
            gpu_type=gpu_type.lower() if gpu_type else None,
            time_limit_minutes=minutes,
            # One field for both: the backend the request is routed to reads the one it knows.
            partition=place,
            namespace=place,
            image=_entered(values, IMAGE),
            command=_entered(values, COMMAND),
        )
    except ValidationError as e:
        for problem in e.errors():
            block = _FIELD_BLOCKS.get(str(problem["loc"][0]) if problem["loc"] else "", COMMAND)
            errors.setdefault(block, f"not accepted: {problem['msg']}")
        return None, errors
    return request, {}


def summary(request: JobRequest, edits: str | None) -> str:
    """What is stored as the person's words for a form request."""
    stated = ", ".join(
        f"{k.replace('_', ' ')} {v}" for k, v in request.model_dump(exclude_defaults=True).items()
    )
    edited = f" (edit of request {edits[:8]})" if edits else ""
    return f"/gpu new form: {stated or 'nothing filled in'}{edited}"


class RequestForm:
    def __init__(
        self, concierge: Concierge, store: Store, resolve_identity: ResolveIdentity, gpu_types: GpuTypes
    ) -> None:
        self._concierge = concierge
        self._store = store
        self._resolve_identity = resolve_identity
        self._gpu_types = gpu_types

    def open_new(self, body: dict[str, Any], client: WebClient) -> None:
        user_id = str(body["user_id"])
        with replying(dm_reply(client, user_id)):
            view = form_view(self._gpu_types.within(GPU_TYPES_DEADLINE_S))
            client.views_open(trigger_id=str(body["trigger_id"]), view=view)

    def open_edit(self, body: dict[str, Any], client: WebClient) -> None:
        user_id, request_id = str(body["user"]["id"]), str(body["actions"][0]["value"])
        with replying(dm_reply(client, user_id)):
            record = self._store.request(request_id)
            if record.requester != user_id:
                raise PermissionDenied("only the person who asked can edit this request")
            request = prepared_from(record).intent.request
            view = form_view(self._gpu_types.within(GPU_TYPES_DEADLINE_S), request, edits=request_id)
            client.views_open(trigger_id=str(body["trigger_id"]), view=view)

    @staticmethod
    def check(ack: Ack, body: dict[str, Any]) -> None:
        """The ack: close the modal, or keep it open with an error under each wrong field."""
        _, errors = read_form(body["view"]["state"]["values"])
        if errors:
            ack(response_action="errors", errors=errors)
        else:
            ack()

    def preview(self, body: dict[str, Any], client: WebClient) -> None:
        user_id = str(body["user"]["id"])
        reply = dm_reply(client, user_id)
        with replying(reply):
            request, _ = read_form(body["view"]["state"]["values"])
            if request is None:
                return  # the ack already showed the errors in the form
            metadata = body["view"].get("private_metadata") or ""
            edits = json.loads(metadata).get("edits") if metadata else None
            identity = self._resolve_identity(user_id)
            prepared = self._concierge.prepare_request(identity, request, DOOR, summary(request, edits))
            if edits and self._store.request(edits).requester == identity.requester:
                # The edit replaces the old preview: its Submit no longer runs anything.
                self._store.settle_open_request(edits, SUPERSEDED)
            client.chat_postMessage(
                channel=user_id,
                text=f"Preview of request {prepared.request_id[:8]}",
                blocks=blocks.as_dicts(blocks.preview(prepared)),
            )


def register_form(
    app: App,
    concierge: Concierge,
    store: Store,
    resolve_identity: ResolveIdentity,
    background: Background,
    *,
    command: str = "/gpu",
) -> None:
    """Call before the general `/gpu` listener: Bolt runs the first listener that matches."""
    form = RequestForm(concierge, store, resolve_identity, GpuTypes(concierge))
    background.register(app.command(command, matchers=[_asks_for_form]), form.open_new)
    background.register(app.action(blocks.EDIT_ACTION), form.open_edit)
    app.view(FORM_CALLBACK)(ack=form.check, lazy=[background(form.preview)])


def _asks_for_form(body: dict[str, Any]) -> bool:
    return str(body.get("text") or "").strip().lower() == NEW_WORD


def _entered(values: dict[str, Any], block_id: str) -> str | None:
    """What the person entered in a field (a select's chosen value), stripped; None when empty."""
    element = (values.get(block_id) or {}).get(_VALUE) or {}
    chosen = element.get("selected_option")
    text = chosen.get("value") if isinstance(chosen, dict) else element.get("value")
    return form_value(str(text)) if text is not None else None


def _type_element(
    gpu_types: tuple[str, ...], current: str | None
) -> StaticSelectElement | PlainTextInputElement:
    if not gpu_types:
        return PlainTextInputElement(action_id=_VALUE, initial_value=current, placeholder="a100")
    names = list(gpu_types) if current is None or current in gpu_types else [current, *gpu_types]
    options = [Option(value=name, label=name) for name in names[:_SELECT_LIMIT]]
    initial = next((o for o in options if o.value == current), None)
    return StaticSelectElement(
        action_id=_VALUE, options=options, initial_option=initial, placeholder="GPU type"
    )


def _optional_text(block_id: str, label: str, current: str | None) -> InputBlock:
    return InputBlock(
        block_id=block_id,
        label=label,
        optional=True,
        element=PlainTextInputElement(action_id=_VALUE, initial_value=current),
    )
