"""Validation that the apiserver does before admission, with its field paths and wording.

Only the checks a GPU workload backend can trip over are here (names, labels, containers, images,
resources and extended resources, restart policies, node affinity operators, selectors, volumes,
ports, immutable fields, EndpointSlice addresses and ports); each returns `FieldError`s so the
caller can build the 422 `Invalid` Status with `details.causes`, exactly as kube-apiserver does.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from tests.k8s_emulator import resources
from tests.k8s_emulator.errors import ApiError, FieldError
from tests.k8s_emulator.quantities import parse_quantity
from tests.k8s_emulator.resources import ResourceType
from tests.k8s_emulator.selectors import labels_match, selector_from_object

JsonObject = dict[str, Any]

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")

DNS1123_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1123_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
DNS1035_LABEL_MESSAGE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
LABEL_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
QUALIFIED_NAME_MESSAGE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_STANDARD_CONTAINER_RESOURCES = {"cpu", "memory", "ephemeral-storage"}
_NODE_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")


def _too_long(limit: int) -> str:
    return f"must be no more than {limit} characters"


def dns1123_label_errors(path: str, value: str) -> list[FieldError]:
    errors = []
    if len(value) > 63:
        errors.append(FieldError("invalid", path, _too_long(63), value))
    if not _DNS1123_LABEL.match(value):
        errors.append(FieldError("invalid", path, DNS1123_LABEL_MESSAGE, value))
    return errors


def dns1123_subdomain_errors(path: str, value: str) -> list[FieldError]:
    errors = []
    if len(value) > 253:
        errors.append(FieldError("invalid", path, _too_long(253), value))
    if not _DNS1123_SUBDOMAIN.match(value):
        errors.append(FieldError("invalid", path, DNS1123_SUBDOMAIN_MESSAGE, value))
    return errors


def dns1035_label_errors(path: str, value: str) -> list[FieldError]:
    errors = []
    if len(value) > 63:
        errors.append(FieldError("invalid", path, _too_long(63), value))
    if not _DNS1035_LABEL.match(value):
        errors.append(FieldError("invalid", path, DNS1035_LABEL_MESSAGE, value))
    return errors


def _qualified_name_errors(path: str, key: str) -> list[FieldError]:
    prefix, _, name = key.rpartition("/")
    errors = []
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        errors.append(FieldError("invalid", path, f"prefix part {DNS1123_SUBDOMAIN_MESSAGE}", key))
    if not name:
        errors.append(FieldError("invalid", path, "name part must be non-empty", key))
    elif len(name) > 63:
        errors.append(FieldError("invalid", path, f"name part {_too_long(63)}", key))
    elif not _QUALIFIED_NAME.match(name):
        errors.append(FieldError("invalid", path, QUALIFIED_NAME_MESSAGE, key))
    return errors


def label_errors(path: str, labels: object) -> list[FieldError]:
    if labels is None:
        return []
    if not isinstance(labels, Mapping):
        return [FieldError("invalid", path, "must be a map of strings", labels)]
    errors: list[FieldError] = []
    for key, value in labels.items():
        errors += _qualified_name_errors(path, str(key))
        if not isinstance(value, str):
            errors.append(FieldError("invalid", path, "label values must be strings", value))
            continue
        if len(value) > 63:
            errors.append(FieldError("invalid", path, _too_long(63), value))
        if not _LABEL_VALUE.match(value):
            errors.append(FieldError("invalid", path, LABEL_VALUE_MESSAGE, value))
    return errors


def metadata_errors(resource: ResourceType, metadata: JsonObject, path: str = "metadata") -> list[FieldError]:
    errors: list[FieldError] = []
    name = metadata.get("name")
    if path == "metadata":
        if not name:
            errors.append(FieldError("required", f"{path}.name", "name or generateName is required"))
        elif resource in (resources.NAMESPACES,):
            errors += dns1123_label_errors(f"{path}.name", name)
        elif resource is resources.SERVICES:
            errors += dns1035_label_errors(f"{path}.name", name)
        else:
            errors += dns1123_subdomain_errors(f"{path}.name", name)
            if resource is resources.JOBS and len(name) > 63:
                errors.append(FieldError("invalid", f"{path}.name", _too_long(63), name))
    errors += label_errors(f"{path}.labels", metadata.get("labels"))
    for key in metadata.get("annotations") or {}:
        errors += _qualified_name_errors(f"{path}.annotations", str(key))
    return errors


# ---- pod spec ---------------------------------------------------------------------------------


def _resource_errors(path: str, requirements: JsonObject) -> list[FieldError]:
    errors: list[FieldError] = []
    limits = requirements.get("limits") or {}
    requests = requirements.get("requests") or {}
    for section, values in (("limits", limits), ("requests", requests)):
        for name, quantity in values.items():
            where = f"{path}.{section}[{name}]"
            standard = name in _STANDARD_CONTAINER_RESOURCES or name.startswith("hugepages-")
            if not standard and "/" not in name:
                errors.append(
                    FieldError("invalid", where, "must be a standard resource for containers", name)
                )
                continue
            value = parse_quantity(quantity)
            if value < 0:
                errors.append(
                    FieldError("invalid", where, "must be greater than or equal to 0", str(quantity))
                )
            elif not standard and value.denominator != 1:
                errors.append(FieldError("invalid", where, "must be an integer", str(quantity)))
    for name, quantity in requests.items():
        overcommit = name in _STANDARD_CONTAINER_RESOURCES
        if name in limits:
            request, limit = parse_quantity(quantity), parse_quantity(limits[name])
            if request != limit and not overcommit:
                detail = f"must be equal to {name} limit of {limits[name]}"
                errors.append(FieldError("invalid", f"{path}.requests", detail, str(quantity)))
            elif request > limit:
                detail = f"must be less than or equal to {name} limit of {limits[name]}"
                errors.append(FieldError("invalid", f"{path}.requests", detail, str(quantity)))
        elif not overcommit and not name.startswith("hugepages-"):
            errors.append(
                FieldError("required", f"{path}.limits", "Limit must be set for non overcommitable resources")
            )
    return errors


def _container_errors(
    path: str, containers: object, volume_names: set[str], required: bool
) -> list[FieldError]:
    if not containers:
        return [FieldError("required", path)] if required else []
    if not isinstance(containers, list):
        return [FieldError("invalid", path, "must be a list", containers)]
    errors: list[FieldError] = []
    seen: set[str] = set()
    for index, container in enumerate(containers):
        where = f"{path}[{index}]"
        name = container.get("name")
        if not name:
            errors.append(FieldError("required", f"{where}.name"))
        else:
            errors += dns1123_label_errors(f"{where}.name", name)
            if name in seen:
                errors.append(FieldError("duplicate", f"{where}.name", value=name))
            seen.add(name)
        if not container.get("image"):
            errors.append(FieldError("required", f"{where}.image"))
        errors += _resource_errors(f"{where}.resources", container.get("resources") or {})
        for port_index, port in enumerate(container.get("ports") or []):
            number = port.get("containerPort")
            if not isinstance(number, int) or not 1 <= number <= 65535:
                errors.append(
                    FieldError(
                        "invalid",
                        f"{where}.ports[{port_index}].containerPort",
                        "must be between 1 and 65535, inclusive",
                        number,
                    )
                )
        for mount_index, mount in enumerate(container.get("volumeMounts") or []):
            if mount.get("name") not in volume_names:
                errors.append(
                    FieldError(
                        "not_found", f"{where}.volumeMounts[{mount_index}].name", value=mount.get("name")
                    )
                )
            if not mount.get("mountPath"):
                errors.append(FieldError("required", f"{where}.volumeMounts[{mount_index}].mountPath"))
    return errors


def _toleration_errors(path: str, tolerations: list[JsonObject]) -> list[FieldError]:
    errors: list[FieldError] = []
    for index, toleration in enumerate(tolerations):
        where = f"{path}[{index}]"
        operator = toleration.get("operator") or "Equal"
        if operator not in ("Equal", "Exists"):
            detail = 'supported values: "Equal", "Exists"'
            errors.append(FieldError("not_supported", f"{where}.operator", detail, operator))
        if not toleration.get("key") and operator != "Exists":
            detail = (
                'operator must be Exists when `key` is empty, which means "match all values and all keys"'
            )
            errors.append(FieldError("invalid", f"{where}.operator", detail, operator))
        if operator == "Exists" and toleration.get("value"):
            detail = "value must be empty when `operator` is 'Exists'"
            errors.append(FieldError("invalid", f"{where}.operator", detail, toleration.get("value")))
        effect = toleration.get("effect")
        if effect and effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            detail = 'supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"'
            errors.append(FieldError("not_supported", f"{where}.effect", detail, effect))
    return errors


def _node_selector_requirement_errors(path: str, requirement: JsonObject) -> list[FieldError]:
    operator = requirement.get("operator")
    values = requirement.get("values") or []
    if operator not in _NODE_SELECTOR_OPERATORS:
        detail = "supported values: " + ", ".join(f'"{o}"' for o in _NODE_SELECTOR_OPERATORS)
        return [FieldError("not_supported", f"{path}.operator", detail, operator)]
    if operator in ("In", "NotIn") and not values:
        return [
            FieldError("required", f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'")
        ]
    if operator in ("Exists", "DoesNotExist") and values:
        detail = "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
        return [FieldError("forbidden", f"{path}.values", detail)]
    if operator in ("Gt", "Lt"):
        if len(values) != 1:
            detail = "must be specified single value when `operator` is 'Lt' or 'Gt'"
            return [FieldError("required", f"{path}.values", detail)]
        try:
            int(values[0])
        except ValueError:
            return [FieldError("invalid", f"{path}.values[0]", "must be an integer", values[0])]
    return []


def _affinity_errors(path: str, affinity: JsonObject) -> list[FieldError]:
    required = (affinity.get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution")
    if not required:
        return []
    where = f"{path}.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        return [FieldError("required", where, "must have at least one node selector term")]
    errors: list[FieldError] = []
    for term_index, term in enumerate(terms):
        for index, expression in enumerate(term.get("matchExpressions") or []):
            errors += _node_selector_requirement_errors(
                f"{where}[{term_index}].matchExpressions[{index}]", expression
            )
    return errors


def pod_spec_errors(path: str, spec: JsonObject, restart_policies: tuple[str, ...]) -> list[FieldError]:
    errors: list[FieldError] = []
    volumes = spec.get("volumes") or []
    volume_names: set[str] = set()
    for index, volume in enumerate(volumes):
        name = volume.get("name")
        if not name:
            errors.append(FieldError("required", f"{path}.volumes[{index}].name"))
        elif name in volume_names:
            errors.append(FieldError("duplicate", f"{path}.volumes[{index}].name", value=name))
        volume_names.add(name or "")
    errors += _container_errors(f"{path}.containers", spec.get("containers"), volume_names, required=True)
    errors += _container_errors(
        f"{path}.initContainers", spec.get("initContainers"), volume_names, required=False
    )
    policy = spec.get("restartPolicy")
    if policy not in restart_policies:
        detail = "supported values: " + ", ".join(f'"{p}"' for p in restart_policies)
        errors.append(FieldError("not_supported", f"{path}.restartPolicy", detail, policy))
    errors += _toleration_errors(f"{path}.tolerations", spec.get("tolerations") or [])
    errors += _affinity_errors(f"{path}.affinity", spec.get("affinity") or {})
    errors += label_errors(f"{path}.nodeSelector", spec.get("nodeSelector"))
    runtime_class = spec.get("runtimeClassName")
    if runtime_class is not None:
        errors += dns1123_subdomain_errors(f"{path}.runtimeClassName", runtime_class)
    return errors


# ---- per resource -------------------------------------------------------------------------------


def _template_errors(obj: JsonObject, restart_policies: tuple[str, ...]) -> list[FieldError]:
    spec = obj.get("spec") or {}
    template = spec.get("template") or {}
    errors = metadata_errors(resources.PODS, template.get("metadata") or {}, "spec.template.metadata")
    return errors + pod_spec_errors("spec.template.spec", template.get("spec") or {}, restart_policies)


def _non_negative(path: str, value: object) -> list[FieldError]:
    if value is not None and (not isinstance(value, int) or value < 0):
        return [FieldError("invalid", path, "must be greater than or equal to 0", value)]
    return []


def _selector_matches_template(obj: JsonObject, kind: str) -> list[FieldError]:
    spec = obj.get("spec") or {}
    selector = spec.get("selector")
    if not selector:
        return [FieldError("required", "spec.selector")]
    requirements = selector_from_object(selector)
    if not requirements:
        return [FieldError("invalid", "spec.selector", f"empty selector is invalid for {kind}", selector)]
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if not labels_match(requirements, labels):
        detail = "`selector` does not match template `labels`"
        return [FieldError("invalid", "spec.template.metadata.labels", detail, labels)]
    return []


def object_errors(resource: ResourceType, obj: JsonObject) -> list[FieldError]:
    """Everything wrong with a new or replaced object (after defaulting)."""
    errors = metadata_errors(resource, obj.get("metadata") or {})
    spec = obj.get("spec") or {}
    if resource is resources.PODS:
        errors += pod_spec_errors("spec", spec, ("Always", "OnFailure", "Never"))
    elif resource in (resources.DEPLOYMENTS, resources.REPLICASETS):
        errors += _non_negative("spec.replicas", spec.get("replicas"))
        errors += _selector_matches_template(obj, resource.kind.lower())
        errors += _template_errors(obj, ("Always",))
    elif resource is resources.JOBS:
        for name in ("parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished"):
            errors += _non_negative(f"spec.{name}", spec.get(name))
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None and (not isinstance(deadline, int) or deadline <= 0):
            errors.append(
                FieldError("invalid", "spec.activeDeadlineSeconds", "must be greater than 0", deadline)
            )
        errors += _template_errors(obj, ("OnFailure", "Never"))
    elif resource is resources.SERVICES:
        errors += _service_errors(spec)
    elif resource is resources.PVCS:
        if not spec.get("accessModes"):
            errors.append(FieldError("required", "spec.accessModes", "at least 1 access mode is required"))
        if not ((spec.get("resources") or {}).get("requests") or {}).get("storage"):
            errors.append(FieldError("required", "spec.resources[storage]"))
    elif resource is resources.SECRETS:
        for key in obj.get("data") or {}:
            if not re.match(r"^[-._a-zA-Z0-9]+$", key):
                detail = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
                errors.append(FieldError("invalid", "data", detail, key))
    elif resource is resources.ENDPOINTSLICES:
        errors += _endpoint_slice_errors(obj)
    return errors


# ---- EndpointSlices (pkg/apis/discovery/validation) ---------------------------------------------

_ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")
_PORT_PROTOCOLS = ("SCTP", "TCP", "UDP")


def _supported(values: tuple[str, ...]) -> str:
    return "supported values: " + ", ".join(f'"{v}"' for v in values)


def _special_ip_errors(path: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[FieldError]:
    """ValidateNonSpecialIP (CVE-2021-25737): endpoints may not point at the node itself."""
    text, problems = str(address), []
    if address.is_unspecified:
        problems.append(f"may not be unspecified ({text})")
    if address.is_loopback:
        problems.append("may not be in the loopback range (127.0.0.0/8, ::1/128)")
    if address.is_link_local:
        problems.append("may not be in the link-local range (169.254.0.0/16, fe80::/10)")
    if address in ipaddress.ip_network("224.0.0.0/24") or address in ipaddress.ip_network("ff02::/16"):
        problems.append("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")
    return [FieldError("invalid", path, problem, text) for problem in problems]


def _address_errors(path: str, address: str, address_type: str) -> list[FieldError]:
    if address_type == "FQDN":
        errors = dns1123_subdomain_errors(path, address)
        if "." not in address:
            detail = "should be a domain with at least two segments separated by dots"
            errors.append(FieldError("invalid", path, detail, address))
        return errors
    parse = ipaddress.IPv4Address if address_type == "IPv4" else ipaddress.IPv6Address
    try:
        parsed = parse(address)
    except ValueError:
        return [FieldError("invalid", path, f"must be a valid {address_type} address", address)]
    return _special_ip_errors(path, parsed)


def _endpoint_slice_errors(obj: JsonObject) -> list[FieldError]:
    errors: list[FieldError] = []
    address_type = obj.get("addressType")
    if not address_type:
        errors.append(FieldError("required", "addressType"))
    elif address_type not in _ADDRESS_TYPES:
        errors.append(FieldError("not_supported", "addressType", _supported(_ADDRESS_TYPES), address_type))
    endpoints = obj.get("endpoints") or []
    if len(endpoints) > 1000:
        errors.append(FieldError("too_many", "endpoints", "must have at most 1000 items", len(endpoints)))
        endpoints = []
    for index, endpoint in enumerate(endpoints):
        path = f"endpoints[{index}].addresses"
        addresses = endpoint.get("addresses") or []
        if not addresses:
            errors.append(FieldError("required", path, "must contain at least 1 address"))
        elif len(addresses) > 100:
            errors.append(FieldError("too_many", path, "must have at most 100 items", len(addresses)))
        for position, address in enumerate(addresses):
            if address_type in _ADDRESS_TYPES:
                errors += _address_errors(f"{path}[{position}]", str(address), address_type)
        if endpoint.get("hostname") is not None:
            errors += dns1123_label_errors(f"endpoints[{index}].hostname", str(endpoint["hostname"]))
    ports = obj.get("ports") or []
    if len(ports) > 100:
        return [*errors, FieldError("too_many", "ports", "must have at most 100 items", len(ports))]
    names: set[str] = set()
    for index, port in enumerate(ports):
        name = str(port.get("name") or "")
        if name:
            errors += dns1123_label_errors(f"ports[{index}].name", name)
        if name in names:
            errors.append(FieldError("duplicate", f"ports[{index}].name", value=name))
        names.add(name)
        if port.get("protocol") not in _PORT_PROTOCOLS:
            detail = _supported(_PORT_PROTOCOLS)
            errors.append(
                FieldError("not_supported", f"ports[{index}].protocol", detail, port.get("protocol"))
            )
    return errors


def _service_errors(spec: JsonObject) -> list[FieldError]:
    errors: list[FieldError] = []
    ports = spec.get("ports") or []
    if not ports and spec.get("type") != "ExternalName":
        errors.append(FieldError("required", "spec.ports"))
    for index, port in enumerate(ports):
        number = port.get("port")
        if not isinstance(number, int) or not 1 <= number <= 65535:
            detail = "must be between 1 and 65535, inclusive"
            errors.append(FieldError("invalid", f"spec.ports[{index}].port", detail, number))
        if len(ports) > 1 and not port.get("name"):
            errors.append(FieldError("required", f"spec.ports[{index}].name"))
    service_type = spec.get("type")
    supported = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
    if service_type not in supported:
        detail = "supported values: " + ", ".join(f'"{t}"' for t in supported)
        errors.append(FieldError("not_supported", "spec.type", detail, service_type))
    errors += label_errors("spec.selector", spec.get("selector"))
    return errors


def update_errors(resource: ResourceType, old: JsonObject, new: JsonObject) -> list[FieldError]:
    """Immutable fields: a pod's spec (but images), a Deployment's selector, a Job's template."""
    if resource is resources.PODS:
        old_spec, new_spec = dict(old.get("spec") or {}), dict(new.get("spec") or {})
        for spec in (old_spec, new_spec):
            spec["containers"] = [{**c, "image": None} for c in spec.get("containers") or []]
        if old_spec != new_spec:
            detail = (
                "pod updates may not change fields other than `spec.containers[*].image`,"
                "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                "(allow it to be set to 1 if it was previously negative)"
            )
            return [FieldError("forbidden", "spec", detail)]
    if resource in (resources.DEPLOYMENTS, resources.REPLICASETS, resources.JOBS):
        old_selector = (old.get("spec") or {}).get("selector")
        new_selector = (new.get("spec") or {}).get("selector")
        if old_selector != new_selector:
            return [FieldError("invalid", "spec.selector", "field is immutable", new_selector)]
    if resource is resources.ENDPOINTSLICES and old.get("addressType") != new.get("addressType"):
        return [FieldError("invalid", "addressType", "field is immutable", new.get("addressType"))]
    old_template = (old.get("spec") or {}).get("template")
    if resource is resources.JOBS and old_template != (new.get("spec") or {}).get("template"):
        return [FieldError("invalid", "spec.template", "field is immutable", "")]
    return []


def raise_if_invalid(resource: ResourceType, name: str, errors: list[FieldError]) -> None:
    if errors:
        raise ApiError.invalid(resource, name, errors)
