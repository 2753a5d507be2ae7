"""API clients: the bot's own for reads, and one impersonating client per person for writes.

Writes (create, dry run, delete, scale) go out as the person: each identity gets its own
`ApiClient` with the `Impersonate-User` default header, so the cluster's RBAC decides what they
may do, and the audit log names them. Reads for status, explanations and capacity go out as the
bot: they need cluster-wide LISTs of pods, nodes and events that people usually may not do, and
one LIST serves everybody's workloads. The bot's account therefore needs `impersonate` on users
and groups, and get/list on nodes, pods, events, deployments, jobs and services (and endpointslices,
to find dcgm-exporter's pods: service_endpoints.py).

Groups: the API accepts several `Impersonate-Group` header lines, but the client's default
headers are a plain dict (one value per name), and a comma-joined value would be read as ONE
group named "a,b". So default headers carry only the user, and each request made for a person
adds one `Impersonate-Group` line per group itself (cluster.py, through urllib3's
HTTPHeaderDict, which sends repeated names as separate lines).

The bot may impersonate anyone, so the map must never make it act as the cluster's own machinery
(`is_impersonable`): no user in the reserved `system:` namespace (`system:admin`, `system:node:…`,
`system:serviceaccount:…`, `system:kube-controller-manager`, …) or named like the installers' admin
(`kubernetes-admin`); no group in `system:` (`system:masters`, `system:nodes`,
`system:serviceaccounts…`, `system:kube-…`) except plain `system:authenticated`, which every
request has anyway, and none in kubeadm's (`kubeadm:cluster-admins` is bound to cluster-admin).
A name with whitespace or control characters is refused too: it would be a different header.

Clients are cached per (user, groups), at most `client_cache_size`, least recently used closed.
The factory must return a NEW client on every call: a shared one would carry one person's
impersonation header into another's requests (checked).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from threading import Lock

from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration
from kubernetes.config.config_exception import ConfigException

from backends.errors import ConfigurationError, PermissionDenied, RequestInvalid
from backends.k8s.settings import K8sSettings
from backends.types import Identity

ApiClientFactory = Callable[[], ApiClient]
IMPERSONATE_USER = "Impersonate-User"
IMPERSONATE_GROUP = "Impersonate-Group"
FORBIDDEN_USERS = frozenset({"kubernetes-admin", "kube:admin", "admin"})  # kubeadm, OpenShift
FORBIDDEN_GROUPS = frozenset({"cluster-admin", "cluster-admins"})
RESERVED_PREFIXES = ("system:", "kubeadm:")  # the apiserver's and kubeadm's own identities
HARMLESS_GROUPS = frozenset({"system:authenticated"})  # every authenticated request has it anyway


def load_configuration(settings: K8sSettings) -> Configuration:
    """The bot's connection: the kubeconfig named in settings, else in-cluster, else ~/.kube/config."""
    configuration = Configuration()
    try:
        if settings.kubeconfig is not None:
            kube_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(settings.kubeconfig),
                context=settings.context,
                client_configuration=configuration,
                persist_config=False,
            )
            return configuration
        try:
            kube_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except ConfigException:
            kube_config.load_kube_config(  # type: ignore[no-untyped-call]
                context=settings.context, client_configuration=configuration, persist_config=False
            )
    except (ConfigException, OSError, ValueError, KeyError, TypeError) as e:
        where = str(settings.kubeconfig) if settings.kubeconfig else "in-cluster or ~/.kube/config"
        raise ConfigurationError(
            f"cannot load the Kubernetes configuration ({where}): {e}. Set k8s.kubeconfig (and "
            "k8s.context) in the settings to a kubeconfig for the bot's account"
        ) from e
    return configuration


def factory_from_settings(settings: K8sSettings) -> ApiClientFactory:
    """A factory over one loaded configuration, loaded on first use (not at import or start-up)."""
    loaded: list[Configuration] = []

    def new_client() -> ApiClient:
        if not loaded:
            loaded.append(load_configuration(settings))
        return ApiClient(configuration=loaded[0])

    return new_client


def person_of(identity: Identity) -> tuple[str, tuple[str, ...]]:
    """(user, groups) to impersonate for an identity, refusing what the bot must never act as."""
    if not identity.k8s_user:
        raise RequestInvalid(
            f"no Kubernetes user is mapped for {identity.requester}, so nothing can be done on the "
            f"cluster as them; ask an admin to run `concierge users map {identity.requester} --k8s <user>`"
        )
    if not is_impersonable(identity.k8s_user, FORBIDDEN_USERS, frozenset()):
        raise PermissionDenied(
            f"{identity.requester} is mapped to the Kubernetes user {identity.k8s_user!r}, a cluster "
            "superuser, node, controller or service-account identity; GPU Concierge never acts as one. "
            "Ask an admin to map a personal user with `concierge users map`."
        )
    forbidden = [g for g in identity.k8s_groups if not is_impersonable(g, FORBIDDEN_GROUPS, HARMLESS_GROUPS)]
    if forbidden:
        raise PermissionDenied(
            f"{identity.requester} is mapped to the group {', '.join(map(repr, sorted(forbidden)))}, one of "
            "the cluster's own groups (superusers, nodes, service accounts or controllers); GPU Concierge "
            "never acts as it. Ask an admin to fix the identity map with `concierge users map`."
        )
    return identity.k8s_user, tuple(dict.fromkeys(identity.k8s_groups))


def is_impersonable(name: str, forbidden: frozenset[str], harmless: frozenset[str]) -> bool:
    """Whether the bot may send `name` as an Impersonate-User/-Group value."""
    if name in harmless:
        return True
    if not name or name != name.strip() or any(ch.isspace() or not ch.isprintable() for ch in name):
        return False
    folded = name.lower()
    return folded not in forbidden and not folded.startswith(RESERVED_PREFIXES)


class ApiClients:
    def __init__(self, factory: ApiClientFactory, cache_size: int = 64) -> None:
        self._factory = factory
        self._cache_size = cache_size
        self._bot: ApiClient | None = None
        self._people: OrderedDict[tuple[str, tuple[str, ...]], ApiClient] = OrderedDict()
        self._lock = Lock()

    def _new(self) -> ApiClient:
        client = self._factory()
        known = [self._bot, *self._people.values()]
        if any(client is other for other in known if other is not None):
            raise ConfigurationError(
                "the Kubernetes client factory returned a client it had returned before; it must "
                "return a new ApiClient on every call (each person's client carries their identity)"
            )
        return client

    def bot(self) -> ApiClient:
        with self._lock:
            if self._bot is None:
                self._bot = self._new()
            return self._bot

    def person(self, identity: Identity) -> tuple[ApiClient, str, tuple[str, ...]]:
        """The client acting as the person, their user name and the groups each request must add."""
        user, groups = person_of(identity)
        key = (user, groups)
        with self._lock:
            client = self._people.get(key)
            if client is None:
                client = self._new()
                client.set_default_header(IMPERSONATE_USER, user)  # type: ignore[no-untyped-call]
                self._people[key] = client
                while len(self._people) > self._cache_size:
                    _, evicted = self._people.popitem(last=False)
                    evicted.close()  # type: ignore[no-untyped-call]
            else:
                self._people.move_to_end(key)
            return client, user, groups

    def close(self) -> None:
        with self._lock:
            for client in [self._bot, *self._people.values()]:
                if client is not None:
                    client.close()  # type: ignore[no-untyped-call]
            self._bot = None
            self._people.clear()
