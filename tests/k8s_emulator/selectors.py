"""Label and field selectors, parsed from query strings and matched against stored objects.

Semantics follow apimachinery: `!=` and `notin` also match objects without the key; `in`, `=`, `>`
and `<` need it. Field selectors accept only the fields each resource registers (anything else is the
apiserver's 400 "field label not supported"), and a missing field reads as "" (so
`spec.nodeName=` finds unbound pods).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tests.k8s_emulator import resources
from tests.k8s_emulator.errors import ApiError
from tests.k8s_emulator.resources import ResourceType

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist, Gt, Lt (the LabelSelector names)
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "In":
            return present and value in self.values
        if self.operator == "NotIn":
            return not present or value not in self.values
        if self.operator == "Exists":
            return present
        if self.operator == "DoesNotExist":
            return not present
        if self.operator in ("Gt", "Lt") and present and value is not None:
            try:
                have, bound = int(value), int(self.values[0])
            except ValueError:
                return False
            return have > bound if self.operator == "Gt" else have < bound
        return False


LabelSelector = tuple[Requirement, ...]

_TOKEN = re.compile(r"\s*(!=|==|=|!|\(|\)|,|>|<|[^\s!=(),<>]+)")


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            if text[position:].strip():
                raise _selector_error(text, "unexpected character")
            break
        tokens.append(match.group(1))
        position = match.end()
    return tokens


def _selector_error(text: str, why: str) -> ApiError:
    return ApiError.bad_request(f"unable to parse requirement: found '{text}', {why}")


def parse_label_selector(text: str) -> LabelSelector:
    """`app=web,tier in (a,b),!canary,gpu` → requirements (all must hold)."""
    tokens = _tokens(text)
    requirements: list[Requirement] = []
    position = 0

    def take() -> str:
        nonlocal position
        if position >= len(tokens):
            raise _selector_error(text, "expected more")
        token = tokens[position]
        position += 1
        return token

    while position < len(tokens):
        token = take()
        if token == "!":
            requirements.append(Requirement(take(), "DoesNotExist"))
        else:
            key = token
            operator = tokens[position] if position < len(tokens) else ","
            if operator == ",":
                requirements.append(Requirement(key, "Exists"))
            elif operator in ("=", "=="):
                position += 1
                value = "" if position >= len(tokens) or tokens[position] == "," else take()
                requirements.append(Requirement(key, "In", (value,)))
            elif operator == "!=":
                position += 1
                value = "" if position >= len(tokens) or tokens[position] == "," else take()
                requirements.append(Requirement(key, "NotIn", (value,)))
            elif operator in (">", "<"):
                position += 1
                requirements.append(Requirement(key, "Gt" if operator == ">" else "Lt", (take(),)))
            elif operator in ("in", "notin"):
                position += 1
                if take() != "(":
                    raise _selector_error(text, "expected '(' after 'in'/'notin'")
                values: list[str] = []
                while (token := take()) != ")":
                    if token != ",":
                        values.append(token)
                requirements.append(Requirement(key, "In" if operator == "in" else "NotIn", tuple(values)))
            else:
                raise _selector_error(text, f"unexpected {operator!r} after {key!r}")
        if position < len(tokens):
            if tokens[position] != ",":
                raise _selector_error(text, "expected ','")
            position += 1
    return tuple(requirements)


def selector_from_object(selector: Mapping[str, Any] | None) -> LabelSelector:
    """A `metav1.LabelSelector` (matchLabels + matchExpressions) as requirements."""
    if not selector:
        return ()
    requirements = [Requirement(k, "In", (str(v),)) for k, v in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or []:
        requirements.append(
            Requirement(expression["key"], expression["operator"], tuple(expression.get("values") or ()))
        )
    return tuple(requirements)


def selector_to_string(selector: Mapping[str, Any] | None) -> str:
    """The text form (`status.selector` of a Scale), as `metav1.FormatLabelSelector` writes it."""
    parts: list[str] = []
    for requirement in selector_from_object(selector):
        if requirement.operator == "In" and len(requirement.values) == 1:
            parts.append(f"{requirement.key}={requirement.values[0]}")
        elif requirement.operator in ("In", "NotIn"):
            word = "in" if requirement.operator == "In" else "notin"
            parts.append(f"{requirement.key} {word} ({','.join(requirement.values)})")
        elif requirement.operator == "Exists":
            parts.append(requirement.key)
        elif requirement.operator == "DoesNotExist":
            parts.append(f"!{requirement.key}")
    return ",".join(parts)


def labels_match(selector: LabelSelector, labels: Mapping[str, str] | None) -> bool:
    labels = labels or {}
    return all(requirement.matches(labels) for requirement in selector)


# ---- field selectors -------------------------------------------------------------------------

FieldGetter = Callable[[JsonObject], object]


def _path(*keys: str) -> FieldGetter:
    def get(obj: JsonObject) -> object:
        value: object = obj
        for key in keys:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    return get


_COMMON: dict[str, FieldGetter] = {
    "metadata.name": _path("metadata", "name"),
    "metadata.namespace": _path("metadata", "namespace"),
}
_BY_RESOURCE: dict[ResourceType, dict[str, FieldGetter]] = {
    resources.PODS: {
        "spec.nodeName": _path("spec", "nodeName"),
        "spec.restartPolicy": _path("spec", "restartPolicy"),
        "spec.schedulerName": _path("spec", "schedulerName"),
        "spec.serviceAccountName": _path("spec", "serviceAccountName"),
        "spec.hostNetwork": _path("spec", "hostNetwork"),
        "status.phase": _path("status", "phase"),
        "status.podIP": _path("status", "podIP"),
        "status.nominatedNodeName": _path("status", "nominatedNodeName"),
    },
    resources.EVENTS: {
        **{
            f"involvedObject.{key}": _path("involvedObject", key)
            for key in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
        },
        "reason": _path("reason"),
        "reportingComponent": _path("reportingComponent"),
        "source": _path("source", "component"),
        "type": _path("type"),
    },
    resources.NODES: {"spec.unschedulable": _path("spec", "unschedulable")},
    resources.SECRETS: {"type": _path("type")},
    resources.NAMESPACES: {"status.phase": _path("status", "phase")},
    resources.JOBS: {"status.successful": _path("status", "succeeded")},
    resources.REPLICASETS: {"status.replicas": _path("status", "replicas")},
}


@dataclass(frozen=True)
class FieldRequirement:
    getter: FieldGetter
    value: str
    equal: bool

    def matches(self, obj: JsonObject) -> bool:
        have = self.getter(obj)
        text = ("true" if have else "false") if isinstance(have, bool) else "" if have is None else str(have)
        return (text == self.value) == self.equal


FieldSelector = tuple[FieldRequirement, ...]


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def parse_field_selector(resource: ResourceType, text: str) -> FieldSelector:
    """`status.phase!=Running,spec.nodeName=gpu-1` for one resource; unknown fields are a 400."""
    known = {**_COMMON, **_BY_RESOURCE.get(resource, {})}
    requirements: list[FieldRequirement] = []
    for part in _split_unescaped(text, ","):
        if not part.strip():
            continue
        match = re.match(r"^\s*([^!=\s]+)\s*(!=|==|=)(.*)$", part)
        if match is None:
            raise ApiError.bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        key, operator, value = match.groups()
        if key not in known:
            raise ApiError.bad_request(f"field label not supported: {key}")
        requirements.append(FieldRequirement(known[key], _unescape(value.strip()), operator != "!="))
    return tuple(requirements)


def fields_match(selector: FieldSelector, obj: JsonObject) -> bool:
    return all(requirement.matches(obj) for requirement in selector)


def match_values(operator: str, value: str | None, values: Sequence[str]) -> bool:
    """A node-selector requirement (`In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt`) on one value."""
    if value is None:
        return operator in ("NotIn", "DoesNotExist")
    return Requirement("k", operator, tuple(values)).matches({"k": value})
