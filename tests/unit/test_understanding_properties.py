"""Properties of the parser over text nobody wrote for it: it never raises, and what it returns is valid.

Two kinds of text: anything at all (`st.text()`), and sentences assembled from request-ish fragments
(counts, GPU models, times, memory, labels, quotes, shell metacharacters, newlines) that reach deep
into the readers, where a crash or an invalid value would hide.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from backends.types import Intent, IntentKind, JobRequest
from bot.understanding.grammar import understand, understand_in_detail

# fmt: off
FRAGMENTS = [
    "0", "1", "2", "8", "1024", "1025", "99999999999999999999", "1.5", "3.7", "a", "an", "one", "twenty-four",
    "a couple of", "dozen", "x", "\u00d7", "*", "A100", "a100-80gb", "A100 80GB", "H100s", "RTX 6000 Ada",
    "t4",
    "gpu", "gpus", "GPUs", "for", "4h", "90m", "1-00:00:00", "45:00", "2-12", "0 hours", "400 days", "half",
    "an hour and a half", "1g.5gb", "3g.40gb", "MIG slice", "nodes", "2 nodes", "across", "in total", "each",
    "replicas", "port", "port 0", "partition", "account", "qos", "namespace", "named", "job name", "called",
    "64G", "512MB", "48Gi", "0GB", "1e400GB", "ram", "memory", "at least", "vram", "cpus", "16 cores", "-c",
    "python", "python x.py", "bash", "./run.sh", "--lr 3e-4", "torchrun", "run", "to run", "executing", ":",
    ",", ".", "?", "(", ")", "'", '"', "`", "```", "\n", "\t", "|", "#SBATCH --uid=0", "$(rm -rf /)",
    "; rm -rf ~",
    "deploy", "serve", "meta-llama/Llama-3.1-8B", "ghcr.io/a/b:1", "image", "nvidia/cuda:12.4", "/etc/passwd",
    "slurm", "sbatch", "k8s", "kubernetes", "deployment", "shared", "time-sliced", "why", "cancel", "status",
    "free", "queue", "help", "report", "how many", "when will", "job", "1234", "1234_5", "pending", "\u00e9",
    "\u0130",
]
# fmt: on
request_like = st.lists(st.sampled_from(FRAGMENTS), max_size=16).map(" ".join)
glued = st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join)


def _assert_valid(text: str) -> None:
    understanding = understand_in_detail(text)
    intent = understanding.intent
    # Round trips through validation: every value is one JobRequest accepts.
    assert Intent.model_validate(intent.model_dump()) == intent
    JobRequest.model_validate(intent.request.model_dump())
    json.dumps(intent.to_contract())
    assert 0.0 <= understanding.confidence <= 1.0
    if intent.kind == IntentKind.UNKNOWN:
        assert intent.message
    if intent.request.command is not None:
        assert intent.request.command == intent.request.command.strip()


@settings(max_examples=1000, deadline=None)
@given(st.text(max_size=300))
def test_never_raises_on_any_text(text: str) -> None:
    _assert_valid(text)


@settings(max_examples=2000, deadline=None)
@given(st.one_of(request_like, glued))
def test_never_raises_on_request_like_text(text: str) -> None:
    _assert_valid(text)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(FRAGMENTS), st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_a_name_or_label_value_never_spans_lines(label: str, value: str) -> None:
    intent = understand(f"1 gpu, {label} {value}, python x.py")
    for field in ("partition", "account", "qos", "namespace", "name", "image", "model"):
        held = getattr(intent.request, field)
        assert held is None or ("\n" not in held and "\r" not in held)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="`", codec="utf-8"), min_size=1, max_size=60))
def test_a_backticked_command_is_kept_verbatim(arguments: str) -> None:
    # A program and its arguments (a lone quoted "org/name" is read as a model id, by design).
    command = f"tool {arguments}"
    intent = understand(f"run `{command}` on 2 gpus")
    assert intent.kind == IntentKind.SUBMIT
    assert intent.request.command == command.strip()
    assert intent.request.gpus == 2
