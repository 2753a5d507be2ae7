"""The MUNGE binaries, as Slurm's own tools use them: `munge` makes a credential on the login node
(munged puts the caller's UID and GID in it; only root may ask for another's), `unmunge` has the
service's munged check it. Both are run with an argument list and the credential or payload on
stdin, never through a shell; what comes back is our own types or errors.

`unmunge` exits non-zero for any credential it does not accept: 17 "Replayed credential" (munged
saw this one already), 15 "Expired credential" (older than its TTL, 300 s by default), 16
"Rewound credential", 8 or 9 for something that is no credential at all, 14/11/… for one made
with another key. Its metadata (`-N`: numbers) comes first, then a blank line, then the payload.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from backends.errors import BackendUnavailable, ConfigurationError, PermissionDenied

CREDENTIAL_PREFIX = "MUNGE:"
MAX_CREDENTIAL_CHARS = 4096  # ours are ~200 characters; anything far longer is not one of ours
_REPLAYED = 17
# unmunge's exit codes (munge_err_t) that say the credential is not acceptable, in words.
_REFUSED = {
    15: "it has expired (older than its time-to-live)",
    16: "it was made in the future (the clocks disagree)",
    _REPLAYED: "it was used already (a replayed credential)",
}


@dataclass(frozen=True)
class Vouched:
    """What munged vouches for: who made the credential, and the payload they put in it."""

    uid: int
    gid: int
    payload: bytes


class CredentialRefused(PermissionDenied):
    """The service's munged did not accept the credential, or it was made for another request."""


def credential_for(payload: bytes, munge: str = "munge", timeout_s: float = 10.0) -> str:
    """A fresh credential from this host's munged, carrying `payload` (the CLI's side)."""
    try:
        made = subprocess.run([munge], input=payload, capture_output=True, timeout=timeout_s, check=False)
    except FileNotFoundError as e:
        raise ConfigurationError(
            "munge is not installed here, and the concierge service named in the site file needs a "
            "MUNGE credential to know who you are: install munge with the site's key (as on every "
            "Slurm node), or ask your admins"
        ) from e
    except subprocess.TimeoutExpired as e:
        raise BackendUnavailable(f"munge did not answer in {timeout_s:.0f} s: is munged running here?") from e
    if made.returncode != 0:
        said = made.stderr.decode(errors="replace").strip().splitlines()
        raise BackendUnavailable(
            f"munge could not make a credential ({said[-1] if said else f'exit {made.returncode}'}): "
            "munged must run on this host (systemctl status munge)"
        )
    return made.stdout.decode().strip()


def vouched_by_munged(
    credential: str, unmunge: str = "unmunge", socket: str | None = None, timeout_s: float = 10.0
) -> Vouched:
    """Decode `credential` with the service's munged (the service's side); `CredentialRefused`
    when munged does not accept it, whatever the reason."""
    if not credential.startswith(CREDENTIAL_PREFIX) or len(credential) > MAX_CREDENTIAL_CHARS:
        raise CredentialRefused("the request's credential is not a MUNGE credential")
    argv = [unmunge, "--numeric", *(["--socket", socket] if socket else [])]
    try:
        decoded = subprocess.run(
            argv, input=credential.encode(), capture_output=True, timeout=timeout_s, check=False
        )
    except FileNotFoundError as e:
        raise ConfigurationError(f"the service cannot check credentials: {unmunge} is not installed") from e
    except subprocess.TimeoutExpired as e:
        raise BackendUnavailable(f"the service's munged did not answer in {timeout_s:.0f} s") from e
    if decoded.returncode != 0:
        why = _REFUSED.get(decoded.returncode)
        if why is None:
            said = decoded.stderr.decode(errors="replace").strip().splitlines()
            why = said[-1].removeprefix("unmunge: Error: ") if said else f"unmunge exit {decoded.returncode}"
        raise CredentialRefused(f"the service refused your MUNGE credential: {why}. Nothing was done.")
    metadata, _, payload = decoded.stdout.partition(b"\n\n")
    fields = dict(_field(line) for line in metadata.decode(errors="replace").splitlines() if ":" in line)
    try:
        # LENGTH: the payload is exactly that long (nothing after it is the credential's).
        return Vouched(
            uid=int(fields["UID"]), gid=int(fields["GID"]), payload=payload[: int(fields["LENGTH"])]
        )
    except (KeyError, ValueError) as e:
        raise BackendUnavailable(f"unmunge answered in a form the service does not know: {fields}") from e


def _field(line: str) -> tuple[str, str]:
    key, _, value = line.partition(":")
    return key.strip(), value.strip()
