"""Talk about GPUs that is not a request for them: "write a haiku about H100s", "fyi yesterday's run
on 8 H100s took 14 hours", "are H100s faster than A100s?".

A request that names GPUs but nothing to run ("2 A100s for 4 hours") is read by its shape, since
its words are the resources. Talk is told apart by what a request never is, and only when no request
word is present ("need", "give me", "run" as a verb, "please", "can I get"…):
- a report of something past: "took", "ran", "lasted", "finished", "fyi" (a time alone, "like
  last time", "same as yesterday", is a request's reference, not a report);
- another task: "write", "tell", "explain", "compare", or a poem, joke, story;
- talk about the GPUs: "about H100s", "than", "versus", "the difference between";
- an opinion: "love", "hate", "awesome";
- a question that is not asking for them: opened with is/are/does…, or with what/which/why/how,
  which is talk even beside a request word ("what's the best way to run on 4 H100s"; the
  questions the concierge answers are recognised before this, in queries.py).
A GPU named with no amount, no request word and words besides ("the H100s are so fast") is a
mention, not a request. A text that names a command, an image or a model is a request whatever
else it says: it has something to run.
"""

from __future__ import annotations

import re

from bot.understanding.gpu_models import GPU_MODEL
from bot.understanding.lazy_re import lazy

_I = re.IGNORECASE
# "run" is a request only as a verb: "yesterday's run", "the run", "my run" are talk about a job.
_REQUEST_RE = lazy(
    r"\b(?:need|needs|want|wanna|give|get|submit|schedule|queue|sbatch|allocate|reserve|book|request|deploy"
    r"|serve|launch|start|train|fine-?tune|rerun|re-run|resubmit|retry|again|spin\s+up|i'?d\s+(?:like|love)"
    r"|use|switch|change|make\s+it|instead"  # a change to a request in a thread
    r"|please|pls|plz|(?:can|could|may)\s+(?:i|we)\s+(?:have|use|grab|borrow))\b"
    r"|(?<!\bthe\s)(?<!\bmy\s)(?<!\bour\s)(?<!\bthat\s)(?<!\bthis\s)(?<!\blast\s)(?<!\ba\s)(?<!'s\s)\brun\b",
    _I,
)
# A question opened by what/which/why/where/who or how (not "how about", "how many", "how much":
# those propose or count): talk whatever verb it holds; the questions the concierge answers are
# recognised before this.
_ASKS_ABOUT_RE = lazy(
    r"^\W*(?:(?:hey|hi|hello|ok|okay|so)\b[\s,!.:-]*)?(?:what|which|why|where|who|whom|whose"
    r"|how(?!\s+(?:about|many|much)\b))\b",
    _I,
)
_GPU = rf"(?:(?:\d+\s*)?(?:{GPU_MODEL})s?|gpus?|graphics\s+cards?)"
_TALK_RES = (
    # a report of something past
    lazy(
        r"\b(?:took|ran|lasted|finished|completed|crashed|died|used\s+to|just\s+got|bought|installed|arrived"
        r"|received|ordered|fyi|btw|by\s+the\s+way|just\s+so\s+you\s+know)\b",
        _I,
    ),
    # another task than running something
    lazy(
        r"^\W*(?:(?:hey|hi|hello|ok|okay|so)\b[\s,!.:-]*)?(?:(?:can|could|would|will)\s+you\s+)?(?:please\s+)?"
        r"(?:write|compose|tell|explain|describe|compare|summari[sz]e|draw|translate|sing|recite|make\s+up"
        r"|list\s+facts|teach)\b"
        r"|\b(?:haiku|poem|limerick|sonnet|song|story|joke|essay|rap|riddle|meme)s?\b",
        _I,
    ),
    # talk about the GPUs
    lazy(
        rf"(?<!\bhow\s)(?<!\bwhat\s)\b(?:about|regarding|concerning|on\s+the\s+topic\s+of)\s+(?:the\s+|our\s+|these\s+|those\s+)?{_GPU}"
        r"|\b(?:than|versus|vs\.?|compared\s+(?:to|with)|difference\s+between|better|worse|faster|slower)\b",
        _I,
    ),
    # an opinion
    lazy(r"\b(?:love|loved|hate|hated|awesome|amazing|cool|lol|haha|wow|beautiful|impressive)\b", _I),
    # a question that does not ask for GPUs
    lazy(
        r"^\W*(?:is|are|was|were|does|do|did|should|shall)\s+(?!there\b)",
        _I,
    ),
)


def is_talk(text: str, *, states_amounts: bool = True, unread_words: int = 0) -> bool:
    """Whether `text` (its command taken out) talks about GPUs rather than asking for them.

    A text that names a GPU but no amount of anything (no count, size or length), asks for nothing
    and has words nobody read ("the H100s are so fast") mentions them; "H100" alone, or "H100
    please", may still be a request or the answer to a question."""
    if _ASKS_ABOUT_RE.search(text):
        return True  # "what's the best way to run on 4 H100s": a question, whatever verb it holds
    if _REQUEST_RE.search(text):
        return False
    if not states_amounts and unread_words:
        return True
    return any(pattern.search(text) for pattern in _TALK_RES)
