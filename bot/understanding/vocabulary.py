"""The words the grammar treats specially, in one place so that they are tuned together.

Each set answers one question the readers ask about a word: may it be a program's name (after
"run")? does it end a command ("… python x.py with 2 GPUs")? is it filler that says nothing about
the request ("please", "I need")? can it be a job's name or a field's value? Lists of words rather
than patterns, because a word is added here when a real sentence was misread, and a list says so
plainly.
"""

from __future__ import annotations

from backends.types import IntentKind


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _cues(text: str) -> tuple[str, ...]:
    return tuple(text.split("|"))


# Never a program after "run": "run a job", "run it on 2 gpus", "run training for 4h".
NOT_PROGRAMS = _words(
    "a an the my our your this that these those it them its some something anything job jobs script "
    "scripts code program training train inference experiment experiments sweep sweeps model models "
    "notebook server container image images pod pods deployment service task tasks workload on with for "
    "in at using via under please me us and then to from of as by again now here there something slurm "
    "kubernetes k8s sbatch gpu gpus node nodes batch interactive"
)

# Where an unquoted command ends and the request's details resume.
COMMAND_ENDERS = _words(
    "with for on using in at via under please pls plz thanks thank thx and but across over per within "
    "inside as need needs needing requiring require requires give allocate asap now then i i'd i'm i'll "
    "we we'd we'll so because since ideally"
)

# Words that join others and carry nothing of their own: a number is named back with the word after
# it ("4 Stunden", "1 gpu") unless it is one of these.
JOINING_WORDS = _words("for with on in at to and or of a an the please by from then")

# Never the value of a label such as "partition" or "named" ("partition with the most GPUs").
NOT_VALUES = _words(
    "the a an with and for on in of to at by is as it this that my our your me please pls hours hour "
    "using via"
)

# Words that carry no request detail, so leaving them unread does not lower confidence.
FILLER = _words(
    "i i'd i'm id im we me my our us you your please pls plz can could would will want wanted need needs "
    "like love give get got let lets let's a an the to for with on in of and or at by via using use from "
    "some it its this that is are be just also then so now asap thanks thank thx hi hey hello run running "
    "runs execute executing launch start submit schedule queue sbatch job jobs gpu gpus card cards node "
    "nodes mig slice slices instance kubernetes k8s slurm deploy deploying serve serving deployment "
    "service endpoint model image container shared time-sliced timesliced dedicated x each per total "
    "across over memory ram mem vram least max maximum min minimum limit walltime time up as train "
    "training fine-tune finetune inference batch cluster script program command ok okay quick quickly "
    "small tiny big large replicas replica port namespace partition account qos named name called cpu "
    "cpus core cores host hosting spin create reserve allocate book server vllm tgi sglang triton ollama "
    "bot concierge more of them"
)

# Never a job's name in a question ("why is my job pending": "pending" names no job).
NOT_JOB_NAMES = _words(
    "is was are be been being has have had not isnt isn't pending running still stuck now status state "
    "the a an my our your it this that which what why when how so yet start started starting begin run "
    "runs ran queued waiting in on at of for with from to and or please pls done finished doing going up "
    "down any all job jobs deployment deployments pod pods workload service task there here today again "
    "first last failed fail crashed"
)

# Cues: substrings without which a group of question patterns cannot match (queries.py).
WHY_CUES = _cues(
    "why|when|wait|hold|block|delay|eta|expected|stuck|explain|diagnos|how long|how soon|been pending"
)
FAILURE_CUES = _cues("fail|crash|die|exit|kill|oom")
DIGEST_CUES = _cues(
    "report|digest|summar|utili|usage|busy|efficien|stats|well used|waste|gpu-h|gpu h|gpu-t|gpu t|gpu-d|gpu d"
    "|gpuh|use by|use per|used the|uses the|using the|top|how much"
)
CAPACITY_CUES = _cues(
    "free|availab|avail|idle|unused|spare|open|unallocated|vacant|left|unoccupied|capacity|sinfo|how many"
    "|how much|what|which"
)
QUEUE_CUES = _cues("queue|job|deploy|workload|pod|run|pend|wait|using|hogg|holding")  # "running", "pending"…
CANCEL_CUES = _cues("cancel|terminate|abort|undeploy")


# Questions typed as subcommands (`/gpu why 1234`, or "why 1234" in a DM): the Slack door answers
# them by name, and the model router leaves them (with "help" and "new") to the grammar.
QUESTION_SUBCOMMANDS = {
    "queue": IntentKind.QUEUE,
    "free": IntentKind.CAPACITY,
    "why": IntentKind.WHY_PENDING,
    "status": IntentKind.STATUS,
    "cancel": IntentKind.CANCEL,
}
SUBCOMMANDS = (*QUESTION_SUBCOMMANDS, "help", "new")
