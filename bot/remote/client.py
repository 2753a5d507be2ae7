"""The CLI's side: one POST per command to the service the site file names, with a fresh MUNGE
credential bound to it (bot/remote/protocol.py). Stdlib only (urllib), so a login node needs
neither the database's driver nor its credentials, and the CLI starts as fast as it did.

A service that cannot be reached is an error (exit 6), never a quiet fall back to a standalone
store: the person would get a second history and a second set of limits without being told. The
service's refusals come back as the same error classes and exit codes the standalone CLI has.
No proxy from the environment is used and no redirect is followed: a credential goes to the
service named by root's site file, and nowhere else.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from backends import errors
from backends.errors import BackendUnavailable, ConciergeError
from bot.remote import protocol
from bot.remote.munge import credential_for

_KINDS: dict[str, type[ConciergeError]] = {
    kind.__name__: kind
    for kind in (
        errors.RequestInvalid,
        errors.PolicyDenied,
        errors.PermissionDenied,
        errors.JobNotFound,
        errors.BackendRejected,
        errors.BackendUnavailable,
        errors.ConfigurationError,
    )
}


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx is raised as an HTTPError: answered below as "not the service"


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())


@dataclass(frozen=True)
class ServiceClient:
    url: str  # the service's base URL, as the site file names it
    named_in: str  # where that name comes from, for the messages
    act_as: str | None = None
    timeout_s: float = 120.0
    munge: str = "munge"

    def call(self, path: str, **fields: Any) -> dict[str, Any]:
        """The service's answer to one command; raises its error (or why it could not be asked)."""
        body = json.dumps({"act_as": self.act_as, **fields}).encode()
        target = protocol.joined(self.url, path)
        credential = credential_for(protocol.bound_payload(target, body), self.munge)
        request = urllib.request.Request(  # noqa: S310 - http(s) only: the site file checks the URL
            target,
            data=body,
            method="POST",
            headers={
                "Authorization": f"{protocol.SCHEME} {credential}",
                "Content-Type": protocol.CONTENT_TYPE,
            },
        )
        try:
            with _OPENER.open(request, timeout=self.timeout_s) as answer:
                return self._read(answer.read(), answer.status)
        except urllib.error.HTTPError as e:
            return self._read(e.read(), e.code)
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise BackendUnavailable(
                f"the concierge service at {self.url} (named in {self.named_in}) could not be reached "
                f"({reason}); nothing was done. Try again shortly, or tell your admins if it stays down."
            ) from e

    def _read(self, raw: bytes, status: int) -> dict[str, Any]:
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or answer.get("protocol") != protocol.PROTOCOL:
            raise BackendUnavailable(
                f"{self.url} (named in {self.named_in}) answered HTTP {status} without the concierge "
                "service's answer: is it the service's address? Tell your admins."
            )
        failed = answer.get("error")
        if isinstance(failed, dict) and not (status == 200 and _partial(answer)):
            raise error_from(failed)
        return answer


def _partial(answer: dict[str, Any]) -> bool:
    """An answer that carries what was done (a preview shown, JSON printed) beside its refusal:
    the CLI prints that first and then fails with the error, as the standalone CLI does."""
    return "text" in answer or "json" in answer


def error_from(envelope: dict[str, Any]) -> ConciergeError:
    """The service's error as the CLI's own class, with the service's exit code and message."""
    message = str(envelope.get("message") or "the concierge service refused the request")
    error = _KINDS.get(str(envelope.get("kind")), ConciergeError)(message)
    code = envelope.get("exit_code")
    if isinstance(code, int) and not isinstance(code, bool):
        error.exit_code = code
    return error
