"""The Slack door cannot be talked into a cluster identity or an approval it should not give.

Same stack as test_slack_door: `build_app` with a real `WebClient` on the fake Slack, signed requests
through `app.dispatch`, the real engine and store (SQLite and PostgreSQL), a fake cluster backend.
- The email rule: profiles at the site's domain that name system accounts (`slurm@`, `postgres@`,
  `daemon@`, `root@`, `man@`, a uid below UID_MIN on this host) or addresses at other domains are told
  to ask an admin, and nothing is mapped or run; `jane@example.org` becomes `jane`.
- Approvals: the approver who asked, or another Slack account of the same cluster user, cannot
  approve the request; another approver can; a site that opts in lets them.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

import pytest

from backends.errors import ConfigurationError
from backends.types import Identity
from bot.slack.approvals import APPROVE_ACTION, DENY_ACTION, DENY_VIEW, REASON_BLOCK, REASON_INPUT
from bot.slack.blocks import REQUEST_APPROVAL_ACTION, SUBMIT_ACTION
from bot.store import Store
from tests.fakes.slack_app import ALICE, REQUEST_TEXT, Door, buttons, make_door, shown_text, slack_settings
from tests.slack_fake import FakeSlack, block_action_body
from tests.slack_fake.inbound import view_submission_body

APPROVERS = "C0APPROVERS"
BIG_REQUEST = "6 a100 for 2 hours to run python train.py"  # above the 4 GPUs per job: needs approval
CAROL = Identity(requester="U0CAROL", unix_user="carol", is_admin=True)  # an admin: approves
DANA = Identity(requester="U0DANA", unix_user="dana", k8s_user="dana")  # a listed approver who asks too
EVE = Identity(requester="U0EVE", unix_user="alice")  # a listed approver: alice's second Slack account


def trust_door(store: Store, fake: FakeSlack, **extra: Any) -> Door:
    for identity in (ALICE, CAROL, DANA, EVE):
        store.map_identity(identity)
    return make_door(
        store,
        fake,
        identity_rule="email_local_part",
        email_domains=["Example.org"],
        approvers_channel=APPROVERS,
        approvers=[DANA.requester, EVE.requester],
        **extra,
    )


@pytest.fixture
def door(store: Store, fake: FakeSlack) -> Door:
    return trust_door(store, fake)


# --- the email rule ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "why"),
    [
        ("slurm@example.org", "system account on this site's list"),
        ("postgres@example.org", "system account on this site's list"),
        ("daemon@example.org", "system account on this site's list"),
        ("root@example.org", "system account on this site's list"),
        ("man@example.org", "system account (uid 6, outside 1000–60000)"),  # not listed: its uid
        ("jane@other-company.com", "not at this site's domain (example.org)"),
        ("jane@mail.example.org", "not at this site's domain"),
        ("jane@example.org.evil.test", "not at this site's domain"),
        ("jane+gpu@example.org", "not a Unix login"),
    ],
)
def test_the_email_rule_never_maps_a_system_account_or_another_domain(
    door: Door, email: str, why: str
) -> None:
    door.fake.add_user("U0MALLORY", "mallory", email)
    _, url = door.command(REQUEST_TEXT, user=Identity(requester="U0MALLORY"))
    (refused,) = door.answers_to(url)
    shown = shown_text(refused)
    assert "not mapped to a cluster user yet" in shown and why in shown
    assert "Ask an admin to run `concierge users map U0MALLORY --unix YOUR_UNIX_USER`" in shown
    assert door.store.identity_for("U0MALLORY") is None and door.backend.submitted == []
    assert buttons(refused, SUBMIT_ACTION) == []


def test_a_bot_account_is_never_mapped_by_its_email(door: Door) -> None:
    door.fake.add_user("U0BOTTY", "jane", "jane@example.org", is_bot=True)
    _, url = door.command(REQUEST_TEXT, user=Identity(requester="U0BOTTY"))
    (refused,) = door.answers_to(url)
    assert "bot or deactivated" in shown_text(refused) and door.store.identity_for("U0BOTTY") is None


def test_a_person_at_the_sites_domain_is_mapped_to_their_login(door: Door) -> None:
    door.fake.add_user("U0JANE", "jane", "Jane@Example.org")
    _, url = door.command(REQUEST_TEXT, user=Identity(requester="U0JANE"))
    (preview,) = door.answers_to(url)
    assert ", as jane" in shown_text(preview) and buttons(preview, SUBMIT_ACTION)
    assert door.store.identity_for("U0JANE") == Identity(
        requester="U0JANE", unix_user="jane", k8s_user="jane"
    )


def test_the_email_rule_without_domains_refuses_to_start() -> None:
    with pytest.raises(ConfigurationError, match="CONCIERGE_SLACK__EMAIL_DOMAINS"):
        slack_settings(identity_rule="email_local_part")


def test_a_sites_own_system_user_list_keeps_root_and_slurm(store: Store, fake: FakeSlack) -> None:
    door = trust_door(store, fake, system_users=["svc-backup"])
    for user_id, login in [("U0A", "svc-backup"), ("U0B", "slurm"), ("U0C", "root")]:
        fake.add_user(user_id, login, f"{login}@example.org")
        _, url = door.command(REQUEST_TEXT, user=Identity(requester=user_id))
        (refused,) = door.answers_to(url)
        assert "system account" in shown_text(refused) and store.identity_for(user_id) is None


# --- approvals ---------------------------------------------------------------------------------


def ask_for_approval(door: Door, who: Identity) -> str:
    """`who` previews a big request and clicks Request approval; returns the request id."""
    _, url = door.command(BIG_REQUEST, user=who)
    (preview,) = door.answers_to(url)
    (ask,) = buttons(preview, REQUEST_APPROVAL_ACTION)
    request_id = str(ask["value"])
    (sent,) = door.answers_to(door.click(REQUEST_APPROVAL_ACTION, request_id, user=who))
    assert "sent to the approvers" in shown_text(sent)
    assert door.store.request(request_id).outcome == "awaiting_approval"
    return request_id


def decide(door: Door, action: str, request_id: str, approver: Identity) -> str:
    body = block_action_body(
        action,
        request_id,
        approver.requester,
        response_url=door.response_url(),
        channel=APPROVERS,
        message_ts="1700000000.000900",
    )
    assert door.dispatch(body).status == 200
    return str(json.loads(parse_qs(body)["payload"][0])["response_url"])


@pytest.mark.parametrize(
    ("requester", "approver"), [(DANA, DANA), (ALICE, EVE)], ids=["same-slack-id", "same-unix-user"]
)
def test_nobody_approves_their_own_request(door: Door, requester: Identity, approver: Identity) -> None:
    request_id = ask_for_approval(door, requester)
    (refused,) = door.answers_to(decide(door, APPROVE_ACTION, request_id, approver))
    assert f"request {request_id[:8]} is your own, so another approver has to approve it" in shown_text(
        refused
    )
    assert door.backend.submitted == [] and door.store.request(request_id).outcome == "awaiting_approval"
    assert door.fake.calls_to("chat.update") == []
    # Another approver still can: the request waited for them, unclaimed.
    decide(door, APPROVE_ACTION, request_id, CAROL)
    (update,) = door.fake.wait_for("chat.update")
    assert "Approved by <@U0CAROL>" in update["text"]
    (job,) = door.backend.submitted
    assert job.identity.unix_user == requester.unix_user
    (approval,) = [e for e in door.store.audit_events(request_id) if e.action == "approve"]
    assert approval.actor == CAROL.requester


def test_an_approver_may_withdraw_their_own_request_by_denying_it(door: Door) -> None:
    request_id = ask_for_approval(door, DANA)
    decide(door, DENY_ACTION, request_id, DANA)
    (opened,) = door.fake.wait_for("views.open")
    view = json.loads(opened["view"]) if isinstance(opened["view"], str) else opened["view"]
    values = {REASON_BLOCK: {REASON_INPUT: {"type": "plain_text_input", "value": "not needed after all"}}}
    submitted = view_submission_body(
        DENY_VIEW, values, DANA.requester, private_metadata=view["private_metadata"]
    )
    assert door.dispatch(submitted).status == 200
    door.fake.wait_for("chat.update")
    assert door.store.request(request_id).outcome == "denied_by_approver" and door.backend.submitted == []


def test_a_site_that_opts_in_lets_an_approver_approve_their_own(store: Store, fake: FakeSlack) -> None:
    door = trust_door(store, fake, allow_self_approval=True)
    request_id = ask_for_approval(door, DANA)
    decide(door, APPROVE_ACTION, request_id, DANA)
    (update,) = door.fake.wait_for("chat.update")
    assert "Approved by <@U0DANA>" in update["text"]
    (job,) = door.backend.submitted
    assert job.identity.unix_user == "dana" and door.store.request(request_id).job_id is not None
