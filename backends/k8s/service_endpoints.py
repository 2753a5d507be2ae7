"""The scrape URLs of a Service's ready pods, read from its EndpointSlices (dcgm-exporter discovery).

Why EndpointSlices: discovery.k8s.io/v1 is what the control plane maintains for every Service
with a selector (GA since 1.21), while v1 Endpoints is deprecated since 1.33 and cut at 1,000
addresses. A Service's slices carry the label `kubernetes.io/service-name=<name>`, so one
labelled LIST in its namespace finds them all; it goes out as the bot (its own account, not
impersonation): dcgm-exporter runs in the GPU operator's namespace, which people may not read,
and the answer is the same whoever asks. The bot's ClusterRole grants get/list on endpointslices.

Reading them as the API documents:
- an endpoint is scraped when `conditions.ready` is true or unknown (null reads as ready);
  terminating pods are never ready. None ready gives an empty list: the caller reports it.
- of an endpoint's `addresses`, the first is used (the API calls them fungible);
- the same pod can appear in two slices (an IPv4 and an IPv6 slice of a dual-stack Service, or
  briefly two slices while the controller rebalances them): it is scraped once, preferring IPv4,
  since scraping it twice would count each of its GPUs twice;
- slice ports are the pods' ports (the Service's target ports) under the Service port's name.
  The port asked for is a name (looked up in each slice) or a number (used as it is); by default
  the port named "metrics" (dcgm-exporter's Helm chart), else 9400, dcgm-exporter's port (the
  GPU operator's Service names it "gpu-metrics").
The list is decoded by msgspec like every other LIST here (objects.py); the `kubernetes` client's
own models would also refuse the `"endpoints": null` that Go writes for an empty slice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from backends.errors import BackendUnavailable, ConciergeError, ConfigurationError, PermissionDenied
from backends.k8s.cluster import KubeApi
from backends.k8s.connection import ApiClientFactory, ApiClients, factory_from_settings
from backends.k8s.objects import Endpoint, EndpointSlice
from backends.k8s.settings import K8sSettings

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
DEFAULT_PORT_NAME = "metrics"
DEFAULT_PORT = 9400
METRICS_PATH = "/metrics"
_FAMILY_ORDER = {"IPv4": 0, "IPv6": 1, "FQDN": 2}

Port = str | int | None


@dataclass(frozen=True)
class ServiceRef:
    namespace: str
    name: str

    @classmethod
    def parse(cls, text: str) -> ServiceRef:
        """`namespace/name`, as the settings name a Service."""
        namespace, slash, name = text.strip().partition("/")
        if not slash or not namespace or not name or "/" in name:
            raise ConfigurationError(
                f"{text!r} does not name a Kubernetes Service: write it as namespace/name, e.g. "
                "gpu-operator/nvidia-dcgm-exporter"
            )
        return cls(namespace, name)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def _wanted_port(port: Port) -> str | int | None:
    """A number given as text ("9400", as an environment variable gives it) is a number."""
    if isinstance(port, str) and port.strip().isdigit():
        return int(port)
    return port


def _slice_port(endpoint_slice: EndpointSlice, wanted: str | int | None) -> int | None:
    if isinstance(wanted, int):
        return wanted
    name = DEFAULT_PORT_NAME if wanted is None else wanted
    for port in endpoint_slice.ports or ():
        if port.name == name and port.port is not None:
            return port.port
    return DEFAULT_PORT if wanted is None else None


def _host(address: str, address_type: str) -> str:
    return f"[{address}]" if address_type == "IPv6" else address


def _ready(endpoint: Endpoint) -> bool:
    return endpoint.conditions.ready is not False and bool(endpoint.addresses)


def _pod_key(endpoint: Endpoint, url: str) -> tuple[str, ...]:
    ref = endpoint.target_ref
    if ref is not None and ref.name:
        return (ref.kind, ref.namespace, ref.name)
    return (url,)


def _port_names(slices: Iterable[EndpointSlice]) -> str:
    ports = sorted({f"{p.name or '(unnamed)'} {p.port}" for s in slices for p in s.ports or ()})
    return ", ".join(ports) or "none"


def scrape_urls(
    slices: Iterable[EndpointSlice], service: ServiceRef, port: Port = None, path: str = METRICS_PATH
) -> list[str]:
    """`http://<address>:<port><path>` for each ready pod behind the slices, once each: IPv4
    slices first, then in the API's order."""
    wanted = _wanted_port(port)
    ordered = sorted(slices, key=lambda s: _FAMILY_ORDER.get(s.address_type, len(_FAMILY_ORDER)))
    urls: dict[tuple[str, ...], str] = {}
    missing_port = False
    for endpoint_slice in ordered:
        ready = [endpoint for endpoint in endpoint_slice.endpoints or () if _ready(endpoint)]
        number = _slice_port(endpoint_slice, wanted)
        if number is None:
            missing_port = missing_port or bool(ready)
            continue
        for endpoint in ready:
            address = (endpoint.addresses or [""])[0]
            url = f"http://{_host(address, endpoint_slice.address_type)}:{number}{path}"
            urls.setdefault(_pod_key(endpoint, url), url)
    if missing_port and not urls:
        raise ConfigurationError(
            f"Service {service} has no port named {wanted!r} (its EndpointSlices list: "
            f"{_port_names(ordered)}); set gpu.dcgm.service_port to one of those names or to the "
            "pods' port number"
        )
    return list(dict.fromkeys(urls.values()))


def _about(error: ConciergeError, service: ServiceRef) -> ConciergeError:
    """The same kind of error, saying which Service was being looked up and why."""
    message = f"cannot find the pods behind Service {service} (dcgm-exporter discovery): {error.message}"
    if isinstance(error, BackendUnavailable):
        return BackendUnavailable(message, error.retry_after)
    if isinstance(error, PermissionDenied):
        return PermissionDenied(
            f"{message}. The bot's account needs get and list on endpointslices (API group "
            f"discovery.k8s.io) in namespace {service.namespace}; deploy/k8s/concierge-rbac.yaml grants "
            "them cluster-wide"
        )
    return type(error)(message)


class ServiceScrapeTargets:
    """Called for the current scrape URLs of one Service: one EndpointSlices LIST per call."""

    def __init__(
        self,
        api: KubeApi,
        service: ServiceRef,
        port: Port = None,
        path: str = METRICS_PATH,
        *,
        owned_clients: ApiClients | None = None,  # closed by `close`
    ) -> None:
        self._api = api
        self.service = service
        self._port = port
        self._path = path
        self._clients = owned_clients

    @classmethod
    def from_settings(
        cls,
        settings: K8sSettings,
        service: str,
        port: Port = None,
        *,
        api_client_factory: ApiClientFactory | None = None,
    ) -> ServiceScrapeTargets:
        """Built as KubernetesBackend builds its wire (the bot's kubeconfig or in-cluster account),
        connecting on the first call rather than now."""
        clients = ApiClients(
            api_client_factory or factory_from_settings(settings), settings.client_cache_size
        )
        api = KubeApi(clients, settings.request_timeout_s)
        return cls(api, ServiceRef.parse(service), port, owned_clients=clients)

    def __call__(self) -> list[str]:
        selector = f"{SERVICE_NAME_LABEL}={self.service.name}"
        try:
            slices = self._api.list_of(
                EndpointSlice, namespace=self.service.namespace, label_selector=selector
            )
        except ConciergeError as e:
            raise _about(e, self.service) from e
        return scrape_urls(slices, self.service, self._port, self._path)

    def close(self) -> None:
        if self._clients is not None:
            self._clients.close()
