"""`CommandRunner` over slurmrestd: the commands the backend runs, sent as REST calls.

The backend and everything above it stay the same; only the wire changes. Each command becomes
one request (capacity two: nodes and partitions), so `command_count` keeps counting controller
calls: `squeue --json` → GET jobs (the same document), `sbatch` → POST job/submit as the person,
`scancel` → DELETE job/{id} as the person, `sinfo` → GET nodes + partitions rendered as sinfo's lines.
REST has no `sbatch --test-only` (validate says nothing) and no sprio; `scontrol show assoc_mgr` is
answered from the slurmdbd plugin's QOS and associations (rest_limits.py: the limits, not their
use). `sacct` → GET /slurmdb/{version}/jobs (rest_accounting.py) where slurmrestd loads the slurmdbd
plugin; where it does not (404) the answer says it keeps no job accounting.

Who: every request carries X-SLURM-USER-NAME (the person for sbatch --uid=… and scancel as_user,
else `rest_user` or the bot's Unix user) and a JWT: `rest_token` (SlurmUser/root may act for
anyone) or one minted per user by `rest_token_command`, kept until a minute before it expires.
The API version is the newest the server's /openapi/v3 (22.05: /openapi) lists that we speak.

Errors: 401/403 → PermissionDenied; an answer with Slurm's own words is judged by those words as
the CLI's stderr is (cli_errors: 22.05 answers even "Invalid partition name" with HTTP 500); a
5xx without them, a timeout or no connection → BackendUnavailable.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import httpx

from backends.errors import BackendRejected, BackendUnavailable, ConfigurationError, PermissionDenied
from backends.slurm import rest_accounting, rest_limits, rest_shapes
from backends.slurm.accounting import NO_ACCOUNTING
from backends.slurm.accounts import PasswdAccounts, UnixAccounts
from backends.slurm.cli_errors import RETRY_AFTER_S, translate_failure
from backends.slurm.runner import SYSTEM_PATH
from backends.slurm.settings import SlurmSettings

_TOKEN_MARGIN_S = 60.0


class _NotOffered(BackendUnavailable):
    """HTTP 404: this server has no such path (another API version)."""


class SlurmRest:
    def __init__(
        self,
        settings: SlurmSettings,
        *,
        accounts: UnixAccounts | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._accounts = accounts or PasswdAccounts()
        self._client = httpx.Client(
            base_url=settings.rest_url, timeout=settings.command_timeout_s, transport=transport
        )
        self._version: str | None = None
        self._tokens: dict[str, tuple[str, float]] = {}
        self.command_count = 0

    # -- who and which version -----------------------------------------------------------------

    def _default_user(self) -> str:
        return self._settings.rest_user or self._accounts.current().name

    def _token(self, user: str) -> str:
        if self._settings.rest_token is not None:
            return self._settings.rest_token.get_secret_value()
        if not self._settings.rest_token_command:
            raise ConfigurationError(
                "slurm.driver is 'rest' but no token source is set: give slurm.rest_token (a JWT of "
                "SlurmUser or root) or slurm.rest_token_command (e.g. scontrol token username={user})"
            )
        cached = self._tokens.get(user)
        if cached and cached[1] - _TOKEN_MARGIN_S > time.time():
            return cached[0]
        argv = [part.replace("{user}", user) for part in self._settings.rest_token_command]
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=self._settings.command_timeout_s,
                env={"PATH": SYSTEM_PATH, "LC_ALL": "C"},
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise BackendUnavailable(f"the token command {argv[0]} could not run: {e}") from e
        token = done.stdout.strip().removeprefix("SLURM_JWT=")
        if done.returncode != 0 or not token:
            raise PermissionDenied(
                f"no Slurm token for {user}: {argv[0]} said {(done.stderr or done.stdout).strip()!r}"
            )
        self._tokens[user] = (token, _expiry(token))
        return token

    def _request(self, program: str, method: str, url: str, user: str, body: Any = None) -> Mapping[str, Any]:
        headers = {"X-SLURM-USER-NAME": user, "X-SLURM-USER-TOKEN": self._token(user)}
        self.command_count += 1
        try:
            answer = self._client.request(method, url, headers=headers, json=body)
        except httpx.TimeoutException as e:
            raise BackendUnavailable(
                f"slurmrestd at {self._settings.rest_url} did not answer within "
                f"{self._settings.command_timeout_s:g} s. Try again in a minute.",
                retry_after=RETRY_AFTER_S,
            ) from e
        except httpx.HTTPError as e:
            raise BackendUnavailable(
                f"slurmrestd at {self._settings.rest_url} could not be reached ({e}); the cluster's "
                "REST service may be down. Try again in a minute.",
                retry_after=RETRY_AFTER_S,
            ) from e
        return _judged(program, answer, user)

    def _versioned(
        self, program: str, method: str, resource: str, user: str, body: Any = None
    ) -> Mapping[str, Any]:
        version = self.version()
        return self._request(program, method, rest_shapes.path(version, resource), user, body)

    def version(self) -> str:
        if self._version is None:
            self._version = self._negotiate()
        return self._version

    def _negotiate(self) -> str:
        user = self._default_user()
        for document in ("/openapi/v3", "/openapi"):
            try:
                paths = self._request("squeue", "GET", document, user).get("paths") or {}
            except _NotOffered:
                continue  # the next place, then the probes
            if (version := rest_shapes.offered_version(paths)) is not None:
                return version
        for version in rest_shapes.SUPPORTED_VERSIONS:
            try:
                self._request("squeue", "GET", rest_shapes.path(version, "ping"), user)
                return version
            except _NotOffered:
                continue
        raise BackendUnavailable(
            f"slurmrestd at {self._settings.rest_url} offers none of the API versions this driver "
            f"speaks ({', '.join(rest_shapes.SUPPORTED_VERSIONS)})",
            retry_after=RETRY_AFTER_S,
        )

    # -- the commands --------------------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: str | None = None,
        as_user: str | None = None,
        include_stderr: bool = False,
    ) -> str:
        del include_stderr  # REST answers have no stderr; warnings travel in the body
        program, options = argv[0], list(argv[1:])
        user = as_user or self._default_user()
        if program == "squeue":
            return json.dumps(self._versioned(program, "GET", "jobs", user))
        if program == "sinfo":
            nodes = self._versioned(program, "GET", "nodes", user)
            partitions = self._versioned(program, "GET", "partitions", user)
            return rest_shapes.sinfo_lines(nodes, partitions)
        if program == "sbatch":
            return self._sbatch(options, stdin or "", user)
        if program == "scancel":
            self._versioned(program, "DELETE", f"job/{options[-1]}", user)
            return ""
        if program == "sacct":
            return self._sacct(options, user)
        if program == "scontrol" and "assoc_mgr" in options:
            return self._assoc_mgr(options, user)
        raise BackendUnavailable(
            f"slurmrestd offers no equivalent of `{' '.join(argv[:3])}`; on the cluster, "
            f"`{' '.join(argv)}` shows it"
        )

    def _sacct(self, options: list[str], user: str) -> str:
        query = rest_accounting.sacct_query(options)
        if query is None:
            raise BackendUnavailable(
                f"slurmrestd offers no equivalent of `sacct {' '.join(options)}` here (only the ended-jobs "
                "query); on the cluster, that command shows it"
            )
        url = rest_accounting.db_path(self.version(), "jobs")
        try:
            body = self._request("sacct", "GET", f"{url}?{urlencode(query)}" if query else url, user)
        except _NotOffered as e:
            raise BackendUnavailable(
                f"slurmrestd at {self._settings.rest_url} serves no {url}: it {NO_ACCOUNTING} (load "
                "its slurmdbd plugin, openapi/dbv0.0.38 on 22.05, to have it)"
            ) from e
        return rest_accounting.sacct_lines(body)

    def _assoc_mgr(self, options: list[str], user: str) -> str:
        """`scontrol show assoc_mgr` from the slurmdbd plugin's QOS and associations (rest_limits.py):
        the limits as defined, without the use the controller counts (summed from the queue)."""
        person = next((o.removeprefix("users=") for o in options if o.startswith("users=")), None)
        version = self.version()
        try:
            qos = self._request("scontrol", "GET", rest_accounting.db_path(version, "qos"), user)
            associations = self._request(
                "scontrol", "GET", rest_accounting.db_path(version, "associations"), user
            )
        except _NotOffered as e:
            raise BackendUnavailable(
                f"slurmrestd at {self._settings.rest_url} serves no slurmdbd QOS or associations (load "
                "its slurmdbd plugin, openapi/dbv0.0.38 on 22.05, to have them)"
            ) from e
        return rest_limits.assoc_mgr_lines(qos, associations, person)

    def _sbatch(self, options: list[str], script: str, user: str) -> str:
        if "--test-only" in options:
            return ""  # REST cannot ask without submitting; submit reports the refusals
        for option in options:
            if option.startswith("--uid="):
                user = option.removeprefix("--uid=")  # the person's primary group comes with them
        version = self.version()
        body = self._versioned(
            "sbatch", "POST", "job/submit", user, rest_shapes.job_submission(script, version)
        )
        job_id = rest_shapes.submitted_job_id(body)
        if job_id is None:
            said = rest_shapes.error_text(body) or repr(dict(body))
            raise BackendRejected(f"slurmrestd did not answer with a job id (it said {said})")
        return job_id + "\n"


def _judged(program: str, answer: httpx.Response, user: str) -> Mapping[str, Any]:
    body = rest_shapes.decoded(answer.text)
    said = rest_shapes.error_text(body)
    if answer.status_code in (401, 403):
        raise PermissionDenied(
            f"slurmrestd refused the credentials for {user} (HTTP {answer.status_code}"
            f"{': ' + said if said else ''}); the token is wrong, expired or may not act for "
            f"{user}: check slurm.rest_token or slurm.rest_token_command"
        )
    if answer.is_success:
        return body  # its `errors` are warnings then ("Requested partition configuration not available now")
    if said and answer.status_code != 404:
        raise translate_failure(program, answer.status_code, said)
    failure = _NotOffered if answer.status_code == 404 else BackendUnavailable
    raise failure(
        f"slurmrestd answered HTTP {answer.status_code} to {answer.request.method} "
        f"{answer.request.url.path}{': ' + said if said else ''}. Try again later; if it persists, "
        "ask the cluster administrators.",
        retry_after=RETRY_AFTER_S,
    )


def _expiry(token: str) -> float:
    """The JWT's `exp` (seconds since the epoch); now + 5 min when it cannot be read."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return time.time() + 300
