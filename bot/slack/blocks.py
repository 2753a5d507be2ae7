"""Block Kit messages built with `slack_sdk.models.blocks`, whose `to_dict()` checks Slack's limits.

Everything we put in a block is cut to fit first (section text 3,000 characters, header 150, 50
blocks), so a long sbatch script or queue is shown truncated instead of Slack refusing the whole
message.

One way out: every text the bot posts is mrkdwn that the bot wrote, with whatever came from
elsewhere (a person's words, a model's question, job names and reasons from the cluster, error
messages, which quote all of these) passed through `escaped` (`&`, `<`, `>` as entities), so it
cannot form `<!channel>`, `<@U…>`, `<#C…>`, `<!subteam^…>` or a link whose label hides its target.
Slack renders the entities as the characters, so the person reads their own words. The mrkdwn
objects built here are `verbatim`: Slack then links only the control sequences the bot wrote
itself, and does not turn plain words into mentions or channel links. A message's top-level
`text` (what notifications show, also read as mrkdwn) follows the same rule (`commands.Answer`,
`incidents.replying`). Text coming in is decoded once, in bot/slack/text_in.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from backends.footprint import describe_footprint
from backends.types import Plan
from bot.conversations.summary import summary
from bot.engine import Prepared
from bot.text_render import plan_document
from policies import Verdict

SUBMIT_ACTION = "gpu_submit"
CANCEL_ACTION = "gpu_cancel"
EDIT_ACTION = "gpu_edit"  # answered in bot.slack.form: the form, prefilled from the request
REQUEST_APPROVAL_ACTION = "gpu_request_approval"  # answered in bot.slack.approvals
SECTION_LIMIT = 3000
HEADER_LIMIT = 150
MESSAGE_BLOCK_LIMIT = 50
PLAN_SECTIONS = 12  # a preview's script or manifests: ~35,000 characters, well within the 50 blocks
_CODE_FENCE = "```"
_VERDICT_WORDS = {
    Verdict.ALLOW: ":white_check_mark: allowed",
    Verdict.DENY: ":no_entry: denied",
    Verdict.NEEDS_APPROVAL: ":raised_hand: needs an approver",
}


def escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fitted(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mrkdwn(markdown: str) -> MarkdownTextObject:
    """Text the bot wrote, with anything from elsewhere already `escaped`; no automatic links."""
    return MarkdownTextObject(text=markdown, verbatim=True)


def context(markdown: str) -> ContextBlock:
    return ContextBlock(elements=[mrkdwn(markdown)])


def section(markdown: str) -> SectionBlock:
    return SectionBlock(text=mrkdwn(fitted(markdown, SECTION_LIMIT)))


def code(text: str, title: str | None = None) -> SectionBlock:
    """Preformatted text; a long one keeps its head and says how much was left out."""
    head = f"*{escaped(title)}*\n" if title else ""
    room = SECTION_LIMIT - len(head) - 2 * len(_CODE_FENCE) - 40
    body = escaped(text.rstrip("\n")) or " "
    if len(body) > room:
        cut = body[:room]
        body = f"{cut}\n… ({len(body) - len(cut)} more characters)"
    return section(f"{head}{_CODE_FENCE}{body}{_CODE_FENCE}")


def code_in_full(text: str, title: str, most: int = PLAN_SECTIONS) -> list[SectionBlock]:
    """Preformatted text over as many sections as it needs, split between lines, so a script or
    manifests a person approves is shown whole (one section would cut it at 3,000 characters);
    past `most` sections the rest is left out, saying how much and where to see it."""
    head = f"*{escaped(title)}*\n"
    room = SECTION_LIMIT - len(head) - 2 * len(_CODE_FENCE) - 40
    pieces: list[str] = []
    for line in escaped(text.rstrip("\n")).split("\n"):
        while len(line) > room:  # a line longer than a section: cut where it must be
            pieces.append(line[:room])
            line = line[room:]
        if pieces and len(pieces[-1]) + 1 + len(line) <= room:
            pieces[-1] += "\n" + line
        else:
            pieces.append(line)
    shown = [
        section(f"{head if index == 0 else ''}{_CODE_FENCE}{piece or ' '}{_CODE_FENCE}")
        for index, piece in enumerate(pieces[:most])
    ]
    if len(pieces) > most:
        left = sum(len(piece) + 1 for piece in pieces[most:])
        shown.append(section(f"… {left} more characters: `concierge ask --dry-run` shows them all"))
    return shown


def as_dicts(blocks: Sequence[Block]) -> list[dict[str, Any]]:
    """Validate every block against Slack's limits (slack_sdk raises on a breach) and serialise."""
    return [block.to_dict() for block in blocks[:MESSAGE_BLOCK_LIMIT]]


def preview(prepared: Prepared) -> list[Block]:
    plan, decision = prepared.plan, prepared.decision
    # The parts and their order are text_render.prepared's (the terminal's preview), laid out as blocks.
    blocks: list[Block] = [
        HeaderBlock(text=fitted("GPU request: preview", HEADER_LIMIT)),
        section(f"*{escaped(summary(plan))}*"),
    ]
    if plan.environment:
        blocks.append(context(escaped(f"The job {plan.environment}.")))
    title, document = plan_document(plan)
    blocks.extend(code_in_full(document, title))
    reasons = "".join(f"\n• {escaped(r)}" for r in decision.reasons)
    blocks.append(section(f"*Policy:* {_VERDICT_WORDS[decision.verdict]}{reasons}"))
    if prepared.warnings:
        blocks.append(section("\n".join(f":warning: {escaped(w)}" for w in prepared.warnings)))
    blocks.append(context(f"request `{escaped(prepared.request_id[:8])}`"))
    buttons = [
        ButtonElement(text="Edit", action_id=EDIT_ACTION, value=prepared.request_id),
        ButtonElement(text="Cancel", action_id=CANCEL_ACTION, value=prepared.request_id),
    ]
    if prepared.allowed:
        buttons.insert(
            0,
            ButtonElement(text="Submit", action_id=SUBMIT_ACTION, value=prepared.request_id, style="primary"),
        )
    elif decision.verdict == Verdict.NEEDS_APPROVAL:
        buttons.insert(
            0,
            ButtonElement(
                text="Request approval", action_id=REQUEST_APPROVAL_ACTION, value=prepared.request_id
            ),
        )
    blocks.append(ActionsBlock(block_id="gpu_preview_actions", elements=buttons))
    return blocks


def submitted(plan: Plan, job_id: str) -> list[Block]:
    runs_as = plan.identity.unix_user or plan.identity.k8s_user or plan.identity.requester
    return [
        section(
            f":rocket: Submitted job *{escaped(job_id)}* on {plan.backend} as `{escaped(runs_as)}`: "
            f"{escaped(describe(plan))}"
        ),
        context(f"request `{escaped(plan.request_id[:8])}` · follow it with `/gpu status {escaped(job_id)}`"),
    ]


def notice(markdown: str) -> list[Block]:
    return [section(markdown)]


def describe(plan: Plan) -> str:
    """What the job will hold (its footprint, as judged and rendered) and what it runs."""
    request = plan.request
    parts = [describe_footprint(plan.footprint)]
    if request.model:
        parts.append(f"serving {request.model}")
    if request.command:
        parts.append(f"running `{fitted(' '.join(request.command.split()), 200)}`")
    elif request.image:
        parts.append(f"image {request.image}")
    return ", ".join(parts)


def where(plan: Plan) -> str:
    request = plan.request
    if plan.backend == "slurm":
        return f"Slurm, partition {request.partition or 'default'}"
    return f"Kubernetes, namespace {request.namespace or plan.identity.default_namespace or 'default'}"
