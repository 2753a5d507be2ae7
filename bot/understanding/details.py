"""Reading a request's details (GPUs, wall time, memory, names…) out of the words around the command.

Each reader finds its phrase, records the value and blanks the phrase out of a working copy, in an
order chosen so that the more specific phrase is read first: images and model ids before anything
(their tags hold digits: "cuda:12.4.1"), labelled names next ("partition a100" names a partition,
not a GPU), MIG profiles before memory ("1g.10gb"), wall times before GPU counts, GPU memory next to
a GPU ("A100 80GB", "a gpu with at least 24GB") before host memory ("16GB ram", or a size with no
word at all). What is left unread at the end says how sure the reading is: a request whose every
word was explained, or is filler ("please", "I need"), can skip the language model.

GPUs are per node and per replica, as parse.md fixes. A total spread over nodes ("8 GPUs across 2
nodes", "16 GPUs in total on 4 nodes") is divided by the node count; one that does not divide
evenly is refused with a message, because any split we chose would be a guess. "2 nodes with 4
GPUs", "2 nodes x 4 A100" and "4 GPUs per node" are per node already. Replicas never divide GPUs
("two A10 GPUs with 2 replicas" is two per replica): a service replica is what the GPUs are for.
A MIG slice is not a GPU: one slice prints `gpus: null` (parse.md); "2 x 3g.40gb" counts two slices.

`stated_values` reads with the same readers in the same order, but keeps every value each one
finds instead of the first: for a caller that asks "does some phrase of this text give this field
this value?" (the language model's grounding), so "4 hours" states a wall time and never a GPU
count. `names_slurm`, `names_kubernetes`, `names_service` and `asks_shared` are the words by which
`read_details` decides those fields, for the same caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.understanding.durations import find_durations, is_the_jobs
from bot.understanding.gpu_models import GPU_MODEL, MODEL_HINT_RE, read_gpu_model
from bot.understanding.lazy_re import LazyPattern, lazy
from bot.understanding.numbers import WHOLE_NUMBER, read_count
from bot.understanding.sizes import MEMORY_AMOUNT, memory_gb
from bot.understanding.vocabulary import NOT_VALUES

_I = re.IGNORECASE
_DIGIT_RE = lazy(r"\d")
_TIME_WORDS = ("hour", "day", "min", "week", "sec", "wk", "hr")  # no wall time is written without one
_B = r"(?<![\w./:@-])"  # a token starts here
_E = r"(?![\w-]|\.\w)"  # a word ends here ("l40." ends a sentence, "l40.py" is a file)
_VALUE = r"(?P<value>[a-z0-9][\w.\-]{0,127})"
_ADJECTIVES = (
    r"(?:(?:shared|time[\s-]?sliced|timesliced|dedicated|single|whole|full|free|idle|available|more|extra"
    r"|nvidia|amd|big|fast|physical|separate|identical|modern|powerful|beefy|new|newer|latest)[\s-]+){0,3}"
)
_GPU_WORD = r"(?:gpus?|gpu\s+cards?|graphics\s+cards?|cards?|accelerators?)"
_HOST_MEMORY_AFTER = r"(?!\s*(?:of\s+)?(?:host\s+|system\s+|cpu\s+|main\s+)?(?:ram|memory|mem)\b)"

# --- references: images, model ids, paths -------------------------------------------------------
_REFERENCE = r"[a-z0-9][\w.\-]*(?::\d+)?(?:/[\w.\-]+)+(?::[\w][\w.\-]{0,127})?(?:@sha256:[a-f0-9]{64})?"
_LABELLED_IMAGE_RE = lazy(
    r"(?:\b(?:docker\s+|container\s+)?image|\bcontainer|--image)\s*(?:is\s+|of\s+)?[:=]?\s*"
    r"(?P<value>[a-z0-9][\w.\-]*(?::\d+)?(?:/[\w.\-]+)*(?::[\w][\w.\-]{0,127})?(?:@sha256:[a-f0-9]{64})?)"
    r"(?![\w/:@-])",
    _I,
)
_REFERENCE_RE = lazy(rf"{_B}(?P<value>{_REFERENCE})(?![\w/:@-])", _I)
_LABELLED_MODEL_RE = lazy(
    r"(?:\bmodel(?:\s+id)?|--model|\bserve|\bserving|\bdeploy|\bdeploying|\bhost|\bhosting)\s*[:=]?\s*"
    r"(?:the\s+)?(?:model\s+)?(?P<value>[a-z0-9][\w.\-]*/[\w.\-]+)(?![\w/:@-])",
    _I,
)
_FILE_SUFFIX_RE = lazy(
    r"\.(?:py|sh|ya?ml|json|jsonl|txt|csv|tsv|parquet|pt|pth|ckpt|bin|safetensors|gguf|onnx|ipynb|cfg|toml"
    r"|ini|log|out|tar|gz|zip)$",
    _I,
)
_MODEL_NAME_SHAPE_RE = lazy(r"/[^/]*[A-Z0-9_.\-]", re.ASCII)
_IMAGE_HOST_RE = lazy(r"^(?:[\w\-]+\.[\w.\-]+|localhost)(?::\d+)?/", _I)
_MODEL_HOST_RE = lazy(r"^(?:https?://)?(?:huggingface\.co|hf\.co)/", _I)

# --- GPUs --------------------------------------------------------------------------------------
_MIG_RE = lazy(
    rf"{_B}(?:(?P<count>{WHOLE_NUMBER})(?![\d.])\s*(?:x\s*|[\u00d7*]\s*)?)?(?:(?:mig|nvidia\.com/mig)[\s-]*)?"
    r"(?P<profile>\d{1,2}g\.\d{1,3}gb?)(?![\w.])(?:\s+mig)?(?:\s+(?:slices?|instances?|partitions?|profiles?))?",
    _I,
)
_MIG_COUNT_RE = lazy(
    rf"{_B}(?P<count>{WHOLE_NUMBER})(?![\d.])\s+(?:mig\s+)?(?:slices?|instances?)\s+(?:of\s+)?(?:mig\s+)?$",
    _I,
)
_GPU_MEMORY_RES = (
    # "a gpu with at least 24GB", "A100 with 80GB", "GPUs having 48 GB"
    lazy(
        rf"(?:{_GPU_WORD}|{GPU_MODEL})\s+(?:with|having|of)\s+(?:at\s+least\s+|>=?\s*|≥\s*|min(?:imum)?\s+(?:of\s+)?)?"
        rf"(?P<memory>{MEMORY_AMOUNT}){_HOST_MEMORY_AFTER}",
        _I,
    ),
    # "24GB of VRAM", "48 GB GPU memory", "80GB per GPU"
    lazy(
        rf"{_B}(?P<memory>{MEMORY_AMOUNT})\s*(?:of\s+)?(?:vram|gpu\s+(?:memory|ram|mem)|hbm|framebuffer"
        r"|per\s+gpu|each|gpu\b)",
        _I,
    ),
    # "vram 24GB", "gpu memory: at least 40GB"
    lazy(
        rf"(?:vram|gpu[\s_-](?:memory|mem|ram))\s*[:=]?\s*(?:of\s+)?(?:at\s+least\s+|>=?\s*)?(?P<memory>{MEMORY_AMOUNT})",
        _I,
    ),
    # "2 A100 GPUs (80GB)", "H100s [80 GB each]": a size in brackets right after the GPUs is theirs
    lazy(
        rf"(?:{_GPU_WORD}|{GPU_MODEL}s?)\s*[(\[]\s*(?:at\s+least\s+|>=?\s*)?(?P<memory>{MEMORY_AMOUNT})"
        rf"{_HOST_MEMORY_AFTER}(?:\s*(?:vram|each|per\s+gpu|of\s+(?:gpu\s+)?memory|gpu\s+memory))?\s*[)\]]",
        _I,
    ),
    # "at least 40GB" with no host-memory word after it is the GPU's (parse.md's own example)
    lazy(
        rf"(?:at\s+least|minimum(?:\s+of)?|min\.?|>=|≥)\s*(?P<memory>{MEMORY_AMOUNT}){_HOST_MEMORY_AFTER}",
        _I,
    ),
)
_MEMORY_BEFORE_MODEL = r"(?:(?P<memory_before>\d{1,4})\s*(?:gb|gib|g)[\s-]+)?"
_COUNT_MODEL_RE = lazy(
    rf"{_B}(?P<count>{WHOLE_NUMBER})(?![\d.])\s*(?:x|\u00d7|\*)?\s*{_ADJECTIVES}{_MEMORY_BEFORE_MODEL}"
    rf"(?P<model>{GPU_MODEL}){_E}(?:\s+{_GPU_WORD}{_E})?",
    _I,
)
_MODEL_TIMES_COUNT_RE = lazy(
    rf"{_B}(?P<model>{GPU_MODEL})\s*(?:x|\u00d7|\*|:)\s*(?P<count>\d{{1,7}})(?![\w.])",
    _I,
)
_COUNT_GPU_RE = lazy(
    rf"{_B}(?P<count>{WHOLE_NUMBER})(?![\d.])\s*(?:x|\u00d7|\*)?\s*{_ADJECTIVES}{_GPU_WORD}{_E}", _I
)
_LABELLED_GPU_COUNT_RE = lazy(
    r"(?:--gpus(?:-per-node)?|--gres[=\s]+gpu|\bgres\s*[:=]\s*gpu|\bnum[_\s-]?gpus|\bgpu[_\s-]?count|\bgpus?)"
    rf"(?::(?P<model>{GPU_MODEL}))?\s*[:=]\s*(?P<count>\d{{1,7}})(?![\w.])",
    _I,
)
_MODEL_RE = lazy(rf"{_B}{_MEMORY_BEFORE_MODEL}(?P<model>{GPU_MODEL}){_E}", _I)
_TOTAL_ACROSS_RE = lazy(
    rf"{_B}(?P<count>{WHOLE_NUMBER})(?![\d.])\s*(?:x\s*)?{_ADJECTIVES}(?:{GPU_MODEL}\s*)?(?:{_GPU_WORD})?\s*"
    r"(?:in\s+total\s+|total\s+)?(?:across|over|spread\s+(?:across|over)|split\s+(?:across|over)"
    rf"|distributed\s+(?:across|over|on)|on)\s+(?:{WHOLE_NUMBER})\s*nodes?\b",
    _I,
)
_OF_THEM_RE = lazy(rf"{_B}(?P<count>{WHOLE_NUMBER})\s+of\s+(?:them|those|these)\b", _I)
_TOTAL_WORD_RE = lazy(r"\b(?:in\s+total|total(?:\s+of)?|altogether|overall)\b", _I)

# --- other resources -----------------------------------------------------------------------------
_NODES_RES = (
    lazy(rf"{_B}(?P<count>{WHOLE_NUMBER})(?![\d.])[\s-]*nodes?\b", _I),
    lazy(r"(?:--nodes|\bnodes?)\s*[:=]\s*(?P<count>\d{1,7})\b|(?<!\S)-N\s*(?P<flag_count>\d{1,7})\b", _I),
    lazy(r"\b(?:a\s+)?(?P<single>single)[\s-]+node\b", _I),
)
_CPUS_RES = (
    lazy(
        rf"{_B}(?P<count>{WHOLE_NUMBER})(?![\d.])\s*(?:x\s*)?(?:v?cpus?(?:\s+cores?)?|cpu\s+threads?|cores?|v?cores?|threads?)\b",
        _I,
    ),
    lazy(
        r"(?:--cpus-per-task|--cpus|\bcpus-per-task|\bncpus|\bcpus?|\bcores)\s*[:=]?\s*(?P<count>\d{1,7})\b"
        r"|(?<!\S)-c\s*(?P<flag_count>\d{1,7})\b",
        _I,
    ),
)
_MEMORY_WORD = r"(?:ram|memory|mem)"
_MEMORY_OR_MEGS = MEMORY_AMOUNT.replace("|mi|", "|mi|m|")  # a lone M is megabytes only beside a memory word
_HOST_MEMORY_RES = (
    lazy(
        rf"(?:--mem|\b(?:host\s+|system\s+|cpu\s+|main\s+)?{_MEMORY_WORD})\s*(?:of\s+)?[:=]?\s*(?:at\s+least\s+)?"
        rf"(?P<memory>{_MEMORY_OR_MEGS})",
        _I,
    ),
    lazy(
        rf"{_B}(?P<memory>{_MEMORY_OR_MEGS})\s*(?:of\s+)?(?:host\s+|system\s+|cpu\s+|main\s+)?"
        rf"{_MEMORY_WORD}\b",
        _I,
    ),
    lazy(rf"{_B}(?P<memory>{MEMORY_AMOUNT})", _I),
)
_REPLICAS_RES = (
    lazy(rf"{_B}(?P<count>{WHOLE_NUMBER})(?![\d.])\s*(?:x\s*)?(?:replicas?|copies|instances|pods)\b", _I),
    lazy(
        r"(?:--replicas|\breplicas?)\s*[:=]?\s*(?P<count>\d{1,7})\b|\bscale\s+(?:it\s+)?to\s+(?P<scale>\d{1,7})\b",
        _I,
    ),
)
_PORT_RE = lazy(
    r"(?:--port|\bport|\bexpos(?:e|ing)(?:\s+port)?|\blisten(?:ing)?\s+on(?:\s+port)?)\s*[:=]?\s*(?P<port>\d{1,7})\b",
    _I,
)


# --- names -----------------------------------------------------------------------------------------
def _label_res(labels: str, suffix_word: str | None) -> tuple[LazyPattern, ...]:
    found = [lazy(rf"(?:{labels})(?![\w-])\s*(?:is\s+|of\s+)?[:=]?\s*{_VALUE}(?![\w-])", _I)]
    if suffix_word:
        found.append(
            lazy(
                rf"\b(?:on|in|into|to|using|use|via|from|under|with|at)\s+(?:the\s+|my\s+|our\s+)?{_VALUE}\s+{suffix_word}\b",
                _I,
            )
        )
    return tuple(found)


# The words that label each name; grounding (bot/llm/grounding.py) looks for the same words beside
# a value the model gave, so what the grammar reads and what the model may claim cannot drift apart.
NAME_LABELS = {
    "partition": r"--partition|\bpartition|(?<!\S)-p(?=\s)",
    "account": r"--account|\baccount|\bacct|(?<!\S)-A(?=\s)|\bcharged?\s+(?:it\s+)?to|\bbill(?:ed)?\s+to",
    "qos": r"--qos|\bqos|\bquality\s+of\s+service",
    "namespace": r"--namespace|\bnamespace|\bns(?=[\s:=])",
    "name": r"--job-name|(?<!\S)-J(?=\s)|\bjob[\s_-]?name"
    r"|\b(?:deployment|service|release|run|experiment)\s+name"
    r"|\bname(?:\s+it)?|\bnamed|\bcall(?:ed|\s+it)|\btitled",
}
_PARTITION_RES = _label_res(NAME_LABELS["partition"], "partition")
_ACCOUNT_RES = _label_res(NAME_LABELS["account"], "account")
_QOS_RES = _label_res(NAME_LABELS["qos"], "qos")
_NAMESPACE_RES = _label_res(NAME_LABELS["namespace"], "namespace")
_NAME_RES = (
    lazy(rf"(?:{NAME_LABELS['name']})(?![\w-])\s*(?:is\s+|as\s+)?[:=]?\s*{_VALUE}(?![\w-])", _I),
    lazy(rf"\b(?:deployment|statefulset)\s+(?:of\s+)?{_VALUE}(?![\w-])", _I),
)

# --- what kind of work, and where ------------------------------------------------------------------
_SHARED_RE = lazy(
    r"\b(?:shared|sharing|share\s+(?:a|the|one)|time[\s-]?slic(?:ed|ing|e)|timeslic\w*|fractional|mps)\b", _I
)
# "CPU only", "no GPU", "without a GPU", "doesn't need a GPU": a CPU job said in so many words.
CPU_ONLY_RE = lazy(
    r"\b(?:cpu[\s-]*only|only\s+(?:on\s+)?cpus?|no\s+gpus?|without\s+(?:a\s+|any\s+)?gpus?"
    r"|(?:don'?t|do\s+not|doesn'?t|does\s+not)\s+need\s+(?:a\s+|any\s+)?gpus?)\b",
    _I,
)
_SLURM_RE = lazy(r"\b(?:slurm|sbatch|salloc)\b", _I)
_K8S_RE = lazy(
    r"\b(?:kubernetes|k8s|kube|kubectl|namespace|deployment|deployments|pod|pods|statefulset|helm)\b", _I
)
_SERVICE_RE = lazy(
    r"\b(?:deploy|deploying|deployment|serve|serving|server|endpoint|service|expose|exposing)\b"
    # "host" only when what is hosted is a model or an endpoint ("host memory" is not a service)
    r"|\bhost(?:ing)?\s+(?:the\s+|a\s+|an\s+|my\s+|our\s+)?(?:model\b|endpoint\b|api\b|server\b|[\w.-]+/[\w.-]+)",
    _I,
)


@dataclass
class Details:
    """What was read: JobRequest fields by name, plus what reading them left unexplained."""

    fields: dict[str, Any] = field(default_factory=dict)
    leftover: str = ""
    problem: str | None = None  # a reading that cannot be turned into a request, said plainly


class _Scan:
    """The text being read: readers blank what they take, so no phrase is read twice."""

    def __init__(self, text: str) -> None:
        self.source = text
        self.work = text

    def take(self, pattern: LazyPattern, group: str | int = 0) -> re.Match[str] | None:
        found = pattern.search(self.work)
        if found is not None:
            self.blank(*found.span(group))
        return found

    def blank(self, start: int, end: int) -> None:
        if start >= 0:
            self.work = self.work[:start] + " " * (end - start) + self.work[end:]

    def value(self, match: re.Match[str], group: str = "value") -> str:
        start, end = match.span(group)
        return self.source[start:end].rstrip(".,;:!?")


def _mentions(lowered: str, *words: str) -> bool:
    return any(word in lowered for word in words)


def may_state_a_time(text: str) -> bool:
    """Whether the duration reader may find a wall time here: the cheap test it is run behind."""
    return _DIGIT_RE.search(text) is not None or _mentions(text.lower(), *_TIME_WORDS)


def _first_count(match: re.Match[str], *groups: str) -> int | None:
    for group in groups:
        text = match.group(group)
        if text:
            return read_count(text)
    return None


def _is_file_path(reference: str) -> bool:
    return bool(_FILE_SUFFIX_RE.search(reference)) or reference.startswith(("/", "./", "~"))


def _read_references(scan: _Scan, fields: dict[str, Any]) -> None:
    labelled = scan.take(_LABELLED_IMAGE_RE)
    if labelled is not None:
        fields["image"] = scan.value(labelled)
    labelled_model = _LABELLED_MODEL_RE.search(scan.work)
    if labelled_model is not None and not _is_file_path(labelled_model.group("value")):
        value = scan.value(labelled_model)
        if ":" not in value and not _IMAGE_HOST_RE.match(value):
            fields["model"] = value
            scan.blank(*labelled_model.span("value"))
    for reference in list(_REFERENCE_RE.finditer(scan.work)):
        value = scan.value(reference)
        if _is_file_path(value):
            continue
        is_image = (
            ":" in value.split("/")[-1] or "@sha256:" in value or _IMAGE_HOST_RE.match(value)
        ) and not (_MODEL_HOST_RE.match(value))
        if is_image and "image" not in fields:
            fields["image"] = value
        elif not is_image and "model" not in fields and _MODEL_NAME_SHAPE_RE.search(value):
            fields["model"] = value
        else:
            continue
        scan.blank(*reference.span("value"))


def _read_mig(scan: _Scan, fields: dict[str, Any]) -> None:
    found = scan.take(_MIG_RE)
    if found is None:
        return
    profile = found.group("profile").lower()
    fields["mig_profile"] = profile if profile.endswith("gb") else profile + "b"
    count = _first_count(found, "count")
    if count is None:
        before = _MIG_COUNT_RE.search(scan.work[: found.start()])
        if before is not None:
            count = read_count(before.group("count"))
            scan.blank(*before.span())
    # One slice is the usual MIG request and prints gpus: null (parse.md); several are counted.
    if count is not None and count > 1:
        fields["gpus"] = count


def _set_model(fields: dict[str, Any], model_text: str, memory_before: str | None = None) -> None:
    model = read_gpu_model(model_text)
    if model is None:
        return
    fields.setdefault("gpu_type", model.gpu_type)
    memory = model.memory_gb or (int(memory_before) if memory_before else None)
    if memory is not None:
        fields.setdefault("gpu_memory_gb", memory)


def _read_gpus(scan: _Scan, fields: dict[str, Any], with_nodes: str | None) -> int | None:
    """GPU count, type and memory; returns a total to divide over nodes when one was stated.

    `with_nodes` is the text before the node count was taken, when nodes were mentioned.
    """
    source_before_gpus = scan.work
    for pattern in _GPU_MEMORY_RES if _DIGIT_RE.search(source_before_gpus) else ():
        found = scan.take(pattern, "memory")
        if found is not None:
            fields["gpu_memory_gb"] = memory_gb(found.group("amount"), found.group("unit"))
            break
    total_across = _TOTAL_ACROSS_RE.search(with_nodes) if with_nodes is not None else None
    names_model = MODEL_HINT_RE.search(source_before_gpus) is not None
    lowered = source_before_gpus.lower()
    names_gpu = _mentions(lowered, "gpu", "card", "accelerator", "gres")
    patterns = (
        *((_COUNT_MODEL_RE, _MODEL_TIMES_COUNT_RE) if names_model else ()),
        *((_LABELLED_GPU_COUNT_RE, _COUNT_GPU_RE) if names_gpu else ()),
    )
    for pattern in patterns:
        found = scan.take(pattern)
        if found is None:
            continue
        count = read_count(found.group("count"))
        if count is not None and "gpus" not in fields:
            fields["gpus"] = count
        groups = found.groupdict()
        if groups.get("model"):
            _set_model(fields, found.group("model"), groups.get("memory_before"))
        break
    if "gpus" not in fields and (names_model or names_gpu) and (of_them := scan.take(_OF_THEM_RE)):
        fields["gpus"] = read_count(of_them.group("count"))  # "H100s for a day, 4 of them"
    for model in list(_MODEL_RE.finditer(scan.work)) if names_model else ():
        _set_model(fields, model.group("model"), model.group("memory_before"))
        scan.blank(*model.span())
    if total_across is not None:
        return read_count(total_across.group("count"))
    if "gpus" in fields and with_nodes is not None and _TOTAL_WORD_RE.search(with_nodes):
        return int(fields["gpus"])
    return None


def _read_count_field(
    scan: _Scan, fields: dict[str, Any], name: str, patterns: tuple[LazyPattern, ...]
) -> None:
    for pattern in patterns:
        found = scan.take(pattern)
        if found is None:
            continue
        groups = found.groupdict()
        if groups.get("single"):
            fields[name] = 1
            return
        count = _first_count(found, *(g for g in ("count", "flag_count", "scale") if g in groups))
        if count is not None:
            fields[name] = count
            return


def _is_a_count(scan: _Scan, found: re.Match[str]) -> bool:
    """Whether a label's value is a count of something else ("partition: 1 L40S" counts GPUs)."""
    start = found.start("value")
    return any(p.match(scan.work, start) for p in (_COUNT_MODEL_RE, _COUNT_GPU_RE, _NODES_RES[0]))


def _read_value(scan: _Scan, fields: dict[str, Any], name: str, patterns: tuple[LazyPattern, ...]) -> None:
    for pattern in patterns:
        for found in pattern.finditer(scan.work):
            value = scan.value(found)
            if value and value.lower() not in NOT_VALUES and not _is_a_count(scan, found):
                fields[name] = value
                scan.blank(*found.span())
                return


def _read_host_memory(scan: _Scan, fields: dict[str, Any]) -> None:
    for pattern in _HOST_MEMORY_RES:
        found = scan.take(pattern)
        if found is not None:
            fields["memory_gb"] = memory_gb(found.group("amount"), found.group("unit"))
            return


def _divide_over_nodes(fields: dict[str, Any], total: int) -> str | None:
    nodes = fields.get("nodes")
    if not nodes or nodes <= 1:
        return None
    if total % nodes:
        example = max(total // nodes, 1)
        return (
            f"{total} GPUs do not split evenly over {nodes} nodes, and GPUs are asked per node. Say how many "
            f'GPUs each node needs, e.g. "{nodes} nodes with {example} GPU{"s" if example > 1 else ""} each".'
        )
    fields["gpus"] = total // nodes
    return None


def names_slurm(text: str) -> bool:
    return _SLURM_RE.search(text) is not None


def names_kubernetes(text: str) -> bool:
    return _K8S_RE.search(text) is not None


def names_service(text: str) -> bool:
    return _SERVICE_RE.search(text) is not None


def asks_shared(text: str) -> bool:
    return _SHARED_RE.search(text) is not None


_STATED_COUNTS = {
    "nodes": _NODES_RES,
    "replicas": _REPLICAS_RES,
    "cpus": _CPUS_RES,
}
_GPU_COUNT_RES = (_COUNT_MODEL_RE, _MODEL_TIMES_COUNT_RE, _LABELLED_GPU_COUNT_RE, _COUNT_GPU_RE)


def _take_all(scan: _Scan, pattern: LazyPattern) -> list[re.Match[str]]:
    found = list(pattern.finditer(scan.work))
    for match in found:
        scan.blank(*match.span())
    return found


def stated_values(text: str) -> dict[str, frozenset[Any]]:
    """Every count and size each of `read_details`' readers finds in `text`, by field (see above).

    GPUs hold what the words say per phrase: a total over nodes is kept as the total ("8 GPUs
    across 2 nodes" states 8), for the caller to divide by the node count it checks."""
    scan = _Scan(text)
    values: dict[str, set[Any]] = {}

    def keep(field_name: str, value: Any) -> None:
        if value is not None:
            values.setdefault(field_name, set()).add(value)

    lowered = text.lower()
    if "/" in text or _mentions(lowered, "image", "container", "model"):
        _read_references(scan, {})
    for patterns in (_PARTITION_RES, _ACCOUNT_RES, _QOS_RES, _NAMESPACE_RES, _NAME_RES):
        for pattern in patterns:
            for found in list(pattern.finditer(scan.work)):
                if scan.value(found).lower() not in NOT_VALUES:
                    scan.blank(*found.span())
    for found in _take_all(scan, _MIG_RE):
        count = _first_count(found, "count")
        if count is not None and count > 1:
            keep("gpus", count)
    for duration in find_durations(scan.work):
        scan.blank(duration.start, duration.end)
    for found in _TOTAL_ACROSS_RE.finditer(scan.work):
        keep("gpus", read_count(found.group("count")))
    for found in _take_all(scan, _NODES_RES[0]) + _take_all(scan, _NODES_RES[1]):
        keep("nodes", _first_count(found, "count", "flag_count"))
    if _NODES_RES[2].search(scan.work):
        keep("nodes", 1)
    for pattern in _GPU_MEMORY_RES:  # only the size is taken: "a gpu with 24GB" still asks for one GPU
        for found in list(pattern.finditer(scan.work)):
            keep("gpu_memory_gb", memory_gb(found.group("amount"), found.group("unit")))
            scan.blank(*found.span("memory"))
    for pattern in _GPU_COUNT_RES:
        for found in _take_all(scan, pattern):
            keep("gpus", read_count(found.group("count")))
            groups = found.groupdict()
            if groups.get("model"):
                model = read_gpu_model(found.group("model"))
                keep("gpu_memory_gb", model.memory_gb if model else None)
                keep("gpu_memory_gb", int(groups["memory_before"]) if groups.get("memory_before") else None)
    for found in _take_all(scan, _MODEL_RE):
        model = read_gpu_model(found.group("model"))
        keep("gpu_memory_gb", model.memory_gb if model else None)
        keep("gpu_memory_gb", int(found.group("memory_before")) if found.group("memory_before") else None)
    for name, patterns in _STATED_COUNTS.items():
        for pattern in patterns:
            for found in _take_all(scan, pattern):
                groups = found.groupdict()
                names = ("count", "flag_count", "scale")
                keep(name, _first_count(found, *(g for g in names if g in groups)))
    for found in _take_all(scan, _PORT_RE):
        keep("port", int(found.group("port")))
    for pattern in _HOST_MEMORY_RES:
        for found in _take_all(scan, pattern):
            keep("memory_gb", memory_gb(found.group("amount"), found.group("unit")))
    return {name: frozenset(found) for name, found in values.items()}


def read_details(text: str) -> Details:
    """Every request detail in `text` (the command already blanked out by commands.split_command).

    Each reader runs only when a word it needs is present: a substring test costs nanoseconds where
    a regex search costs microseconds, and most requests name only a few details.
    """
    scan = _Scan(text)
    fields: dict[str, Any] = {}
    lowered = text.lower()
    has_digit = _DIGIT_RE.search(text) is not None
    if "/" in text or _mentions(lowered, "image", "container", "model"):
        _read_references(scan, fields)
    # Flags read from the whole request before their words are blanked by other readers.
    if _mentions(lowered, "shar", "slic", "fraction", "mps") and _SHARED_RE.search(scan.work):
        fields["shared"] = True
    if _mentions(lowered, "cpu", "gpu") and scan.take(CPU_ONLY_RE) is not None:
        fields["cpu_only"] = True
    if _mentions(lowered, "slurm", "sbatch", "salloc") and _SLURM_RE.search(scan.work):
        fields["target"] = "slurm"
    elif _mentions(
        lowered, "kube", "k8s", "namespace", "deploy", "pod", "statefulset", "helm"
    ) and _K8S_RE.search(scan.work):
        fields["target"] = "k8s"
    service_named = _mentions(lowered, "deploy", "serv", "endpoint", "expos", "host") and bool(
        _SERVICE_RE.search(text)
    )
    # Labelled names before counts and models: "partition a100" names a partition, not a GPU.
    if _mentions(lowered, "partition", "-p"):
        _read_value(scan, fields, "partition", _PARTITION_RES)
    if _mentions(lowered, "account", "acct", "-a", "charge", "bill"):
        _read_value(scan, fields, "account", _ACCOUNT_RES)
    if _mentions(lowered, "qos", "quality"):
        _read_value(scan, fields, "qos", _QOS_RES)
    if _mentions(lowered, "namespace", "ns"):
        _read_value(scan, fields, "namespace", _NAMESPACE_RES)
    if _mentions(lowered, "name", "called", "titled", "-j", "deployment", "statefulset"):
        _read_value(scan, fields, "name", _NAME_RES)
    if has_digit and "g." in lowered:
        _read_mig(scan, fields)
    if has_digit or _mentions(lowered, *_TIME_WORDS):
        durations = find_durations(scan.work)
        # A deadline or a time past ("due in 30 hours", "took 14 hours") is not the job's wall time.
        the_jobs = [duration for duration in durations if is_the_jobs(scan.work, duration)]
        if the_jobs:
            fields["time_limit_minutes"] = the_jobs[0].minutes
        for duration in durations:
            scan.blank(duration.start, duration.end)
    mentions_nodes = _mentions(lowered, "node", "-n")
    before_counts = scan.work  # a total spread over nodes is read with its node count, before either goes
    if mentions_nodes:
        _read_count_field(scan, fields, "nodes", _NODES_RES)
    total = _read_gpus(scan, fields, before_counts if mentions_nodes else None)
    if _mentions(lowered, "replica", "copies", "instances", "pods", "scale"):
        _read_count_field(scan, fields, "replicas", _REPLICAS_RES)
    if _mentions(lowered, "cpu", "core", "thread", "-c"):
        _read_count_field(scan, fields, "cpus", _CPUS_RES)
    if has_digit and _mentions(lowered, "port", "expos", "listen"):
        port = scan.take(_PORT_RE)
        if port is not None:
            fields["port"] = int(port.group("port"))
    if has_digit:
        _read_host_memory(scan, fields)
    if service_named or "replicas" in fields or "port" in fields:
        fields["workload"] = "service"
        if fields.get("target") is None:
            fields["target"] = "k8s"
    problem = _divide_over_nodes(fields, total) if total is not None else None
    return Details(fields=fields, leftover=scan.work, problem=problem)
