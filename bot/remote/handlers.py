"""The service's side of the CLI's commands: the same engine calls the CLI door makes, answered as
JSON that carries the text the standalone CLI prints (rendered here by bot/text_render.py, so both
read alike) and what the CLI must still do (ask y/N, print JSON, fail with an exit code).

Who asks comes from munged only (`LoginDoor.handle`'s `uid`), never from the body: the uid's login
on this host is the caller, and becomes the person's identity exactly as at a standalone CLI
(bot/identity.py `cli_identity`: the store's mapping, the site file's admins, `--as` for root and
admins only). A system account (bot/system_accounts.py: slurm, munge, postgres, a uid outside
login.defs' range) is refused, as it is when Slack's email rule would map one; root passes, and is
refused as a job's owner just as at the CLI (it acts for a person with --as).

A preview's y/N is a second credentialed call naming the request id: the service submits it only
for the person who asked it, and only while it is still a preview (`decline` may not rewrite the
outcome of a submitted request, which would drop it from the person's GPUs in flight).
"""

from __future__ import annotations

import pwd
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from backends.errors import ConciergeError, PermissionDenied, RequestInvalid
from backends.types import Identity, IntentKind, Target
from bot import text_render as render
from bot.answers import QUESTIONS, ConfirmCancel, Question, QueueAnswer
from bot.engine import Concierge, Prepared, prepared_from
from bot.identity import Caller, cli_identity
from bot.remote import protocol
from bot.settings import Settings
from bot.site_file import SITE_FILE
from bot.store import Store
from bot.store.lifecycle import OPEN
from bot.system_accounts import DEFAULT_SYSTEM_USERS, SystemAccounts

DOOR = "cli"  # recorded as the CLI's own requests: the person's history reads the same
Fields = Mapping[str, Any]
Answered = dict[str, Any]
_BACKENDS: tuple[Target, ...] = ("slurm", "k8s")
# The engine's errors by name, for the CLI to raise the same class (and so the same exit code).
ERROR_KINDS = ("RequestInvalid", "PolicyDenied", "PermissionDenied", "JobNotFound", "BackendRejected",
               "BackendUnavailable", "ConfigurationError")  # fmt: skip


def error_envelope(error: ConciergeError) -> dict[str, Any]:
    """What the CLI needs to fail as the standalone CLI would: the class, its exit code, the line."""
    kind = next((c.__name__ for c in type(error).__mro__ if c.__name__ in ERROR_KINDS), "ConciergeError")
    return {"kind": kind, "exit_code": error.exit_code, "message": error.message}


class LoginDoor:
    def __init__(
        self, concierge: Concierge, store: Store, settings: Settings, *, site_file: Path = SITE_FILE
    ) -> None:
        self._concierge = concierge
        self._store = store
        self._settings = settings
        self._site_file = site_file
        system = settings.slack.system_users if settings.slack is not None else DEFAULT_SYSTEM_USERS
        self._accounts = SystemAccounts.of_this_host(system)
        self._handlers: dict[str, Callable[[Identity, Fields], Answered]] = {
            protocol.ASK: self._ask,
            protocol.SUBMIT: self._submit,
            protocol.DECLINE: self._decline,
            protocol.CONFIRM: self._confirm,
            protocol.ANSWER: self._answer,
            protocol.HISTORY: self._history,
        }

    def caller(self, uid: int) -> Caller:
        """The login munged vouched for, looked up on this host (its accounts are the login nodes')."""
        try:
            login = pwd.getpwuid(uid).pw_name
        except KeyError:
            raise PermissionDenied(
                f"your uid {uid} is not a user on the concierge service's host: it must know the login "
                "nodes' accounts (the same passwd, LDAP or SSSD), as Slurm's own hosts do; tell your admins"
            ) from None
        if uid != 0 and (why := self._accounts.why_system(login)):
            raise PermissionDenied(f"{why}: the concierge service answers people, not system accounts")
        return Caller(login=login, is_root=uid == 0)

    def handle(self, path: str, uid: int, fields: Fields) -> Answered:
        act_as = fields.get("act_as")
        if act_as is not None and not isinstance(act_as, str):
            raise RequestInvalid("act_as must be a login")
        identity = cli_identity(
            self._store, self._settings, act_as, caller=self.caller(uid), site_file=self._site_file
        )
        return self._handlers[path](identity, fields)

    # --- the preview, its y/N -------------------------------------------------------------------

    def _ask(self, identity: Identity, fields: Fields) -> Answered:
        """`concierge ask`'s flow (bot/cli/main.py), with the terminal's part left to the CLI."""
        text = _text(fields, "text")
        dry_run, as_json, yes = _flag(fields, "dry_run"), _flag(fields, "json"), _flag(fields, "yes")
        reading = self._concierge.read(text)
        intent = reading.intent
        if intent.kind not in (IntentKind.SUBMIT, IntentKind.UNKNOWN) and not dry_run:
            if intent.kind not in QUESTIONS:
                return {"help": True}
            if reading.confirm_first is not None and not _flag(fields, "may_prompt"):
                return {"confirm_first": reading.confirm_first.job}  # the CLI says why it cannot ask
            question = Question.of(intent, reading.confirm_first)
            return self._answered(identity, question, as_json=False)
        prepared = self._concierge.prepare(identity, text, DOOR, backend=_backend(fields), reading=reading)
        if as_json:
            return self._printed_json(prepared, submit=not dry_run)
        shown: Answered = {"text": render.prepared(prepared), "request_id": prepared.request_id}
        if dry_run:
            self._concierge.settle(prepared, "dry_run")
            return shown
        if prepared.allowed and not yes:
            return shown | {"confirm": True}
        return shown | self._submitted(prepared)  # refused: the engine records why, the CLI says it

    def _printed_json(self, prepared: Prepared, *, submit: bool) -> Answered:
        printed = dry_run_contract(prepared)
        if not submit:
            self._concierge.settle(prepared, "dry_run")
            return {"json": printed}
        submitted = self._submitted(prepared)
        printed["submitted"] = submitted.get("submitted")
        return {"json": printed} | ({"error": submitted["error"]} if "error" in submitted else {})

    def _submitted(self, prepared: Prepared) -> Answered:
        try:
            ref = self._concierge.submit(prepared)
        except ConciergeError as e:
            return {"error": error_envelope(e)}
        return {"submitted": {"job_id": ref.job_id, "request_id": prepared.request_id}}

    def _submit(self, identity: Identity, fields: Fields) -> Answered:
        prepared = self._own_preview(identity, fields)
        ref = self._concierge.submit(prepared)  # admitted once: a second call is AlreadySubmitted
        return {"submitted": {"job_id": ref.job_id, "request_id": prepared.request_id}}

    def _decline(self, identity: Identity, fields: Fields) -> Answered:
        self._concierge.settle(self._own_preview(identity, fields), "declined")
        return {"text": "Not submitted."}

    def _own_preview(self, identity: Identity, fields: Fields) -> Prepared:
        request_id = _text(fields, "request_id")
        record = self._store.request(request_id)
        if record.requester != identity.requester:
            raise PermissionDenied(
                f"request {request_id[:8]} was asked by someone else: only they can submit or decline it"
            )
        if record.outcome not in OPEN:
            raise RequestInvalid(
                f"request {request_id[:8]} is no longer a preview ({record.outcome.replace('_', ' ')})"
            )
        return prepared_from(record, "ask again with `concierge ask`")

    # --- questions --------------------------------------------------------------------------------

    def _answer(self, identity: Identity, fields: Fields) -> Answered:
        try:
            kind = IntentKind(_text(fields, "kind"))
        except ValueError:
            kind = IntentKind.UNKNOWN
        if kind not in QUESTIONS:
            raise RequestInvalid(f"the service answers only {', '.join(sorted(k.value for k in QUESTIONS))}")
        question = Question(
            kind,
            job=_optional_text(fields, "job"),
            gpu_type=_optional_text(fields, "gpu_type"),
            mine=_flag(fields, "mine"),
            everything=_flag(fields, "everything"),
            backend=_backend(fields),
        )
        return self._answered(identity, question, as_json=_flag(fields, "json"))

    def _answered(self, identity: Identity, question: Question, *, as_json: bool) -> Answered:
        answer = self._concierge.answer(identity, question, DOOR)
        if isinstance(answer, ConfirmCancel):
            confirm = answer.confirm
            return {"confirm_cancel": {"request_id": answer.request_id, "explanation": confirm.explanation,
                                       "action": confirm.action}}  # fmt: skip
        if as_json and isinstance(answer, QueueAnswer):
            return {"json": [job.to_json() for job in answer.jobs]}
        return {"text": render.answer(answer)}

    def _confirm(self, identity: Identity, fields: Fields) -> Answered:
        """The person's y/N to "Cancel job N?": the engine counts it only from the one asked, once."""
        answer = self._concierge.confirm(
            identity, _text(fields, "request_id"), confirmed=_flag(fields, "confirmed")
        )
        return {"text": render.answer(answer)}

    def _history(self, identity: Identity, fields: Fields) -> Answered:
        everyone = _flag(fields, "everyone")
        if everyone and not identity.is_admin:
            raise PermissionDenied("only admins may see everybody's requests; drop --everyone to see yours")
        limit = fields.get("limit", 20)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
            raise RequestInvalid("--limit takes a number of requests from 1 to 1000")
        found = self._concierge.history(
            identity, everyone=everyone, limit=limit, questions=_flag(fields, "questions")
        )
        return {"text": render.history(found)}


def dry_run_contract(p: Prepared) -> dict[str, Any]:
    """The same object `concierge ask --json` prints standalone (bot/cli/main.py)."""
    return {
        "request": p.intent.to_contract() | p.plan.request.model_dump(mode="json"),
        "decision": p.decision.to_contract(),
        "backend": p.plan.backend,
        "plan": p.plan.to_contract(),
        "warnings": list(p.warnings),
    }


def _text(fields: Fields, name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not value:
        raise RequestInvalid(f"the request to the service has no {name}")
    return value


def _optional_text(fields: Fields, name: str) -> str | None:
    value = fields.get(name)
    return value if isinstance(value, str) and value else None


def _flag(fields: Fields, name: str) -> bool:
    return fields.get(name) is True


def _backend(fields: Fields) -> Target | None:
    chosen = fields.get("backend")
    if chosen is None:
        return None
    for name in _BACKENDS:
        if chosen == name:
            return name
    raise RequestInvalid(f"backend must be slurm or k8s, not {chosen!r}")
