"""Authorization as RBAC decides it: flattened rules, impersonation checks and the denial text.

A test configures rules directly (subject, verbs, API group, resource, namespace or cluster-wide)
rather than Roles and bindings: the decisions are the same, and the table stays readable. Matching
follows the RBAC authorizer: `*` wildcards, `resource/subresource` and `*/subresource`, a namespaced
rule never grants cluster-scoped or all-namespaces requests, and `system:masters` may do anything.
The denial text is apiserver's `forbiddenMessage`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Attributes:
    """What a request asks to do (authorizer.Attributes)."""

    user: UserInfo
    verb: str
    api_group: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""


@dataclass(frozen=True)
class Rule:
    subject: str
    subject_kind: str  # "User" or "Group"
    verbs: frozenset[str]
    api_groups: frozenset[str]
    resources: frozenset[str]
    namespace: str | None  # None: cluster-wide (a ClusterRoleBinding)
    resource_names: frozenset[str] = frozenset()

    def applies_to(self, user: UserInfo) -> bool:
        if self.subject_kind == "Group":
            return self.subject in user.groups
        return self.subject == user.name

    def allows(self, request: Attributes) -> bool:
        if not self.applies_to(request.user):
            return False
        if self.namespace is not None and self.namespace != request.namespace:
            return False
        if not ({"*", request.verb} & self.verbs):
            return False
        if not ({"*", request.api_group} & self.api_groups):
            return False
        if self.resource_names and request.name not in self.resource_names:
            return False
        return _resource_matches(self.resources, request.resource, request.subresource)

    def describe(self) -> str:
        binding = "ClusterRoleBinding" if self.namespace is None else f'RoleBinding in "{self.namespace}"'
        return f'RBAC: allowed by {binding} to {self.subject_kind} "{self.subject}"'


def _resource_matches(rule_resources: frozenset[str], resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    if "*" in rule_resources or combined in rule_resources:
        return True
    return bool(subresource) and f"*/{subresource}" in rule_resources


class Authorizer:
    def __init__(self) -> None:
        self.rules: list[Rule] = []

    def add(
        self,
        subject: str,
        verbs: Iterable[str],
        *,
        api_group: str | Iterable[str] = "",
        resource: str | Iterable[str],
        namespace: str | None = None,
        subject_kind: str = "User",
        resource_names: Iterable[str] = (),
    ) -> Rule:
        if subject_kind not in ("User", "Group"):
            raise ValueError(f"subject_kind must be 'User' or 'Group', not {subject_kind!r}")
        groups = frozenset([api_group] if isinstance(api_group, str) else api_group)
        kinds = frozenset([resource] if isinstance(resource, str) else resource)
        rule = Rule(
            subject, subject_kind, frozenset(verbs), groups, kinds, namespace, frozenset(resource_names)
        )
        self.rules.append(rule)
        return rule

    def decide(self, request: Attributes) -> Rule | None:
        """The rule that allows the request, or None (denied)."""
        if "system:masters" in request.user.groups:
            return Rule("system:masters", "Group", frozenset("*"), frozenset("*"), frozenset("*"), None)
        return next((rule for rule in self.rules if rule.allows(request)), None)


def forbidden_reason(request: Attributes) -> str:
    """apiserver's forbiddenMessage (RBAC adds no reason of its own)."""
    resource = f"{request.resource}/{request.subresource}" if request.subresource else request.resource
    where = f'in the namespace "{request.namespace}"' if request.namespace else "at the cluster scope"
    return (
        f'User "{request.user.name}" cannot {request.verb} resource "{resource}" '
        f'in API group "{request.api_group}" {where}'
    )


def authenticated(user: str, groups: Iterable[str]) -> UserInfo:
    """The groups apiserver adds to every authenticated (or impersonated) user."""
    all_groups = list(dict.fromkeys(groups))
    if user.startswith(SERVICE_ACCOUNT_PREFIX):
        namespace = user[len(SERVICE_ACCOUNT_PREFIX) :].split(":", 1)[0]
        for group in ("system:serviceaccounts", f"system:serviceaccounts:{namespace}"):
            if group not in all_groups:
                all_groups.append(group)
    if user != "system:anonymous" and "system:authenticated" not in all_groups:
        all_groups.append("system:authenticated")
    return UserInfo(user, tuple(all_groups))


def impersonation_checks(actor: UserInfo, user: str, groups: Iterable[str]) -> list[Attributes]:
    """The `impersonate` checks apiserver makes, in its order: the user, then each group."""
    checks: list[Attributes] = []
    if user.startswith(SERVICE_ACCOUNT_PREFIX) and user.count(":") == 3:
        namespace, name = user[len(SERVICE_ACCOUNT_PREFIX) :].split(":", 1)
        checks.append(Attributes(actor, "impersonate", "", "serviceaccounts", namespace=namespace, name=name))
    else:
        checks.append(Attributes(actor, "impersonate", "", "users", name=user))
    for group in groups:
        checks.append(Attributes(actor, "impersonate", "", "groups", name=group))
    return checks
