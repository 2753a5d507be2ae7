"""Questions and orders about jobs that already exist: queue, status, why pending, free GPUs, cancel,
the usage report, help — and which job they are about.

A question is recognised by how it opens ("cancel…", "how many… free", "status of…", after any
greeting or "can you please") or by a question form that only a question has ("why… pending",
"when will… start", "… waiting for"). Those are asked plainly and win over request words in the same
sentence ("cancel my 8 GPU job"). A question word met in passing ("… free gpus …", "… cancel …") is
weak evidence and loses to a request that names GPUs, a command, an image or a model.

Job references: a Slurm id ("1234", "1234_7" for an array task), or a workload's name after
"deployment"/"job"/"pod" or "named", or a hyphenated name after the verb ("cancel llama-sft").
A question with no reference keeps `job: null`; the door decides whether to ask which job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from backends.types import IntentKind
from bot.understanding.gpu_models import GPU_MODEL
from bot.understanding.lazy_re import LazyPattern, lazy
from bot.understanding.vocabulary import (
    CANCEL_CUES,
    CAPACITY_CUES,
    DIGEST_CUES,
    FAILURE_CUES,
    NOT_JOB_NAMES,
    QUEUE_CUES,
    WHY_CUES,
)

_I = re.IGNORECASE
_OPENING = (
    r"^\W*(?:(?:hey|hi|hello|yo|ok|okay|so|um|uh|quick\s+question)\b[\s,!.:-]*)?"
    r"(?:(?:@\S+|concierge|bot)\b[\s,:!-]*)?"
    r"(?:(?:please|pls|plz|kindly)\s+)?"
    r"(?:(?:can|could|would|will)\s+(?:you|u)\s+(?:please\s+|pls\s+|kindly\s+)?)?"
    r"(?:(?:i\s+(?:want|need|would\s+like|'d\s+like|wanna)\s+to|let\s+me|help\s+me)\s+)?"
    r"(?:(?:please|pls)\s+)?"
)
_JOB_WORDS = r"(?:job|jobs|deployment|deployments|pod|pods|workload|workloads|run|runs|service|task)"
_GAP = r"[^\n]{0,80}?"


def _opening(body: str) -> LazyPattern:
    return lazy(_OPENING + body, _I)


_HELP_RE = _opening(
    r"(?:help(?:\s+me)?|usage|commands|examples?|\?+|what\s+(?:else\s+)?can\s+(?:you|i)\s+(?:do|ask|say)(?:\s+here)?"
    r"|what\s+(?:else\s+)?(?:are\s+you\s+able\s+to|can\s+(?:this|the)\s+bot)\s+(?:do|handle)"
    r"|what\s+(?:are\s+)?your\s+(?:capabilities|features|commands|skills)|what\s+do\s+you\s+know\s+how\s+to\s+do"
    r"|(?:how|what)\s+can\s+you\s+help(?:\s+(?:me|us))?(?:\s+with)?"
    r"|what\s+(?:do|can)\s+you\s+(?:do|support|understand)|how\s+(?:do\s+i|does\s+this|can\s+i)\s+(?:use|work)"
    r"(?:\s+(?:you|this|it|this\s+bot|the\s+bot))?|(?:what|which)\s+commands(?:\s+are\s+there|\s+(?:do|can)\s+(?:you|i)\s+(?:know|understand|support|take|use|give))?"
    r"|(?:list|show)\s+(?:me\s+)?(?:the\s+)?(?:help|commands|examples)|who\s+are\s+you|what\s+are\s+you"
    r"|how\s+does\s+(?:this|it)\s+work|what\s+is\s+this|getting\s+started|instructions|manual)"
    r"(?:\s+(?:please|pls|me|(?:to\s+)?you|with\s+this|with\s+the\s+bot|bot|here|for\s+me))*[\s?!.]*$"
)
# "how do I request a GPU?" asks how to ask, whatever it then names.
_HOW_DO_I_RE = _opening(r"(?:how\s+(?:do|can|should|would)\s+(?:i|we|one)|how\s+to)\b")
_HELP_WORD_RE = lazy(r"\b(?:help|usage|how\s+do\s+i|how\s+to\s+use)\b", _I)

_WHY_RES = (
    lazy(
        rf"\bwhy\b{_GAP}\b(?:pending|waiting|wait|queued|queue|stuck|held|blocked|delayed|long|running|run|start"
        r"|started|starting|scheduled|schedule|begun|begin|progress|idle|nothing)\b",
        _I,
    ),
    lazy(
        rf"\bwhen\s+(?:will|does|would|is|can|do|might|should|'?ll)\b{_GAP}\b(?:start|run|begin|go|kick\s+off"
        r"|be\s+scheduled|get\s+scheduled|get\s+going|be\s+running|launch)",
        _I,
    ),
    lazy(rf"\bwhat\s*(?:is|'s|are|s)?\b{_GAP}\bwaiting\s+(?:for|on)\b", _I),
    lazy(rf"\bhow\s+(?:long|soon)\b{_GAP}\b(?:start|starts|run|runs|begin|begins|scheduled|going)\b", _I),
    lazy(r"\b(?:holding\s+(?:up|back)|blocking|delaying|eta\s+(?:for|of|on)|expected\s+start)\b", _I),
    lazy(rf"\b(?:is|are)\b{_GAP}\b(?:stuck|still\s+(?:pending|waiting|queued))\b", _I),
    lazy(rf"\b(?:pending|waiting|queued|stuck)\b{_GAP}\bwhy\b", _I),
    lazy(r"\b(?:has|have|'s|'ve)\s+been\s+(?:waiting|pending|queued|stuck|sitting\s+in\s+the\s+queue)\b", _I),
    _opening(r"(?:explain|diagnose|why)\b"),
)
_WHY_FAILED_RE = lazy(rf"\bwhy\b{_GAP}\b(?:fail|failed|crash|crashed|die|died|exit|exited|killed|oom)", _I)

_CANCEL_VERBS = (
    r"(?:cancel|kill|stop|terminate|abort|scancel|delete|remove|halt|end|tear\s+down|shut\s+down|shutdown"
    r"|undeploy|scale\s+down|get\s+rid\s+of|nuke)"
)
_CANCEL_OPENING_RE = _opening(rf"{_CANCEL_VERBS}\b")
# An order to cancel one job: the verb, then the job with at most the words that name it between
# ("kill job 1001", "cancel my deployment llama-sft", "scancel #1001"); or the job, then what should
# happen to it ("1001 needs to be cancelled"). Not when the verb is denied ("don't cancel 1001").
_ORDER_GAP = (
    r"(?:[\s:#]+(?:(?:my|the|that|this|our|all|of|old|previous|other|running|pending|current|last|stuck|failed"
    r"|job|jobs|deployment|pod|workload|run|service|task|number|no\.?|id"
    r"|please|pls|now)\b|#))*[\s:#]*"
)
_CANCELLED = (
    r"(?:cancell?ed|killed|stopped|terminated|aborted|scancell?ed|deleted|removed|halted|ended|undeployed"
    r"|nuked|torn\s+down|shut\s+down|scaled\s+down)"
)
_SHOULD_BE = (
    r"\s+(?:(?:should|must|can|could|needs?\s+to|has\s+to|have\s+to|to)\s+(?:be|get)|please\s+be)?\s*"
)
_DENIED_BEFORE_RE = lazy(r"\b(?:don'?t|do\s+not|never|not|no\s+need\s+to|won'?t)\s+(?:\w+\s+)?$", _I)
_CANCEL_ANYWHERE_RE = lazy(r"\b(?:cancel|scancel|terminate|abort|undeploy)\b", _I)

_STATUS_RES = (
    _opening(
        r"(?:what\s*(?:is|'s|s)\s+(?:the\s+)?)?(?:(?:job|deployment|pod)\s+)?(?:status|state|progress)\b"
    ),
    lazy(r"\b(?:status|state|progress)\s+(?:of|for|on)\b", _I),
    _opening(
        rf"(?:how\s+(?:is|are|'s)|how'?s)\b{_GAP}\b(?:doing|going|coming\s+along|progressing|getting\s+on|looking)\b"
    ),
    _opening(
        rf"(?:is|are|did|has|have)\b{_GAP}\b(?:done|finished|finish|complete|completed|running|over|dead|alive"
        r"|failed|fail|ready|started|crashed|succeeded|successful|ok|okay|up)\b"
    ),
    _opening(
        r"(?:check|show|look\s+up|lookup|describe|details?\s+(?:of|for|on|about)|info\s+(?:on|about|for)|inspect"
        rf"|what\s+happened\s+to|scontrol\s+show\s+job|sacct\s+-j)\s+(?:on\s+)?(?:my\s+|the\s+)?{_JOB_WORDS}?\s*"
        r"(?:#|id\s+)?[\w-]*\d"
    ),
    lazy(rf"\b{_JOB_WORDS}\s+#?[\w.-]+\s+(?:status|state)\b", _I),
    _WHY_FAILED_RE,
)

_DIGEST_RES = (
    lazy(
        rf"\b(?:utili[sz]ation|usage|efficiency|idle[\s-]gpus?|waste)\b{_GAP}\b(?:report|digest|summary|stats"
        r"|statistics|overview)\b",
        _I,
    ),
    lazy(rf"\b(?:report|digest|summary)\b{_GAP}\b(?:utili[sz]ation|usage|efficiency)\b", _I),
    lazy(r"\bdigest\b", _I),
    _opening(
        r"(?:send|post|share|generate|make|produce|give\s+me|show(?:\s+me)?|get(?:\s+me)?)\s+(?:me\s+)?(?:the\s+|a\s+|our\s+)?"
        r"(?:\w+\s+){0,2}(?:report|summary)\b"
    ),
    lazy(r"\b(?:how\s+(?:busy|utili[sz]ed|well\s+used|much\s+used)|utili[sz]ation)\b", _I),
)
# Usage in other words ("gpu-hours by user for the last 7 days", "who used the most GPUs this week"):
# weak, since "100 gpu-hours for python x.py" asks for GPUs.
_USAGE_RE = lazy(
    r"\bgpu[\s-]*(?:hours?|hrs?|time|days?)\b|\b(?:usage|use)\s+(?:by|per)\s+(?:user|person|people|team|group"
    r"|account|project|lab)|\bwho\s+(?:used|uses|is\s+using|has\s+used)\s+(?:the\s+)?(?:most|least)\b"
    r"|\btop\s+(?:gpu\s+)?users\b|\bhow\s+much\s+(?:did|do|have|has)\s+[\w\s]{0,20}?\buse[ds]?\b",
    _I,
)

_FREE_WORD = r"(?:free|available|avail|idle|unused|spare|open|unallocated|vacant|left|unoccupied)"
_CAPACITY_OPENING_RES = (
    # "do we have any free A100s", "does the cluster have spare GPUs", "anything free?"
    _opening(
        rf"(?:(?:do|does)\s+(?:we|you|the\s+cluster|anyone)\s+have|(?:anything|something)\b){_GAP}\b{_FREE_WORD}\b"
    ),
    _opening(rf"(?:anything|something)\s+{_FREE_WORD}\b"),
    _opening(rf"(?:how\s+many|how\s+much){_GAP}\b(?:{_FREE_WORD}|can\s+i\s+(?:get|have|use)|are\s+there)\b"),
    _opening(rf"(?:is|are)\s+there\s+(?:any\s+|a\s+|an\s+)?{_GAP}\b{_FREE_WORD}\b"),
    _opening(rf"(?:is|are)\s+(?:any\s+|a\s+|an\s+|there\s+)?(?:{GPU_MODEL}|gpus?)s?\s+{_FREE_WORD}\b"),
    _opening(rf"(?:any|what|which|show|list|check|where|see|display|get)\b{_GAP}\b{_FREE_WORD}\b"),
    _opening(rf"(?:{_FREE_WORD})\s+(?:gpus?|{GPU_MODEL}|cards?|nodes?|capacity|resources)"),
    _opening(r"(?:sinfo|capacity|availability|gpu\s+availability)\b"),
    _opening(
        r"(?:what|which)\s+(?:gpus?|gpu\s+types?|hardware|accelerators|cards)\s+(?:do\s+(?:we|you|i)\s+have"
        r"|are\s+there|exist|can\s+i\s+(?:get|use))"
    ),
)
_CAPACITY_ANYWHERE_RE = lazy(
    rf"\b(?:capacity|availability|{_FREE_WORD}\s+(?:gpus?|{GPU_MODEL}|cards?))\b|\b(?:gpus?|{GPU_MODEL})s?\s+(?:are\s+)?"
    rf"{_FREE_WORD}\b",
    _I,
)

_QUEUE_RES = (
    # "what's in my queue right now", "show me the whole queue again", "how does our queue look today"
    _opening(
        rf"(?:what|how|show|list|check|see|view|display|look\s+at|give\s+me){_GAP}\b(?:my|our|the|everyone'?s)\s+"
        r"(?:whole\s+|entire\s+|current\s+)?(?:gpu\s+|slurm\s+|job\s+|cluster\s+)?queue\b"
    ),
    # "what do I have running", "what am I running", "what is everyone running", "is anything pending"
    _opening(
        r"(?:what\s+(?:do|did)\s+(?:i|we)\s+(?:still\s+)?have|what\s+(?:am\s+i|are\s+we|is\s+every(?:one|body)"
        r"|are\s+(?:people|others|they))|(?:is|are)\s+(?:there\s+)?(?:anything|something|any\s+jobs?)(?:\s+of\s+mine)?)"
        r"\s+(?:still\s+|currently\s+)?(?:running|pending|queued|waiting|in\s+the\s+queue)\b"
    ),
    _opening(
        r"(?:(?:show|list|view|display|print|see|check|get|give\s+me|look\s+at)\s+(?:me\s+)?"
        r"|(?:what|how)\s*(?:is|'s|s|does)\s+(?:in\s+)?)?"
        r"(?:the\s+|my\s+|our\s+|all\s+(?:the\s+)?|everyone'?s\s+|current\s+|whole\s+|entire\s+)?"
        r"(?:gpu\s+|slurm\s+|job\s+|cluster\s+)?queue(?:\s+(?:status|state|please|now|for|on|of|in|look(?:s|ing)?)\b|[\s?!.]*$)"
    ),
    lazy(r"\b(?:in|on|at)\s+the\s+queue\b|\bsqueue\b|\bkubectl\s+get\s+pods\b", _I),
    _opening(
        r"(?:show|list|view|display|print|get|see|check|what\s+are)\s+(?:me\s+)?(?:all\s+)?(?:of\s+)?"
        r"(?:the\s+|my\s+|our\s+|everyone'?s\s+|all\s+)?(?:current\s+|active\s+|running\s+|pending\s+|queued\s+"
        r"|recent\s+|submitted\s+|waiting\s+)?(?:gpu\s+|slurm\s+|k8s\s+|kubernetes\s+)?(?:jobs|deployments|workloads"
        r"|pods|runs)\b"
    ),
    _opening(
        r"(?:(?:show|list|tell|give)\s+(?:me\s+)?)?"
        r"(?:what\s*(?:is|'s|s|are)|who\s*(?:is|'s|s)|who\s*(?:is|'s|s)\s+(?:using|hogging|holding|on)"
        r"|(?:everything|anything|all|whatever|stuff)(?:\s+(?:that|which))?(?:\s*(?:'s|is|are))?)\s+"
        r"(?:currently\s+|now\s+|still\s+)?"
        r"(?:running|pending|queued|waiting|in\s+the\s+queue|on\s+the\s+cluster|(?:using|hogging|holding)\s+the\s+gpus)\b"
    ),
    _opening(
        r"(?:my|all|running|pending|active|current|queued)\s+(?:my\s+)?(?:jobs|deployments|workloads)\b"
    ),
    _opening(r"(?:jobs|my\s+jobs)[\s?!.]*$"),
    lazy(
        rf"\b(?:what|which)\s+(?:jobs|deployments|workloads)\b{_GAP}\b(?:running|pending|queued|have|do\s+i)\b"
        r"|\bdo\s+i\s+have\s+(?:any\s+)?(?:running\s+|pending\s+)?(?:jobs|deployments)\b",
        _I,
    ),
)

# "what's up with job 55", "any news on 1201": about a job, said loosely (a model may read it better).
_STATUS_LOOSELY_RE = lazy(
    r"\b(?:what\s*(?:'s|s|is)\s+(?:up|going\s+on|happening)\s+with|any\s+(?:news|update)s?\s+(?:on|about)"
    r"|where\s*(?:is|'s|s|are)|what\s+(?:happened|became)\s+(?:with|of|to)"
    r"|(?:an\s+)?update\s+on|what\s+about)\b",
    _I,
)

# --- which job ----------------------------------------------------------------------------------
_NAME = r"[a-z0-9][\w.\-]{0,127}"
_ID = r"(?P<id>\d{1,12}(?:_\d{1,9})?)"
_JOB_ID_RES = (
    lazy(rf"(?:\bjob\s*(?:id|number|no\.?)?|\bid|#|\bnumber)\s*[:#]?\s*{_ID}(?![\w.])", _I),
    lazy(
        rf"(?<![\w.:/@-]){_ID}(?![\w.:/@-])(?!\s*(?:x\s*)?(?:gpus?|cards?|nodes?|cpus?|cores?|hours?|hrs?|h|minutes?"
        rf"|mins?|m|days?|d|gb|g|{GPU_MODEL})\b)",
        _I,
    ),
)
_JOB_NAME_RES = (
    lazy(rf"\b(?:named|called)\s+(?P<name>{_NAME})", _I),
    lazy(rf"\b(?:deployment|pod|workload|statefulset|service|release|job)\s+(?P<name>{_NAME})", _I),
    lazy(rf"\b(?:my|the)\s+(?P<name>{_NAME})\s+(?:job|deployment|pod|workload|service|run)\b", _I),
    _opening(
        r"(?:cancel|kill|stop|terminate|abort|scancel|delete|remove|status(?:\s+of)?|explain|check(?:\s+on)?"
        rf"|why\s+(?:is|isn'?t|'s|hasn'?t|has|does|doesn'?t|won'?t|can'?t|did|didn'?t)|how\s+(?:is|'s)|is|has|did)"
        rf"\s+(?:my\s+|the\s+)?(?P<name>{_NAME})"
    ),
)
_NAMEISH_RE = lazy(r"[\d_\-.]")


@dataclass(frozen=True)
class Question:
    """A question or order about existing jobs: what kind, about which job, and how it was said."""

    kind: IntentKind
    job: str | None
    # Asked in so many words ("why…", "cancel…", "status of…", "how many… free") rather than a question
    # word met in passing ("… cancel …", "… free gpus …"); a request for resources beats the latter.
    plainly_asked: bool


def find_job_reference(text: str) -> str | None:
    """The job id or workload name a question is about, or None."""
    for pattern in _JOB_ID_RES:
        found = pattern.search(text)
        if found is not None:
            return found.group("id")
    for index, pattern in enumerate(_JOB_NAME_RES):
        for found in pattern.finditer(text):
            name = found.group("name").rstrip(".,;:!?")
            if name.lower() in NOT_JOB_NAMES:
                continue
            # After a verb, only a name that looks like one ("llama-sft", "run_7"), not an English word.
            if index == len(_JOB_NAME_RES) - 1 and not _NAMEISH_RE.search(name):
                continue
            return name
    return None


_MORE_JOBS_RE = lazy(
    r"^(?P<more>(?:\s*(?:,|&|\+|\band\b|\bor\b|\bplus\b|\bas\s+well\s+as\b)\s*(?:(?:job|jobs|deployment|pod)\s+)?#?"
    r"[a-z0-9][\w.\-]*|\s+#?\d{1,12}(?:_\d{1,9})?(?![\w.]))+)",
    _I,
)
_MORE_JOB_RE = lazy(r"#?(?P<job>[a-z0-9][\w.\-]*)", _I)


def other_jobs(text: str, job: str) -> tuple[str, ...]:
    """The jobs named right after `job` in a list ("cancel 1201 and 1202", "kill 7, 8 and 9")."""
    at = re.search(rf"(?<![\w.-]){re.escape(job)}(?![\w.-])", text)
    found = _MORE_JOBS_RE.match(text[at.end() :]) if at else None
    if found is None:
        return ()
    named = (m.group("job").rstrip(".") for m in _MORE_JOB_RE.finditer(found.group("more")))
    others = [
        n
        for n in named
        if n.lower() not in NOT_JOB_NAMES and n.lower() not in ("and", "or", "plus", "as", "well")
    ]
    # Another job looks like one: an id like the first, or a name with a digit, dash or underscore.
    return tuple(n for n in dict.fromkeys(others) if n != job and (n.isdigit() or _NAMEISH_RE.search(n)))


def orders_cancel(text: str, job: str | None) -> bool:
    """Whether `text` orders `job` cancelled in so many words, as the grammar's cancel verbs say it.

    With no job: whether it opens with a cancel order that names none ("cancel it", "kill that one").
    For whoever must not take a cancel from anything weaker (the language model's grounding).
    """
    if job is None:
        return _CANCEL_OPENING_RE.search(text) is not None and find_job_reference(text) is None
    named = re.escape(job)
    orders = (
        lazy(rf"\b{_CANCEL_VERBS}{_ORDER_GAP}{named}(?![\w.-])", _I),
        lazy(rf"(?<![\w.-]){named}{_SHOULD_BE}{_CANCELLED}\b", _I),
    )
    for order in orders:
        for found in order.finditer(text):
            if not _DENIED_BEFORE_RE.search(text[max(0, found.start() - 24) : found.start()]):
                return True
    return False


def _matches_any(patterns: tuple[LazyPattern, ...], text: str) -> bool:
    return any(p.search(text) for p in patterns)


def _mentions(lowered: str, cues: tuple[str, ...]) -> bool:
    # A substring test costs nanoseconds where a search costs microseconds: a group of patterns is
    # searched only when one of its cues is in the text.
    return any(cue in lowered for cue in cues)


def recognise_question(text: str) -> Question | None:
    """The question or order `text` asks, or None when it is not one (likely a request for GPUs)."""
    lowered = text.lower()
    if _HELP_RE.search(text) or _HOW_DO_I_RE.search(text):
        return Question(IntentKind.HELP, None, True)
    if _CANCEL_OPENING_RE.search(text):
        return Question(IntentKind.CANCEL, find_job_reference(text), True)
    if _mentions(lowered, WHY_CUES) or _mentions(lowered, FAILURE_CUES):
        if _WHY_FAILED_RE.search(text) and (job := find_job_reference(text)) is not None:
            return Question(IntentKind.STATUS, job, True)
        if _matches_any(_WHY_RES, text):
            return Question(IntentKind.WHY_PENDING, find_job_reference(text), True)
    if _matches_any(_STATUS_RES, text):
        job = find_job_reference(text)
        # A status question about no job in particular is a look at one's queue.
        return Question(IntentKind.STATUS if job else IntentKind.QUEUE, job, True)
    if _mentions(lowered, DIGEST_CUES) and _matches_any(_DIGEST_RES, text):
        return Question(IntentKind.DIGEST, None, True)
    mentions_free = _mentions(lowered, CAPACITY_CUES)
    if mentions_free and _matches_any(_CAPACITY_OPENING_RES, text):
        return Question(IntentKind.CAPACITY, None, True)
    if _mentions(lowered, QUEUE_CUES) and _matches_any(_QUEUE_RES, text):
        return Question(IntentKind.QUEUE, None, True)
    if _mentions(lowered, CANCEL_CUES) and _CANCEL_ANYWHERE_RE.search(text):
        job = find_job_reference(text)
        if job is not None:
            return Question(IntentKind.CANCEL, job, False)
    if _mentions(lowered, DIGEST_CUES) and _USAGE_RE.search(text):
        return Question(IntentKind.DIGEST, None, False)
    if _STATUS_LOOSELY_RE.search(text) and (job := find_job_reference(text)) is not None:
        return Question(IntentKind.STATUS, job, False)
    if mentions_free and _CAPACITY_ANYWHERE_RE.search(text):
        return Question(IntentKind.CAPACITY, None, False)
    if _HELP_WORD_RE.search(text):
        return Question(IntentKind.HELP, None, False)
    return None
