"""`KubeEmulator`: what a test holds — the server's lifetime, identities, RBAC, nodes, knobs, and logs.

Tests speak to it in Python to arrange a cluster (nodes with GPUs, namespaces, rules, images that
fail) and to look at the outcome (objects, the request log); the code under test speaks HTTP to
`url` through the unchanged `kubernetes` client, from a Configuration or a kubeconfig file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Self

import yaml

from tests.k8s_emulator import resources
from tests.k8s_emulator.cluster import Cluster
from tests.k8s_emulator.dispatch import Dispatcher, RequestRecord
from tests.k8s_emulator.endpoints import SliceEndpoint, endpoint_slice
from tests.k8s_emulator.nodes import gpu_node
from tests.k8s_emulator.rbac import Authorizer, authenticated
from tests.k8s_emulator.resources import ResourceType
from tests.k8s_emulator.selectors import labels_match, parse_label_selector
from tests.k8s_emulator.server import ApiHttpServer
from tests.k8s_emulator.state import ClusterState, Knobs, MessageStyle, controller_uid

if TYPE_CHECKING:
    from kubernetes.client import Configuration

JsonObject = dict[str, Any]
P = ParamSpec("P")

BOT_USER = "system:serviceaccount:concierge:bot"
READ_VERBS = ("get", "list", "watch")
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
# The namespaced part of the built-in "edit" ClusterRole that the emulator serves.
EDIT_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("", ("pods", "services", "secrets", "persistentvolumeclaims", "events")),
    ("apps", ("deployments", "deployments/scale", "replicasets", "replicasets/scale")),
    ("batch", ("jobs",)),
)


def _resource(api_version: str, kind: str) -> ResourceType:
    resource = resources.by_kind(api_version, kind)
    if resource is None:
        served = ", ".join(f"{r.api_version} {r.kind}" for r in resources.ALL)
        raise ValueError(f"the emulator does not serve {api_version} {kind}; it serves {served}")
    return resource


def _put(make: Callable[P, JsonObject]) -> Callable[Concatenate[KubeEmulator, P], JsonObject]:
    """A method that stores what `make` builds from its arguments (and returns it as stored)."""

    def put(emulator: KubeEmulator, /, *args: P.args, **kwargs: P.kwargs) -> JsonObject:
        return emulator.put_object(make(*args, **kwargs))

    return put


class KubeEmulator:
    def __init__(
        self,
        *,
        seed: int = 0,
        clock: Callable[[], datetime] | None = None,
        message_style: MessageStyle = MessageStyle.CURRENT,
    ) -> None:
        self.knobs = Knobs(message_style=message_style)
        self.state = ClusterState(self.knobs, seed, clock) if clock else ClusterState(self.knobs, seed)
        self.cluster = Cluster(self.state)
        self.authorizer = Authorizer()
        self.dispatcher = Dispatcher(self.cluster, self.authorizer)
        self._server: ApiHttpServer | None = None

    # ---- lifetime --------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is None:
            self.state.store.closed = False
            self._server = ApiHttpServer(self.dispatcher)
            self._server.start()
        return self

    def stop(self) -> None:
        self.state.store.close()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not started: use `with KubeEmulator() as kube:` or .start()")
        return self._server.url

    # ---- knobs -----------------------------------------------------------------------------------

    @property
    def unpullable_images(self) -> set[str]:
        """Images the kubelet cannot pull: their pods stay Pending in ImagePullBackOff."""
        return self.knobs.unpullable_images

    @unpullable_images.setter
    def unpullable_images(self, images: set[str]) -> None:
        self.knobs.unpullable_images = set(images)

    @property
    def crashing_images(self) -> set[str]:
        """Images whose container exits at once: CrashLoopBackOff (Failed with restartPolicy Never)."""
        return self.knobs.crashing_images

    @crashing_images.setter
    def crashing_images(self, images: set[str]) -> None:
        self.knobs.crashing_images = set(images)

    @property
    def runtime_classes(self) -> set[str]:
        """RuntimeClasses that exist (default {"nvidia"}); pods naming another are rejected."""
        return self.knobs.runtime_classes

    @runtime_classes.setter
    def runtime_classes(self, names: set[str]) -> None:
        self.knobs.runtime_classes = set(names)

    @property
    def message_style(self) -> MessageStyle:
        return self.knobs.message_style

    @message_style.setter
    def message_style(self, style: MessageStyle) -> None:
        self.knobs.message_style = style

    def answer_late(self, verb: str, resource: str, seconds: float) -> None:
        """Requests with this verb on this resource (plural: "jobs") run at once, but their answer
        waits `seconds`: a client with a shorter timeout cannot tell whether they were done."""
        self.dispatcher.late_answers[(verb, resource)] = seconds

    # ---- identities and RBAC -----------------------------------------------------------------------

    def add_token(self, token: str, user: str, groups: Iterable[str] = ()) -> None:
        self.dispatcher.tokens[token] = authenticated(user, groups)

    def allow(
        self,
        subject: str,
        verbs: Iterable[str],
        *,
        resource: str | Iterable[str],
        api_group: str | Iterable[str] = "",
        namespace: str | None = None,
        subject_kind: str = "User",
        resource_names: Iterable[str] = (),
    ) -> None:
        """One RBAC rule: `namespace=None` grants cluster-wide (a ClusterRoleBinding)."""
        self.authorizer.add(
            subject,
            verbs,
            api_group=api_group,
            resource=resource,
            namespace=namespace,
            subject_kind=subject_kind,
            resource_names=resource_names,
        )

    def allow_bot(self, user: str = BOT_USER) -> None:
        """The concierge's service account: read everything everywhere and impersonate anyone."""
        self.allow(user, READ_VERBS, api_group="*", resource="*")
        self.allow(user, ["impersonate"], resource=["users", "groups", "serviceaccounts"])

    def allow_edit(self, subject: str, namespace: str, *, subject_kind: str = "User") -> None:
        """The built-in `edit` role bound in one namespace (for the resources served here)."""
        for group, kinds in EDIT_RULES:
            self.allow(
                subject,
                (*READ_VERBS, *WRITE_VERBS),
                api_group=group,
                resource=kinds,
                namespace=namespace,
                subject_kind=subject_kind,
            )

    # ---- arranging the cluster ---------------------------------------------------------------------

    def add_namespace(self, name: str, labels: Mapping[str, str] | None = None) -> JsonObject:
        metadata: JsonObject = {"name": name, "labels": dict(labels or {})}
        return self.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": metadata})

    # A node as GPU Feature Discovery labels it, from nodes.gpu_node's arguments (taints as
    # "key=value:Effect" or dicts).
    add_node = _put(gpu_node)

    def set_node(
        self,
        name: str,
        *,
        ready: bool | None = None,
        unschedulable: bool | None = None,
        labels: Mapping[str, str | None] | None = None,
    ) -> JsonObject:
        """Flips a node's Ready condition, cordons or uncordons it, or changes labels; pending pods retry."""

        def change(node: JsonObject) -> None:
            if ready is not None:
                for condition in node["status"].get("conditions") or []:
                    if condition["type"] == "Ready":
                        condition["status"] = "True" if ready else "False"
                        condition["reason"] = "KubeletReady" if ready else "KubeletNotReady"
            if unschedulable is not None:
                if unschedulable:
                    node["spec"]["unschedulable"] = True
                else:
                    node["spec"].pop("unschedulable", None)
            for key, value in (labels or {}).items():
                node_labels = node["metadata"].setdefault("labels", {})
                if value is None:
                    node_labels.pop(key, None)
                else:
                    node_labels[key] = value

        return self.cluster.mutate(resources.NODES, "", name, change).thaw()

    def add_endpoint_slice(
        self,
        namespace: str,
        service: str,
        endpoints: Iterable[SliceEndpoint],
        *,
        name: str | None = None,
        ports: Iterable[tuple[str, int]] = (("metrics", 9400),),
        address_type: str = "IPv4",
    ) -> JsonObject:
        """One EndpointSlice of `service` as the endpointslice controller writes it (endpoints.py).
        Stored as given, like `put_object`: addresses the API would refuse (127.0.0.1) are kept, so
        a test can point a slice at a local server."""
        owner = self.state.get(resources.SERVICES, namespace, service)
        slice_name = name or self.state.generate_name(resources.ENDPOINTSLICES, namespace, f"{service}-")
        return self.put_object(
            endpoint_slice(
                namespace,
                slice_name,
                service,
                endpoints,
                ports=ports,
                address_type=address_type,
                owner=owner.obj if owner else None,
            )
        )

    def put_object(self, obj: Mapping[str, Any]) -> JsonObject:
        """Stores any served object as given (status too), then lets controllers and scheduler react."""
        return self.cluster.put_object(dict(obj)).thaw()

    def put_objects(self, objects: Iterable[Mapping[str, Any]]) -> int:
        """Bulk seeding: stores all, then reacts once. Give pods a spec.nodeName to skip scheduling,
        and nodes a Ready condition (`add_node` writes one), or they are tainted not-ready."""
        count = 0
        with self.cluster.lock:
            for obj in objects:
                self.cluster.put_object(dict(obj), settle=False)
                count += 1
            self.cluster.settle()
        return count

    def delete_object(
        self, api_version: str, kind: str, name: str, namespace: str = "", *, propagation: str = "Background"
    ) -> None:
        self.cluster.delete(_resource(api_version, kind), namespace, name, propagation=propagation)

    def finish_pod(
        self,
        namespace: str,
        name: str,
        *,
        succeeded: bool = True,
        exit_code: int | None = None,
        logs: str = "",
    ) -> None:
        """The pod's containers exit: Succeeded or Failed (a Job counts it), having printed `logs`."""
        self.cluster.finish_pod(namespace, name, succeeded=succeeded, exit_code=exit_code, logs=logs)

    def complete_job(self, namespace: str, name: str) -> None:
        """Every active pod of the Job succeeds."""
        job = self.cluster.get(resources.JOBS, namespace, name).obj
        for pod in self.objects("v1", "Pod", namespace):
            if controller_uid(pod) == job["metadata"]["uid"] and pod["status"].get("phase") not in (
                "Succeeded",
                "Failed",
            ):
                self.finish_pod(namespace, pod["metadata"]["name"], succeeded=True)

    # ---- looking ---------------------------------------------------------------------------------

    def get_object(self, api_version: str, kind: str, name: str, namespace: str = "") -> JsonObject | None:
        stored = self.state.get(_resource(api_version, kind), namespace, name)
        return stored.thaw() if stored else None

    def objects(
        self, api_version: str, kind: str, namespace: str | None = None, label_selector: str = ""
    ) -> list[JsonObject]:
        selector = parse_label_selector(label_selector)
        return [
            s.thaw()
            for s in self.state.store.items(_resource(api_version, kind), namespace)
            if labels_match(selector, s.obj["metadata"].get("labels"))
        ]

    def pods(self, namespace: str | None = None, label_selector: str = "") -> list[JsonObject]:
        return self.objects("v1", "Pod", namespace, label_selector)

    def events_for(self, namespace: str, name: str, kind: str = "Pod") -> list[JsonObject]:
        return [
            e
            for e in self.objects("v1", "Event", namespace)
            if e["involvedObject"].get("name") == name and e["involvedObject"].get("kind") == kind
        ]

    @property
    def request_log(self) -> list[RequestRecord]:
        return list(self.dispatcher.request_log)

    def clear_request_log(self) -> None:
        self.dispatcher.request_log.clear()

    # ---- connecting a client -----------------------------------------------------------------------

    def client_configuration(self, token: str) -> Configuration:
        """A `kubernetes.client.Configuration` for `token` (a test helper; kubeconfig works too)."""
        from kubernetes.client import Configuration

        configuration = Configuration(host=self.url)
        configuration.api_key = {"authorization": token}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        return configuration

    def write_kubeconfig(
        self, path: str | Path, token: str, *, context: str = "emulator", namespace: str | None = None
    ) -> Path:
        """A kubeconfig file for `token` whose current context points at the emulator."""
        context_body: JsonObject = {"cluster": "emulator", "user": "emulator-user"}
        if namespace:
            context_body["namespace"] = namespace
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "emulator-user", "user": {"token": token}}],
            "contexts": [{"name": context, "context": context_body}],
            "current-context": context,
            "preferences": {},
        }
        target = Path(path)
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        return target

    def dump(self) -> str:
        """Every object, for a failing test's message."""
        return json.dumps(
            {r.qualified: [s.obj for s in self.state.store.items(r)] for r in resources.ALL}, indent=1
        )
