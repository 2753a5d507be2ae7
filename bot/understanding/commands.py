"""Finding the command in a request, and taking it out before anything else is read.

The command is found first and blanked out of the text (replaced by spaces, so positions still
line up), because nothing inside it may be read as part of the request: in
"run `torchrun --nproc_per_node=8 pretrain.py` on 8 H100s" the 8 GPUs come from outside the
backticks, and "python eval.py --hours 2" does not ask for two hours.

A quoted or backticked command is taken verbatim (quotes removed, inner text untouched). A quoted
value after a label ("named 'my run'", "image \"pytorch/pytorch:2.3\"") is a value, not a command:
its quotes are blanked and the label readers see it. Otherwise the command starts at a recognisable
head — a known program (python, bash, torchrun, deepspeed, srun, nvidia-smi…), a path (./x, /opt/x),
a script file (train.py), a word followed by a script file ("papermill nb.ipynb"), or any program
name right after "run"/"executing"/"command" — and ends where the request's own details resume:
a comma, a newline, a word like "with"/"for"/"on", or a number with a GPU, time or memory unit.
Flags keep their values ("--lr 3e-4", "-m train"), whatever those values look like.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.understanding.gpu_models import GPU_MODEL
from bot.understanding.lazy_re import lazy
from bot.understanding.numbers import WORD_NUMBER
from bot.understanding.vocabulary import COMMAND_ENDERS, NOT_PROGRAMS

_QUOTED_RE = lazy(
    # A language tag only before a line break: in "```python x.py```" python is the program.
    r"```(?:[a-z0-9_+-]*[ \t]*\n)?(?P<fenced>.*?)```"
    r"|`(?P<backticked>[^`]+)`"
    r"|\"(?P<double>[^\"]+)\""
    r"|\u201c(?P<smart_double>[^\u201d]+)\u201d"
    r"|\u2018(?P<smart_single>[^\u2019]+)\u2019"
    r"|(?<![\w'])'(?P<single>[^'\n]+)'(?![\w'])",
    re.IGNORECASE | re.DOTALL,
)
# A quoted span right after one of these words is that field's value, not the command.
_VALUE_LABEL_RE = lazy(
    r"(?:\b(?:name|named|called|title|titled|image|container|partition|account|qos|namespace|ns|model"
    r"|deployment|job|tag|label|pod|service)|--[a-z-]+)\s*(?:is\s+|as\s+)?[:=]?\s*$",
    re.IGNORECASE,
)
_FLAG_BEFORE_RE = lazy(r"(?:^|\s)--?[a-z][\w-]*[ =]?$", re.IGNORECASE)
# One token that names an image or a model ("org/name", "registry/repo:tag") is a value when quoted.
_REFERENCE_TOKEN_RE = lazy(r"^[a-z0-9][\w.\-]*(?:/[\w.\-]+)+(?::[\w.\-]+)?(?:@sha256:[0-9a-f]+)?$", re.I)
_SCRIPT_SUFFIX = r"\.(?:py|sh|bash|zsh|jl|r|rb|pl|lua|js|mjs|ts|ipynb|exe|bin|out|slurm|sbatch)"

_KNOWN_PROGRAMS = (
    r"python[\d.]*|pypy3?|ipython|bash|sh|zsh|torchrun|deepspeed|accelerate|srun|mpirun|mpiexec"
    r"|horovodrun|nvidia-smi|nvcc|nsys|ncu|julia|rscript|java|jupyter|papermill|conda|mamba|micromamba"
    r"|pip3?|uv|uvx|poetry|pixi|singularity|apptainer|enroot|huggingface-cli|llamafactory-cli|lm_eval"
    r"|echo|cd|sleep|hostname|gpu-burn|matlab|octave|cargo|composer|tensorboard|vllm\s+serve"
)
_AT_WORD_START = r"(?:^|(?<=[\s:,;(]))"
_AT_WORD_END = r"(?=$|[\s,;)])"
_ENV_PREFIX = r"(?-i:(?:[A-Z_][A-Z0-9_]*=\S*\s+)*)"  # CUDA_VISIBLE_DEVICES=0 python …
_HEAD_RE = lazy(
    rf"{_AT_WORD_START}{_ENV_PREFIX}(?:"
    rf"(?:{_KNOWN_PROGRAMS}){_AT_WORD_END}"
    r"|(?:\.{1,2}/|~/|/)[\w.\-/]+"
    rf"|[\w.\-/]+{_SCRIPT_SUFFIX}{_AT_WORD_END}"
    rf"|(?!(?:run|runs|execute|exec|launch|start|submit|schedule|queue|sbatch|then|and|to|please|with|the"
    rf"|my|a|an|script|file|using|via|on|in|of|for|me){_AT_WORD_END})[a-z_][\w.\-]*(?=\s+[\w.\-/]+{_SCRIPT_SUFFIX}"
    rf"{_AT_WORD_END})"
    r")",
    re.IGNORECASE,
)
_AFTER_VERB_RE = lazy(
    r"\b(?:run|running|execute|executing|exec|launch|launching|command|cmd|start|starting)"
    # "command is python x.py", "cmd = ./a.sh": the linking word is not the program
    r"(?:\s+(?:is|was|would\s+be|should\s+be|will\s+be)\b\s+|\s*[:=]\s*|\s+)"
    r"(?P<head>[a-z_][\w.\-]*)(?=$|[\s,;])",
    re.IGNORECASE,
)
# A token at which the request's details resume, so the command ends before it.
_DETAIL_UNIT = (
    r"(?:gpus?|cards?|nodes?|cpus?|cores?|vcpus?|replicas?|hours?|hrs?|h|minutes?|mins?|m|days?|d"
    r"|weeks?|w|seconds?|secs?|s|gb|g|gi|gib|tb|mb)"
)
_DETAIL_START_RE = lazy(
    rf"(?:(?:\d+(?:\.\d+)?\s*|{WORD_NUMBER}\s+)(?:x\s*)?(?:{_DETAIL_UNIT}|{GPU_MODEL})(?![\w-]|\.\w)"
    rf"|(?:{GPU_MODEL})(?![\w-]|\.\w)"
    r"|(?:gpus?|partition|account|qos|namespace|walltime|time\s+limit|replicas?|port|nodes?|slurm|sbatch"
    r"|kubernetes|k8s|image|named|called|job\s+name|memory|ram|mem)\b"
    r"|(?:to|into|onto)\s+(?:slurm|kubernetes|k8s|the\s+(?:\w+\s+)?(?:cluster|queue|partition))\b"
    r"|\d+-\d+:\d+|\d+:\d\d(?::\d\d)?(?![\w:]))",
    re.IGNORECASE,
)
_TOKEN_RE = lazy(r"\S+")
_THEN_RE = lazy(
    r"\s*(?:[,;]|&&|\band\b|\bthen\b|\band\s+then\b|\bafter\s+that\b|\bfollowed\s+by\b|\s)*\s*", re.I
)
# Lines after a command's line that are more of it: another command, or a shell line that is no English
# ("cd /data", "source venv/bin/activate"); or any line after one that ends in a continuation.
_SHELL_LINE_RE = lazy(
    rf"{_ENV_PREFIX}(?:(?:cd|source|export|module|ml|mkdir|cp|mv|rm|ln|tar|wget|curl|git|make|cmake|unset"
    r"|set\s+-|ulimit|srun|fi|done|for\s+\w+\s+in|if\s+\[|while\s+\[)\b|[.$]|(?-i:[A-Z_][A-Z0-9_]*=\S))",
    re.IGNORECASE,
)
_CONTINUES_RE = lazy(r"(?:\\|&&|\|\||\||;)\s*$")
# A full stop after a word ends the sentence, not the command ("run python train.py.").
_SENTENCE_END_RE = lazy(r"(?<=[\w)\]'\"])\.+$")


@dataclass(frozen=True)
class CommandSplit:
    """The command found in a request, and the request with it blanked out (same length)."""

    command: str | None
    remainder: str


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


def _quoted_body(match: re.Match[str]) -> tuple[str, int, int]:
    for name in ("fenced", "backticked", "double", "smart_double", "smart_single", "single"):
        if match.group(name) is not None:
            return match.group(name), match.start(name), match.end(name)
    raise AssertionError("the quoted-span pattern has no other alternatives")


def _split_quoted(text: str) -> tuple[str | None, str]:
    """The quoted command (the lines of those quoted one after another), and the text with it
    blanked and label values unquoted."""
    lines: list[str] = []
    remainder = text
    command_end = 0
    for match in _QUOTED_RE.finditer(text):
        body, body_start, body_end = _quoted_body(match)
        before = text[max(0, match.start() - 30) : match.start()]
        if _FLAG_BEFORE_RE.search(before):
            continue  # "python -c 'import torch'": an argument inside an unquoted command, left in place
        is_value = bool(_VALUE_LABEL_RE.search(before))
        is_reference = bool(_REFERENCE_TOKEN_RE.match(body.strip()))
        # "`python a.py` then `python b.py`": a second quoted command after the first is its next line.
        follows = not lines or _THEN_RE.fullmatch(text, command_end, match.start()) is not None
        if is_value or is_reference or not follows:
            # Keep the value where it was, without its quotes, for the field readers.
            remainder = _blank(remainder, match.start(), body_start)
            remainder = _blank(remainder, body_end, match.end())
            continue
        if body.strip():
            lines.append(body.strip())
            remainder = _blank(remainder, command_end if len(lines) > 1 else match.start(), match.end())
            command_end = match.end()
    return ("\n".join(lines) if lines else None), remainder


def _find_head(text: str) -> int | None:
    starts: list[int] = []
    position = 0
    while (head := _HEAD_RE.search(text, position)) is not None:
        # "one v100 ./check.sh": a GPU model or a count is never the program, whatever follows it.
        if not _DETAIL_START_RE.match(text, head.start()):
            starts.append(head.start())
            break
        position = head.start() + 1
    for after_verb in _AFTER_VERB_RE.finditer(text):
        if after_verb.group("head").lower() not in NOT_PROGRAMS and not _DETAIL_START_RE.match(
            text, after_verb.start("head")
        ):
            starts.append(after_verb.start("head"))
            break
    return min(starts) if starts else None


def _command_end(text: str, start: int) -> int:
    """Where the command that starts at `start` ends (exclusive), trailing punctuation excluded."""
    line_end = text.find("\n", start)
    limit = len(text) if line_end == -1 else line_end
    end = start
    previous_is_flag = False
    for index, token in enumerate(_TOKEN_RE.finditer(text, start, limit)):
        word = token.group(0)
        details_resume = word.lower().rstrip(",.;!?") in COMMAND_ENDERS or _DETAIL_START_RE.match(
            text, token.start()
        )
        if index > 0 and not previous_is_flag and details_resume:
            break
        if word.endswith(","):
            return token.end() - 1 if len(word) > 1 else end
        if word[-1] in "?!":
            return token.end() - len(word) + len(word.rstrip("?!")) if word.rstrip("?!") else end
        end = token.end()
        previous_is_flag = word.startswith("-") and len(word) > 1 and "=" not in word
    return end


def _more_lines(text: str, start: int, end: int) -> int:
    """`end` moved past the lines that continue a command which ran to the end of its line."""
    while True:
        line_end = text.find("\n", end)
        if line_end == -1 or text[end:line_end].strip():
            return end  # no next line, or the request resumed on this one
        next_start = line_end + 1
        next_end = text.find("\n", next_start)
        next_end = len(text) if next_end == -1 else next_end
        line = text[next_start:next_end]
        first = next_start + len(line) - len(line.lstrip())
        continued = _CONTINUES_RE.search(text, start, end) is not None
        is_command = (
            _HEAD_RE.match(text, first) is not None and _DETAIL_START_RE.match(text, first) is None
        ) or _SHELL_LINE_RE.match(text, first) is not None
        if not line.strip() or not (continued or is_command):
            return end
        end, start = next_start + len(line.rstrip()), first


def split_command(text: str) -> CommandSplit:
    """The command in `text` (verbatim, unquoted) and `text` with the command blanked out."""
    command, remainder = _split_quoted(text)
    if command is not None:
        return CommandSplit(command, remainder)
    start = _find_head(remainder)
    if start is None:
        return CommandSplit(None, remainder)
    end = _more_lines(remainder, start, _command_end(remainder, start))
    trailing_stop = _SENTENCE_END_RE.search(remainder, start, end)
    if trailing_stop is not None:
        end = trailing_stop.start()
    # "(python diffusion.py)": a closing bracket the command did not open belongs to the sentence.
    while (
        end > start
        and remainder[end - 1] == ")"
        and remainder.count("(", start, end) < remainder.count(")", start, end)
    ):
        end -= 1
    found = remainder[start:end].strip()
    if not found:
        return CommandSplit(None, remainder)
    return CommandSplit(found, _blank(remainder, start, end))
