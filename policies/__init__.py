"""The site's rules as pure functions over a request and who asks (see DESIGN.md, "Policy")."""

from policies.decision import Decision, Usage, Verdict
from policies.judge import footprint_for, gpu_count_reasons, judge
from policies.rules import (
    DEFAULT_POLICY_FILE,
    LimitsOverride,
    PolicyLimits,
    PolicyOverrides,
    PolicySettings,
    RequiredFields,
    Routing,
    load_policy,
)

__all__ = [
    "DEFAULT_POLICY_FILE",
    "Decision",
    "LimitsOverride",
    "PolicyLimits",
    "PolicyOverrides",
    "PolicySettings",
    "RequiredFields",
    "Routing",
    "Usage",
    "Verdict",
    "footprint_for",
    "gpu_count_reasons",
    "judge",
    "load_policy",
]
