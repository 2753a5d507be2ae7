"""What both ends agree on: the paths, the header, and what a MUNGE credential vouches for.

Why the payload binds the request: a MUNGE credential only says "uid N made me in the last five
minutes". Sent as a bare header, one seen on the wire (or kept by a service that is not ours) could
be put on another request, or sent to another service whose munged has not seen it yet (munged's
replay cache is per host). So the credential's payload is this request's digest: the protocol's
name, the full URL it is sent to (the service named in the site file, and the command's path) and
the SHA-256 of the exact body. The service rebuilds it from its own URL and the body it received and
accepts nothing else; munged refuses a second decode of one credential by itself (exit 17,
"Replayed credential"), so each request needs a fresh one.

Stdlib only: the CLI imports this on every remote command.
"""

from __future__ import annotations

import hashlib

PROTOCOL = "gpu-concierge-cli/1"
SCHEME = "MUNGE"  # Authorization: MUNGE <credential>
ASK = "/v1/ask"  # words: a preview (and its submit, with --yes), or a question's answer
SUBMIT = "/v1/submit"  # the y of the y/N: submit a preview by its request id
DECLINE = "/v1/decline"  # the N
CONFIRM = "/v1/confirm"  # the answer to "Cancel job N?" (a cancel the model read)
ANSWER = "/v1/answer"  # a question verb: queue, status, why, free, cancel
HISTORY = "/v1/history"
PATHS = (ASK, SUBMIT, DECLINE, CONFIRM, ANSWER, HISTORY)
CONTENT_TYPE = "application/json"


def bound_payload(url: str, body: bytes) -> bytes:
    """The payload a credential for this request carries: the URL it goes to and its body's digest."""
    return f"{PROTOCOL}\n{url}\n{hashlib.sha256(body).hexdigest()}".encode()


def joined(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + path
