"""The few phrases a conversation recognises before any understanding: "submit it", "never mind".

They are about the conversation itself, not a request, so no grammar or model reads them: a model
must never be the one that decides a job is to be submitted. Each pattern matches the whole
message, so "submit it with 4 GPUs" is a change to the draft, not a confirmation.
"""

from __future__ import annotations

import re

SUBMIT_IT = re.compile(
    r"^\s*(?:ok(?:ay)?|yes|great|good|looks\s+good|lgtm)?[\s,.!]*(?:please\s+)?"
    r"(?:submit|send|run|launch|go\s+ahead(?:\s+and\s+submit)?)(?:\s+(?:it|that|this|the\s+job))?"
    r"(?:\s+(?:now|please))?[\s.!]*$",
    re.IGNORECASE,
)
DROP_DRAFT = re.compile(
    r"^\s*(?:(?:no,?\s+)?(?:please\s+)?(?:cancel|drop|discard|scrap|forget|abandon)"
    r"(?:\s+(?:it|that|this|the\s+(?:draft|request|preview)))?(?:\s+(?:please|then))?"
    r"|never\s*mind|start\s+over|forget\s+about\s+it)[\s.!]*$",
    re.IGNORECASE,
)
YES = re.compile(r"^\s*(?:y|yes)[\s.!]*$", re.IGNORECASE)
NO = re.compile(r"^\s*(?:n|no)?[\s.!]*$", re.IGNORECASE)  # an empty answer is the default: no
