"""The three PATCH bodies the apiserver takes as JSON: merge, strategic merge and JSON Patch.

The python client sends strategic merge for dict bodies and JSON Patch for lists. Strategic merge is
merge patch plus list merging by key for the lists that declare a `patchMergeKey` (containers by
name, tolerations replace, ...); the handful of lists a GPU workload patches are listed here rather
than read from the OpenAPI schema. `$patch: delete|replace` directives are honoured.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.k8s_emulator.errors import ApiError, status_body

JsonObject = dict[str, Any]

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"

# Field name → merge key, for lists whose patchStrategy is "merge" in the built-in types.
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "env": "name",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
}
_MERGED_PRIMITIVE_LISTS = {"finalizers"}


def merge_patch(target: object, patch: object) -> object:
    """RFC 7386: maps merge, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: object, patch: object) -> object:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and key in _MERGE_KEYS and isinstance(result.get(key), list):
            result[key] = _merge_list(result[key], value, _MERGE_KEYS[key])
        elif isinstance(value, list) and key in _MERGED_PRIMITIVE_LISTS and isinstance(result.get(key), list):
            result[key] = list(dict.fromkeys([*result[key], *value]))
        elif isinstance(value, dict):
            if value.get("$patch") == "delete":
                result.pop(key, None)
            else:
                result[key] = strategic_merge_patch(result.get(key), value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _merge_list(target: list[Any], patch: list[Any], merge_key: str) -> list[Any]:
    merged = list(target)
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            return copy.deepcopy(patch)
        index = next(
            (
                i
                for i, existing in enumerate(merged)
                if isinstance(existing, dict) and existing.get(merge_key) == item[merge_key]
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                merged.pop(index)
        elif index is None:
            merged.append(strategic_merge_patch({}, item))
        else:
            merged[index] = strategic_merge_patch(merged[index], item)
    return merged


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, _unprocessable(f"invalid JSON pointer {path!r}"))
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _unprocessable(message: str) -> JsonObject:
    return status_body(422, "Invalid", message)


def _parent(document: object, parts: list[str]) -> tuple[object, str]:
    node = document
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise ApiError(422, _unprocessable(f"doc is missing path: {'/' + '/'.join(parts)}"))
    return node, parts[-1]


def json_patch(document: object, operations: list[Any]) -> object:
    """RFC 6902 add/remove/replace/test/copy/move."""
    result = copy.deepcopy(document)
    for operation in operations:
        op, path = operation.get("op"), operation.get("path", "")
        parts = _pointer(path)
        if not parts:
            if op in ("add", "replace"):
                result = copy.deepcopy(operation.get("value"))
                continue
            raise ApiError(422, _unprocessable(f"unsupported operation on the root: {op}"))
        parent, last = _parent(result, parts)
        if op == "test":
            if _get(parent, last, path) != operation.get("value"):
                raise ApiError(422, _unprocessable(f"testing value {path} failed"))
        elif op == "remove":
            _remove(parent, last, path)
        elif op in ("add", "replace"):
            if op == "replace":
                _get(parent, last, path)
            _put(parent, last, copy.deepcopy(operation.get("value")), insert=op == "add")
        elif op in ("copy", "move"):
            source_parent, source_last = _parent(result, _pointer(operation.get("from", "")))
            value = copy.deepcopy(_get(source_parent, source_last, operation.get("from", "")))
            if op == "move":
                _remove(source_parent, source_last, operation.get("from", ""))
            _put(parent, last, value, insert=True)
        else:
            raise ApiError(422, _unprocessable(f"Unexpected kind: {op}"))
    return result


def _get(parent: object, key: str, path: str) -> object:
    if isinstance(parent, dict) and key in parent:
        return parent[key]
    if isinstance(parent, list) and key.isdigit() and int(key) < len(parent):
        return parent[int(key)]
    raise ApiError(422, _unprocessable(f"doc is missing key: {path}"))


def _remove(parent: object, key: str, path: str) -> None:
    _get(parent, key, path)
    if isinstance(parent, dict):
        del parent[key]
    elif isinstance(parent, list):
        del parent[int(key)]


def _put(parent: object, key: str, value: object, *, insert: bool) -> None:
    if isinstance(parent, dict):
        parent[key] = value
    elif isinstance(parent, list):
        if key == "-":
            parent.append(value)
        elif insert:
            parent.insert(int(key), value)
        else:
            parent[int(key)] = value


def apply_patch(content_type: str, target: JsonObject, patch: object) -> JsonObject:
    kind = content_type.split(";")[0].strip()
    if kind == MERGE:
        result = merge_patch(target, patch)
    elif kind == STRATEGIC:
        result = strategic_merge_patch(target, patch)
    elif kind == JSON_PATCH:
        if not isinstance(patch, list):
            raise ApiError.bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
        result = json_patch(target, patch)
    else:
        raise ApiError.unsupported_media_type(content_type)
    if not isinstance(result, dict):
        raise ApiError.bad_request("the patch did not produce an object")
    return result
