"""Approvals: a request above the approval threshold goes to the approvers' channel, not the cluster.

The requester's preview shows **Request approval** instead of Submit; the click posts the request's
summary to `SlackSettings.approvers_channel` with **Approve** / **Deny**, whose value is only the
request id (the plan is read back from the store, as for Submit, so any replica can answer).

Who may decide is checked on every click, from the signed payload's user id: admins in the store
and the Slack ids in `SlackSettings.approvers`. Each decision is claimed once in the store's claims table
(key `slack-approval-decision:<request id>`), so a double click, a Slack retry or two replicas
make one job, and an Approve racing a Deny yields exactly one of them. Approve submits as the
requester (the stored plan's identity) through `Concierge.submit_approved`, which audits the
approver and still refuses what the policy denies. The requester hears the outcome in a DM.

Nobody approves their own request: not by the Slack id that asked, nor by another Slack account
mapped to the same Unix or Kubernetes user (an approval is a second person's judgement). A site may
opt out in so many words with `SlackSettings.allow_self_approval`. Denying one's own request is
allowed: it only withdraws it. The approver's id is Bolt's `body["user"]["id"]`, from a payload
whose signature Bolt checked (HTTP mode) or that came over the app's own Socket Mode connection;
the button's value carries only the request id, never who may decide.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import App, Respond
from slack_sdk import WebClient
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
)
from slack_sdk.models.views import View

from backends.errors import PermissionDenied, RequestInvalid
from backends.types import Identity
from bot.engine import Concierge, Prepared
from bot.slack import blocks
from bot.slack.clicks import clicked, ephemeral, replace_buttons, without_buttons
from bot.slack.commands import ResolveIdentity
from bot.slack.incidents import Reply, dm_reply, replying
from bot.slack.job_updates import remember_clicked_message
from bot.slack.listeners import Background
from bot.slack.settings import SlackSettings
from bot.slack.submission import prepared_from
from bot.store import RequestRecord, Store
from bot.text_render import plan_document

APPROVE_ACTION = "gpu_approve"
DENY_ACTION = "gpu_deny"
DENY_REASON = "an approver declined it"  # when the approver gives no reason
DENY_VIEW = "gpu_deny_reason"
REASON_BLOCK = "deny_reason"
REASON_INPUT = "reason"
MAX_REASON_CHARS = 500
log = logging.getLogger("concierge.slack.approvals")


class Approvals:
    def __init__(
        self,
        concierge: Concierge,
        store: Store,
        settings: SlackSettings,
        resolve_identity: ResolveIdentity,
    ) -> None:
        self._concierge = concierge
        self._store = store
        self._settings = settings
        self._resolve_identity = resolve_identity

    def is_approver(self, user_id: str) -> bool:
        if user_id in self._settings.approvers:
            return True
        identity = self._store.identity_for(user_id)
        return identity is not None and identity.is_admin

    # --- the requester's click -----------------------------------------------------------------

    def ask(self, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        with replying(ephemeral(respond)):
            user_id, request_id = clicked(body)
            channel = self._settings.approvers_channel
            if channel is None:
                raise RequestInvalid(
                    "no approvers' channel is configured, so this request cannot be approved here; ask an "
                    "admin to set CONCIERGE_SLACK__APPROVERS_CHANNEL, or make the request smaller"
                )
            prepared = self._concierge.ask_approval(self._resolve_identity(user_id), request_id)
            if prepared is None:
                ephemeral(respond)(f":hourglass: Request {request_id[:8]} is with the approvers already.")
                return
            remember_clicked_message(self._store, body, request_id)
            client.chat_postMessage(
                channel=channel,
                text=f"<@{user_id}> asks for approval of request {request_id[:8]}",
                blocks=blocks.as_dicts(approval_request(prepared)),
            )
            text = f"Request {request_id[:8]} was sent to the approvers; you will hear back in a DM."
            respond(
                text=text,
                blocks=blocks.as_dicts(blocks.notice(f":raised_hand: {text}")),
                replace_original=True,
            )

    # --- the approvers' clicks -----------------------------------------------------------------

    def approve(self, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        with replying(ephemeral(respond)):
            decided = self._decide(*clicked(body), ephemeral(respond), approving=True)
            if decided is None:
                return
            approver, record = decided
            try:
                ref = self._concierge.submit_approved(prepared_from(record), approver)
            except Exception as e:
                failed = f"Request {record.id[:8]} was approved but could not be submitted: "
                _tell_requester(client, record.requester, failed + _said(e))
                _replace_buttons(body, respond, client, f":warning: {failed}{_said(e)}")
                raise
            runs = f"job *{blocks.escaped(ref.job_id)}*"
            approved = f":white_check_mark: Approved by <@{approver.requester}>: {runs} submitted."
            _replace_buttons(body, respond, client, approved)
            _tell_requester(
                client,
                record.requester,
                f":white_check_mark: <@{approver.requester}> approved request {record.id[:8]}: "
                f"submitted as {runs}. Updates follow in its thread.",
            )

    def deny(self, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        """Deny asks for a reason first: a modal, whose submission (`deny_with_reason`) decides."""
        with replying(ephemeral(respond)):
            user_id, request_id = clicked(body)
            if not self.is_approver(user_id):
                raise PermissionDenied("only approvers can approve or deny requests; this one waits for them")
            container = body.get("container") or {}
            where = {
                "request_id": request_id,
                "channel": container.get("channel_id"),
                "ts": container.get("message_ts"),
                "blocks": without_buttons(body),
            }
            client.views_open(trigger_id=str(body["trigger_id"]), view=deny_reason_view(request_id, where))

    def deny_with_reason(self, body: dict[str, Any], client: WebClient) -> None:
        user_id = str(body["user"]["id"])
        with replying(dm_reply(client, user_id)):
            where = json.loads(body["view"]["private_metadata"])
            request_id = str(where["request_id"])
            said = body["view"]["state"]["values"].get(REASON_BLOCK, {}).get(REASON_INPUT, {}).get("value")
            reason = " ".join(str(said or "").split())[:MAX_REASON_CHARS] or DENY_REASON
            decided = self._decide(user_id, request_id, dm_reply(client, user_id), approving=False)
            if decided is None:
                return
            approver, record = decided
            self._concierge.deny_approval(approver, record, reason)
            if where.get("channel") and where.get("ts"):
                markdown = (
                    f":no_entry: Denied by <@{approver.requester}>: {blocks.escaped(reason)}. Not submitted."
                )
                shown = list(where.get("blocks") or []) + blocks.as_dicts(blocks.notice(markdown))
                client.chat_update(channel=where["channel"], ts=where["ts"], text=markdown, blocks=shown)
            _tell_requester(
                client,
                record.requester,
                f":no_entry: <@{approver.requester}> denied request {record.id[:8]}: "
                f"{blocks.escaped(reason)}. It was not submitted. Ask for fewer GPUs or less time "
                "to run without approval.",
            )

    def _decide(
        self, user_id: str, request_id: str, reply: Reply, *, approving: bool
    ) -> tuple[Identity, RequestRecord] | None:
        """The approver and the request, when this decision is the one that counts; else None."""
        if not self.is_approver(user_id):
            raise PermissionDenied("only approvers can approve or deny requests; this one waits for them")
        record = self._store.request(request_id)
        approver = self._store.identity_for(user_id) or Identity(requester=user_id)
        if approving and not self._settings.allow_self_approval and _own_request(approver, record):
            raise PermissionDenied(
                f"request {request_id[:8]} is your own, so another approver has to approve it; it still "
                "waits for them (you may deny it yourself to withdraw it)"
            )
        if not self._concierge.decision_claimed(approver, record):
            current = self._store.request(request_id)
            done = f"job {current.job_id}" if current.job_id else current.outcome.replace("_", " ")
            reply(f"Request {request_id[:8]} was decided already ({done}).")
            return None
        return approver, record


def register_approvals(
    app: App,
    concierge: Concierge,
    store: Store,
    settings: SlackSettings,
    resolve_identity: ResolveIdentity,
    background: Background,
) -> Approvals:
    """Request approval / Approve / Deny, acknowledged at once and answered in the background."""
    approvals = Approvals(concierge, store, settings, resolve_identity)
    background.register(app.action(blocks.REQUEST_APPROVAL_ACTION), approvals.ask)
    background.register(app.action(APPROVE_ACTION), approvals.approve)
    background.register(app.action(DENY_ACTION), approvals.deny)
    background.register(app.view(DENY_VIEW), approvals.deny_with_reason)
    return approvals


def approval_request(prepared: Prepared) -> list[Block]:
    """What approvers see: who asks for what, where, as whom, why it needs them; Approve / Deny."""
    plan = prepared.plan
    runs_as = plan.identity.unix_user or plan.identity.k8s_user or plan.identity.requester
    reasons = "".join(f"\n• {blocks.escaped(r)}" for r in prepared.decision.reasons)
    title, document = plan_document(plan)
    return [
        blocks.section(
            f":raised_hand: <@{plan.identity.requester}> asks for approval\n"
            f"*What:* {blocks.escaped(blocks.describe(plan))}\n"
            f"*Where:* {blocks.escaped(blocks.where(plan))}\n"
            f"*As:* `{blocks.escaped(runs_as)}`\n"
            f"*Why it needs an approver:*{reasons}"
        ),
        *blocks.code_in_full(document, title),  # what would run: nobody approves something unseen
        ContextBlock(elements=[MarkdownTextObject(text=f"request `{prepared.request_id[:8]}`")]),
        ActionsBlock(
            block_id="gpu_approval_actions",
            elements=[
                ButtonElement(
                    text="Approve", action_id=APPROVE_ACTION, value=prepared.request_id, style="primary"
                ),
                ButtonElement(text="Deny", action_id=DENY_ACTION, value=prepared.request_id, style="danger"),
            ],
        ),
    ]


def deny_reason_view(request_id: str, where: dict[str, Any]) -> dict[str, Any]:
    """The modal that asks an approver why; `where` (the approvers' message) rides along."""
    metadata = json.dumps(where)
    if len(metadata) > 3000:  # Slack's private_metadata limit: keep what finds the message
        metadata = json.dumps({k: where[k] for k in ("request_id", "channel", "ts")})
    return View(
        type="modal",
        callback_id=DENY_VIEW,
        title=PlainTextObject(text="Deny the request"),
        submit=PlainTextObject(text="Deny"),
        close=PlainTextObject(text="Back"),
        private_metadata=metadata,
        blocks=[
            blocks.section(f"Request `{request_id[:8]}` will not run. The requester is told why."),
            InputBlock(
                block_id=REASON_BLOCK,
                label=PlainTextObject(text="Reason"),
                optional=True,
                element=PlainTextInputElement(
                    action_id=REASON_INPUT,
                    multiline=True,
                    max_length=MAX_REASON_CHARS,
                    placeholder=PlainTextObject(text="e.g. the A100 queue is full this week: try 2 L40S"),
                ),
            ),
        ],
    ).to_dict()


def _replace_buttons(body: dict[str, Any], respond: Respond, client: WebClient, markdown: str) -> None:
    """The decision in place of the buttons, so nobody clicks a decided request again."""
    replace_buttons(body, respond, client, markdown, blocks.notice(markdown), keep_message=True)


def _own_request(approver: Identity, record: RequestRecord) -> bool:
    """Whether the approver is the person the request runs as: the same Slack id or cluster user."""
    if approver.requester == record.requester:
        return True
    runs_as = prepared_from(record).plan.identity
    same_unix = approver.unix_user is not None and approver.unix_user == runs_as.unix_user
    same_k8s = approver.k8s_user is not None and approver.k8s_user == runs_as.k8s_user
    return same_unix or same_k8s


def _tell_requester(client: WebClient, requester: str, text: str) -> None:
    dm = client.conversations_open(users=requester)
    client.chat_postMessage(channel=str(dm["channel"]["id"]), text=text)


def _said(error: Exception) -> str:
    message = getattr(error, "message", None)
    return blocks.escaped(message) if isinstance(message, str) else "an unexpected error (it is logged)"
