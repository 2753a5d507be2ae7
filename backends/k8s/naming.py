"""Kubernetes names derived safely from any text a person wrote.

A workload's name becomes a Deployment or Job name, a Service name and the value of the
`app.kubernetes.io/name` label, so it must satisfy the strictest of them: an RFC 1035 label
(Service names): lowercase letters, digits and '-', starting with a letter, ending with a letter or
digit, at most 63 characters (which also keeps the Job's `job-name` label legal). Accents are
folded to ASCII first, so "Modèle-Été" keeps its letters. When nothing usable is left the name is
`concierge-<short request id>`: a name is never empty. Batch jobs whose name is derived (not
given) carry the short request id, so running the same script twice makes two Jobs.
"""

from __future__ import annotations

import re
import unicodedata

from backends.command_names import script_name, without_script_suffix
from backends.types import JobRequest

MAX_LABEL = 63
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

_NOT_NAME = re.compile(r"[^a-z0-9]+")
_NOT_LABEL_VALUE = re.compile(r"[^A-Za-z0-9_.-]+")
_NOT_ID = re.compile(r"[^a-z0-9]")


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def short_id(request_id: str) -> str:
    return _NOT_ID.sub("", request_id.lower())[:8] or "request"


def dns_label(text: str, fallback: str) -> str:
    """`text` as an RFC 1035 label; `fallback` (already a label) when nothing usable is left."""
    cleaned = _NOT_NAME.sub("-", _ascii(text).lower()).strip("-")
    if cleaned and not cleaned[0].isalpha():
        cleaned = "gpu-" + cleaned
    cleaned = cleaned[:MAX_LABEL].rstrip("-")
    return cleaned or fallback


def label_value(text: str) -> str:
    """`text` as a label value (≤ 63 of [A-Za-z0-9_.-], alphanumeric at both ends; may be empty)."""
    cleaned = _NOT_LABEL_VALUE.sub("-", _ascii(text))[:MAX_LABEL]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)


def _name_from_image(image: str | None) -> str | None:
    if not image:
        return None
    path = image.split("@", 1)[0]
    last = path.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def workload_name(request: JobRequest, request_id: str, *, unique: bool = False) -> str:
    """The name of the Deployment/Job (and Service) a request becomes.

    A name the person gave is used as it is (a second workload of that name is refused by the
    cluster, with a suggestion). A name derived from the model, command or image is too, unless
    `unique`: batch jobs then get the short request id appended, because people run the same
    script again and again (`python train.py` → `train-0f8e9a2c`)."""
    fallback = f"concierge-{short_id(request_id)}"
    if request.name:
        return dns_label(request.name, fallback)
    model = request.model.rstrip("/").rsplit("/", 1)[-1] if request.model else None
    script = script_name(request.command)
    source = model or (script and without_script_suffix(script)) or _name_from_image(request.image)
    derived = dns_label(source or "", fallback)
    if not unique or derived == fallback:
        return derived
    suffix = f"-{short_id(request_id)}"
    return derived[: MAX_LABEL - len(suffix)].rstrip("-") + suffix


def is_namespace(text: str) -> bool:
    return len(text) <= MAX_LABEL and bool(DNS_1123_LABEL.match(text))


def is_name(text: str) -> bool:
    """Whether `text` can be the name of one of our workloads (a DNS-1123 label)."""
    return len(text) <= MAX_LABEL and bool(DNS_1123_LABEL.match(text))
