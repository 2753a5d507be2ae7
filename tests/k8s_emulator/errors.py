"""The apiserver's failures as `kind: Status` bodies, worded as kube-apiserver words them.

Clients (and the backend's error translation) read `reason`, `code`, `message` and
`details.causes`, so the texts follow apimachinery's `errors.New*` and `field.Error` formats.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.k8s_emulator.resources import ResourceType

JsonObject = dict[str, Any]

_FIELD_ERROR_TYPES = {
    "required": ("Required value", "FieldValueRequired"),
    "invalid": ("Invalid value", "FieldValueInvalid"),
    "not_supported": ("Unsupported value", "FieldValueNotSupported"),
    "forbidden": ("Forbidden", "FieldValueForbidden"),
    "duplicate": ("Duplicate value", "FieldValueDuplicate"),
    "too_long": ("Too long", "FieldValueTooLong"),
    "too_many": ("Too many", "FieldValueTooMany"),
    "not_found": ("Not found", "FieldValueNotFound"),
}
_WITHOUT_VALUE = {"required", "forbidden", "too_long"}


def go_value(value: object) -> str:
    """A bad value as Go's `%q`/`%d`/`%#v` print it in field errors."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        pairs = ", ".join(f"{json.dumps(str(k))}:{json.dumps(str(v))}" for k, v in value.items())
        return f"map[string]string{{{pairs}}}"
    return json.dumps(value)


@dataclass(frozen=True)
class FieldError:
    """One `field.Error`: where, which kind of problem, the value and the detail."""

    kind: str
    field: str
    detail: str = ""
    value: object = None

    def body(self) -> str:
        label = _FIELD_ERROR_TYPES[self.kind][0]
        text = label if self.kind in _WITHOUT_VALUE else f"{label}: {go_value(self.value)}"
        return f"{text}: {self.detail}" if self.detail else text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"

    def cause(self) -> JsonObject:
        return {"reason": _FIELD_ERROR_TYPES[self.kind][1], "message": self.body(), "field": self.field}


def status_body(code: int, reason: str, message: str, details: JsonObject | None = None) -> JsonObject:
    body: JsonObject = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details:
        body["details"] = details
    body["code"] = code
    return body


def _details(resource: ResourceType, name: str) -> JsonObject:
    details: JsonObject = {}
    if name:
        details["name"] = name
    if resource.group:
        details["group"] = resource.group
    details["kind"] = resource.plural
    return details


@dataclass
class ApiError(Exception):
    """A failed request: the HTTP status and its `Status` body."""

    code: int
    body: JsonObject
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code} {self.body.get('reason')}: {self.body.get('message')}"

    @classmethod
    def not_found(cls, resource: ResourceType, name: str) -> ApiError:
        message = f'{resource.qualified} "{name}" not found'
        return cls(404, status_body(404, "NotFound", message, _details(resource, name)))

    @classmethod
    def already_exists(cls, resource: ResourceType, name: str) -> ApiError:
        message = f'{resource.qualified} "{name}" already exists'
        return cls(409, status_body(409, "AlreadyExists", message, _details(resource, name)))

    @classmethod
    def conflict(cls, resource: ResourceType, name: str) -> ApiError:
        message = (
            f'Operation cannot be fulfilled on {resource.qualified} "{name}": the object has been '
            "modified; please apply your changes to the latest version and try again"
        )
        return cls(409, status_body(409, "Conflict", message, _details(resource, name)))

    @classmethod
    def invalid(cls, resource: ResourceType, name: str, errors: list[FieldError]) -> ApiError:
        group_kind = f"{resource.kind}.{resource.group}" if resource.group else resource.kind
        aggregate = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(map(str, errors)) + "]"
        details: JsonObject = {"name": name}
        if resource.group:
            details["group"] = resource.group
        details["kind"] = resource.kind
        details["causes"] = [e.cause() for e in errors]
        message = f'{group_kind} "{name}" is invalid: {aggregate}'
        return cls(422, status_body(422, "Invalid", message, details))

    @classmethod
    def forbidden(cls, resource: ResourceType | None, name: str, reason: str) -> ApiError:
        if resource is None:
            message = f"forbidden: {reason}"
            details: JsonObject = {}
        else:
            subject = f'{resource.qualified} "{name}"' if name else resource.qualified
            message = f"{subject} is forbidden: {reason}"
            details = _details(resource, name)
        return cls(403, status_body(403, "Forbidden", message, details))

    @classmethod
    def bad_request(cls, message: str) -> ApiError:
        return cls(400, status_body(400, "BadRequest", message))

    @classmethod
    def unauthorized(cls) -> ApiError:
        return cls(401, status_body(401, "Unauthorized", "Unauthorized"))

    @classmethod
    def method_not_allowed(cls, method: str, path: str) -> ApiError:
        message = f"the server does not allow this method on the requested resource ({method} {path})"
        return cls(405, status_body(405, "MethodNotAllowed", message))

    @classmethod
    def no_route(cls) -> ApiError:
        details = {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]}
        return cls(
            404, status_body(404, "NotFound", "the server could not find the requested resource", details)
        )

    @classmethod
    def unsupported_media_type(cls, content_type: str) -> ApiError:
        message = (
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, "
            f"application/strategic-merge-patch+json (got {content_type!r})"
        )
        return cls(415, status_body(415, "UnsupportedMediaType", message))

    @classmethod
    def expired(cls, requested: int, oldest: int) -> ApiError:
        message = f"too old resource version: {requested} ({oldest})"
        return cls(410, status_body(410, "Expired", message))

    @classmethod
    def internal(cls, message: str) -> ApiError:
        return cls(500, status_body(500, "InternalError", f"Internal error occurred: {message}"))
