"""`concierge chat`: a conversation in the terminal, kept in the store under a session name.

Lines are read from standard input one at a time, so it works at a terminal and with piped input
alike (`printf '2 a100 for 1 hour to run python x.py\\nyes\\n' | concierge chat`). The session's
state (draft, pending question, last messages) is the same conversation state the Slack threads
keep (bot/conversations), under ("cli", session name, requester): `concierge chat --session x`
later continues where x stopped, on any machine that shares the database.

A cancel the assistant read is carried out only after an explicit "yes" to a prompt naming the job
(bot/confirmation.py); "cancel 1234" typed as such needs none.

Submitting always takes an explicit "yes" to the request's one-line summary, asked right after a
preview and after "submit it"; anything else at that prompt submits nothing (an empty line is
"no", and any other text is read as the next message, e.g. a change to the draft). A request the
policy does not allow gets no prompt at all: "submit it" says why it cannot be submitted, and the
engine judges again at submission anyway. A failed turn prints its error and the session goes on.
"""

from __future__ import annotations

import sys
from typing import Protocol, TextIO

import click

from backends.errors import ConciergeError, PolicyDenied
from backends.types import Identity
from bot import text_render as render
from bot.answers import QUESTIONS, Answer, ConfirmCancel
from bot.conversations import (
    AlreadySubmitted,
    Aside,
    Asked,
    Confirming,
    ConversationKey,
    Conversations,
    Dropped,
    Previewed,
    Turn,
    summary,
)
from bot.conversations.drafts import is_open, prepared_from, validated
from bot.conversations.phrases import NO, YES
from bot.conversations.questions import question_for
from bot.engine import Concierge, Prepared
from bot.store import Store
from bot.terminal_text import echo
from policies import Verdict

DOOR = "cli"
PROMPT = "you> "
_LEAVE = frozenset({"quit", "exit", "bye", "/quit", "/exit"})
HELP = (
    'Say what you need in plain words, e.g. "2 A100s for 4 hours to run python3 train.py".\n'
    'Change it with "make it 4 GPUs", "use H100 instead", "for 3 hours"; "submit it" asks to submit;\n'
    '"never mind" drops it. Ask "queue", "why is 1234 pending", "status 1234", "how many GPUs are free",\n'
    '"cancel 1234". "quit" (or end of input) leaves; `concierge chat --session NAME` comes back to it.'
)


class ChatDoor(Protocol):
    """What the chat needs from the CLI's shared `App` (or a test's stand-in)."""

    @property
    def concierge(self) -> Concierge: ...

    @property
    def store(self) -> Store: ...

    @property
    def identity(self) -> Identity: ...

    @property
    def conversations(self) -> Conversations: ...


@click.command()
@click.option("--session", default="default", show_default=True, help="Conversation to start or continue.")
@click.pass_obj
def chat(door: ChatDoor, session: str) -> None:
    """Talk to the concierge; change the request as you go; "submit it" when ready."""
    Chat(door, session, sys.stdin).run()


class Chat:
    def __init__(self, door: ChatDoor, session: str, stdin: TextIO) -> None:
        self._concierge = door.concierge
        self._store = door.store
        self._conversations = door.conversations
        self._identity = door.identity
        self._stdin = stdin
        self._interactive = stdin.isatty()
        self._key = ConversationKey(door=DOOR, place=session, requester=self._identity.requester)

    def run(self) -> None:
        self._greet()
        text = self._read(PROMPT)
        while text is not None and text.strip().lower() not in _LEAVE:
            text = self._answered(text.strip()) if text.strip() else self._read(PROMPT)

    def _answered(self, text: str) -> str | None:
        """Answer `text`; the next line to handle (a prompt's answer may already be one)."""
        try:
            turn = self._conversations.reply(self._key, text, lambda: self._identity)
            return self._shown(turn)
        except ConciergeError as e:
            echo(f"error: {e.message}", err=True)
            return self._read(PROMPT)

    def _shown(self, turn: Turn) -> str | None:
        match turn:
            case Previewed(prepared=prepared, summary=line, superseded=superseded):
                echo(render.prepared(prepared))
                if superseded is not None:
                    echo(f"(This replaces request {superseded[:8]}, which can no longer be submitted.)")
                if not prepared.allowed:
                    echo(
                        'The policy does not allow this as it is: change it ("make it 4 GPUs"), '
                        "or ask an admin."
                    )
                    return self._read(PROMPT)
                return self._confirmed(prepared, line)
            case Confirming(prepared=prepared, summary=line):
                if not prepared.allowed:
                    raise _not_allowed(prepared)
                return self._confirmed(prepared, line)
            case AlreadySubmitted(request_id=request_id, job_id=job_id):
                echo(f"Request {request_id[:8]} was already submitted as job {job_id}.")
            case Asked(question=question):
                echo(question)
            case Dropped(request_id=request_id):
                dropped = f"request {request_id[:8]}" if request_id else "the request"
                echo(f"Dropped {dropped}; nothing was submitted.")
            case Aside(intent=intent) if intent.kind not in QUESTIONS:
                echo(HELP)
            case Aside():
                return self._answered_question(self._concierge.answer(self._identity, turn.question, DOOR))
        return self._read(PROMPT)

    def _confirmed(self, prepared: Prepared, line: str) -> str | None:
        """Ask for an explicit yes to the summary; the next message when the answer was one."""
        answer = self._read(f"Submit {line}? [y/N] ")
        if answer is not None and YES.match(answer):
            ref = self._concierge.submit(prepared)
            echo(f"Submitted job {ref.job_id} (request {prepared.request_id[:8]}).")
            echo(f"Follow it with: concierge status {ref.job_id}")
            return self._read(PROMPT)
        if answer is not None and not NO.match(answer):
            return answer  # not an answer to the prompt: the person's next message
        echo('Not submitted; the draft is kept: change it, or say "submit it" when ready.')
        return None if answer is None else self._read(PROMPT)

    def _answered_question(self, answer: Answer) -> str | None:
        """Show a question's answer. An order the assistant read (bot/confirmation.py) is carried
        out only after an explicit yes to a prompt naming the job; anything else at the prompt
        keeps the job, and is the person's next message when it is not a no."""
        if not isinstance(answer, ConfirmCancel):
            echo(render.answer(answer))
            return self._read(PROMPT)
        echo(answer.confirm.explanation)
        said = self._read(f"{answer.confirm.action}? [y/N] ")
        confirmed = said is not None and YES.match(said) is not None
        echo(render.answer(self._concierge.confirm(self._identity, answer.request_id, confirmed=confirmed)))
        if said is None or confirmed or NO.match(said):
            return None if said is None else self._read(PROMPT)
        return said

    def _greet(self) -> None:
        state = self._conversations.state(self._key)
        if state.turn == 0:
            echo(f'Session "{self._key.place}" as {self._identity.requester}. "help" for examples.')
            return
        echo(f'Continuing session "{self._key.place}" as {self._identity.requester}.')
        if state.pending_field is not None:
            gathered = validated(state.partial or {})
            echo(f"Still to answer: {question_for(state.pending_field, gathered)}")
        elif state.draft_request_id is not None:
            draft = self._store.request(state.draft_request_id)
            if draft.job_id is not None:
                echo(f"Your last request {draft.id[:8]} was submitted as job {draft.job_id}.")
            elif is_open(draft):
                echo(f'Your draft: {summary(prepared_from(draft).plan)}. Say "submit it" to submit.')

    def _read(self, prompt: str) -> str | None:
        """One line, or None at the end of input. The prompt is shown at a terminal, or when it
        asks for a confirmation (which piped input must be able to see it answered)."""
        if self._interactive or prompt != PROMPT:
            echo(prompt, nl=False)
        line = self._stdin.readline()
        if not line:
            if self._interactive or prompt != PROMPT:
                echo()
            return None
        if not self._interactive and prompt != PROMPT:
            echo(line.rstrip("\n"))  # piped: show the answer after its prompt, as a terminal would
        return line.rstrip("\n")


def _not_allowed(prepared: Prepared) -> PolicyDenied:
    reasons = "; ".join(prepared.decision.reasons)
    if prepared.decision.verdict == Verdict.NEEDS_APPROVAL:
        return PolicyDenied(
            f"not submitted, this request needs an approver: {reasons}. Make it smaller, or ask an admin "
            "(in Slack, its preview has a Request approval button)"
        )
    return PolicyDenied(f"not submitted, the policy refuses it: {reasons}. Change it and ask again")
