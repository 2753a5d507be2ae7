"""dcgm-exporter endpoints found behind a Kubernetes Service, through the real `kubernetes` client.

The Kubernetes API is the emulator (tests/k8s_emulator) serving discovery.k8s.io/v1
EndpointSlices with RBAC; dcgm-exporter is a local HTTP server serving the real text format
(tests/fixtures/dcgm/kubernetes.txt). A slice may point at 127.0.0.1 because tests write slices
straight into the emulator's store, as the endpointslice controller would (the API itself refuses
loopback addresses, checked below).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from backends.errors import BackendUnavailable, PermissionDenied
from backends.gpu.samples import GpuHolder
from backends.gpu.settings import DcgmSettings, GpuTelemetrySettings
from backends.k8s.gpu_holders import gpu_holders
from backends.k8s.service_endpoints import ServiceScrapeTargets
from backends.k8s.settings import K8sSettings
from bot.assembly import service_discovery
from bot.store import Store
from bot.store.telemetry import TelemetryStore
from bot.telemetry.collect import GpuCollector
from tests.gpu_fakes.dcgm_fixtures import fixture
from tests.gpu_fakes.http_server import Reply, dead_url, serving
from tests.helpers.cli import cli_env
from tests.k8s_emulator import BOT_USER, KubeEmulator, SliceEndpoint

ROOT = Path(__file__).resolve().parents[2]
CONCIERGE = str(Path(sys.executable).with_name("concierge"))
BOT_TOKEN = "bot-token"
ADMIN_TOKEN = "admin-token"
NAMESPACE = "gpu-operator"
SERVICE = "nvidia-dcgm-exporter"
SERVICE_REF = f"{NAMESPACE}/{SERVICE}"
SELECTOR = f"kubernetes.io/service-name={SERVICE}"


def shipped_bot_rules() -> list[dict[str, Any]]:
    """The rules of the ClusterRole deploy/k8s gives the bot's ServiceAccount."""
    documents = yaml.safe_load_all((ROOT / "deploy" / "k8s" / "concierge-rbac.yaml").read_text())
    role = next(d for d in documents if d and d["kind"] == "ClusterRole")
    rules: list[dict[str, Any]] = role["rules"]
    return rules


def cluster(without: str | None = None) -> KubeEmulator:
    """An emulator where the bot holds the shipped ClusterRole (less the rules on `without`), with
    the dcgm-exporter Service; slices are added by each test."""
    kube = KubeEmulator()
    kube.add_token(BOT_TOKEN, BOT_USER)
    kube.add_token(ADMIN_TOKEN, "kubernetes-admin", ["system:masters"])
    for rule in shipped_bot_rules():
        if without in rule["resources"]:
            continue
        kube.allow(BOT_USER, rule["verbs"], api_group=rule["apiGroups"], resource=rule["resources"])
    kube.add_namespace(NAMESPACE)
    kube.put_object(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": SERVICE, "namespace": NAMESPACE},
            "spec": {
                "selector": {"app": "nvidia-dcgm-exporter"},
                "ports": [{"name": "gpu-metrics", "port": 9400, "targetPort": 9400}],
            },
        }
    )
    return kube


@pytest.fixture
def kube() -> Iterator[KubeEmulator]:
    with cluster() as emulator:
        yield emulator


def bot_client(kube: KubeEmulator) -> Callable[[], client.ApiClient]:
    return lambda: client.ApiClient(kube.client_configuration(BOT_TOKEN))


def targets(kube: KubeEmulator, port: str | int | None = None) -> ServiceScrapeTargets:
    return ServiceScrapeTargets.from_settings(
        K8sSettings(), SERVICE_REF, port, api_client_factory=bot_client(kube)
    )


def two_slices(kube: KubeEmulator) -> None:
    """Four dcgm-exporter pods over two slices, two of them ready; and the slices of other Services."""
    kube.add_endpoint_slice(
        NAMESPACE,
        SERVICE,
        [
            SliceEndpoint("10.244.1.7", pod="dcgm-exporter-a", node="gpu-1"),
            SliceEndpoint("10.244.2.7", ready=False, pod="dcgm-exporter-b", node="gpu-2"),
        ],
        name=f"{SERVICE}-abcde",
        ports=[("gpu-metrics", 9400)],
    )
    kube.add_endpoint_slice(
        NAMESPACE,
        SERVICE,
        [
            SliceEndpoint("10.244.3.7", ready=False, terminating=True, pod="dcgm-exporter-c", node="gpu-3"),
            SliceEndpoint("10.244.4.7", pod="dcgm-exporter-d", node="gpu-4"),
        ],
        name=f"{SERVICE}-fghij",
        ports=[("gpu-metrics", 9400)],
    )
    kube.add_endpoint_slice(
        NAMESPACE, "gpu-operator-metrics", [SliceEndpoint("10.244.9.9")], ports=[("metrics", 8080)]
    )
    kube.add_namespace("other")
    kube.add_endpoint_slice("other", SERVICE, [SliceEndpoint("10.244.8.8")])


# ---- discovery ----------------------------------------------------------------------------------


def test_discovery_returns_the_ready_pods_of_both_slices_in_one_list_made_as_the_bot(
    kube: KubeEmulator,
) -> None:
    two_slices(kube)
    kube.clear_request_log()

    assert targets(kube)() == ["http://10.244.1.7:9400/metrics", "http://10.244.4.7:9400/metrics"]

    [request] = kube.request_log
    assert (request.method, request.verb, request.resource, request.namespace) == (
        "GET",
        "list",
        "endpointslices",
        NAMESPACE,
    )
    assert request.path == f"/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices"
    assert request.query == {"labelSelector": SELECTOR}
    assert (request.user, request.impersonated_user, request.code) == (BOT_USER, None, 200)


def test_a_named_or_numbered_port_is_used_and_every_pass_reads_the_slices_again(kube: KubeEmulator) -> None:
    two_slices(kube)
    by_name = targets(kube, "gpu-metrics")
    assert by_name() == ["http://10.244.1.7:9400/metrics", "http://10.244.4.7:9400/metrics"]
    assert targets(kube, 9500)() == ["http://10.244.1.7:9500/metrics", "http://10.244.4.7:9500/metrics"]

    kube.add_endpoint_slice(
        NAMESPACE,
        SERVICE,
        [SliceEndpoint("10.244.5.7", pod="dcgm-exporter-e")],
        ports=[("gpu-metrics", 9400)],
    )
    kube.delete_object("discovery.k8s.io/v1", "EndpointSlice", f"{SERVICE}-abcde", NAMESPACE)
    assert sorted(by_name()) == ["http://10.244.4.7:9400/metrics", "http://10.244.5.7:9400/metrics"]


def test_the_settings_reach_the_cluster_through_the_bots_kubeconfig(
    kube: KubeEmulator, tmp_path: Path
) -> None:
    two_slices(kube)
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", BOT_TOKEN)
    dcgm = DcgmSettings(service=SERVICE_REF, service_port="9400")

    discover = service_discovery(dcgm, K8sSettings(kubeconfig=kubeconfig))

    assert discover is not None
    assert discover() == ["http://10.244.1.7:9400/metrics", "http://10.244.4.7:9400/metrics"]
    assert service_discovery(dcgm, None) is None
    assert service_discovery(DcgmSettings(), K8sSettings(kubeconfig=kubeconfig)) is None


def test_no_ready_pod_is_an_empty_list(kube: KubeEmulator) -> None:
    kube.add_endpoint_slice(NAMESPACE, SERVICE, [SliceEndpoint("10.244.2.7", ready=False)])
    assert targets(kube)() == []
    kube.delete_object("v1", "Namespace", NAMESPACE)
    assert targets(kube)() == []  # a LIST in a namespace that is gone answers an empty list


def test_the_shipped_cluster_role_is_needed_and_without_it_the_error_names_the_service() -> None:
    with cluster(without="endpointslices") as kube:
        two_slices(kube)
        with pytest.raises(PermissionDenied) as caught:
            targets(kube)()

    message = caught.value.message
    assert message.startswith(
        f"cannot find the pods behind Service {SERVICE_REF} (dcgm-exporter discovery): the bot's "
        f"Kubernetes account may not list endpointslices in namespace {NAMESPACE}"
    )
    assert (
        f'User "{BOT_USER}" cannot list resource "endpointslices" in API group "discovery.k8s.io" '
        f'in the namespace "{NAMESPACE}"'
    ) in message
    assert message.endswith(
        "The bot's account needs get and list on endpointslices (API group discovery.k8s.io) in "
        f"namespace {NAMESPACE}; deploy/k8s/concierge-rbac.yaml grants them cluster-wide"
    )


def test_an_unreachable_api_is_backend_unavailable_naming_the_service() -> None:
    server = dead_url("")
    discover = ServiceScrapeTargets.from_settings(
        K8sSettings(request_timeout_s=2),
        SERVICE_REF,
        api_client_factory=lambda: client.ApiClient(client.Configuration(host=server)),
    )
    with pytest.raises(BackendUnavailable) as caught:
        discover()
    assert caught.value.message.startswith(
        f"cannot find the pods behind Service {SERVICE_REF} (dcgm-exporter discovery): the Kubernetes "
        f"API at {server} could not be reached to list endpointslices in namespace {NAMESPACE}"
    )


# ---- the collection pass ------------------------------------------------------------------------


def recent_usage(telemetry: TelemetryStore) -> dict[str, tuple[GpuHolder | None, float | None]]:
    now = datetime.now(UTC)
    _, usage = telemetry.usage(now - timedelta(hours=1), now + timedelta(minutes=2))
    return {row.name: (row.holder, row.mean_utilization_pct) for row in usage}


KUBERNETES_FIXTURE_USAGE = {
    "gpu-node-3:0": (
        GpuHolder(backend="k8s", job_id="ml-alice/train-resnet-6d4f9b7c8-x2x4q", owner="ml-alice"),
        94.0,
    ),
    "gpu-node-3:1": (GpuHolder(backend="k8s", job_id="research/jupyter-bob-0", owner="research"), 3.0),
    "gpu-node-3:2": (None, 0.0),
}


def _collector(settings: GpuTelemetrySettings, telemetry: TelemetryStore, kube: KubeEmulator) -> GpuCollector:
    """Wired as bot.assembly wires it: endpoints found in the cluster, GPUs attributed to pods."""
    return GpuCollector(settings, telemetry, discover_endpoints=targets(kube), pod_holders=gpu_holders)


def test_the_collector_scrapes_the_discovered_ready_pods_and_stores_their_gpus(
    kube: KubeEmulator, store: Store
) -> None:
    telemetry = TelemetryStore(store.engine)
    with serving(lambda _: Reply(body=fixture("kubernetes.txt").encode())) as (url, received):
        port = urlsplit(url).port
        assert port is not None
        kube.add_endpoint_slice(
            NAMESPACE,
            SERVICE,
            # The not-ready pod's address answers nothing: scraping it would be a reported failure.
            [SliceEndpoint("127.0.0.1", pod="dcgm-exporter-a"), SliceEndpoint("127.0.0.2", ready=False)],
            ports=[("metrics", port)],
        )
        settings = GpuTelemetrySettings(dcgm=DcgmSettings(service=SERVICE_REF, timeout_s=2))
        report = GpuCollector(
            settings, telemetry, discover_endpoints=targets(kube), pod_holders=gpu_holders
        ).collect_once()

    assert [r.path for r in received] == ["/metrics"]
    assert (report.samples, report.attributed, report.problems) == (3, 2, ())
    assert recent_usage(telemetry) == KUBERNETES_FIXTURE_USAGE


def test_a_failed_discovery_is_reported_and_the_listed_endpoints_are_still_scraped(store: Store) -> None:
    telemetry = TelemetryStore(store.engine)
    with (
        cluster(without="endpointslices") as kube,
        serving(lambda _: Reply(body=fixture("kubernetes.txt").encode())) as (url, received),
    ):
        dcgm = DcgmSettings(endpoints=[f"{url}/metrics"], service=SERVICE_REF, timeout_s=2)
        collector = GpuCollector(
            GpuTelemetrySettings(dcgm=dcgm),
            telemetry,
            discover_endpoints=targets(kube),
            pod_holders=gpu_holders,
        )
        report = collector.collect_once()

    assert [r.path for r in received] == ["/metrics"]
    assert (report.samples, report.attributed) == (3, 2)
    [problem] = report.problems
    assert problem.startswith(f"cannot find the pods behind Service {SERVICE_REF} (dcgm-exporter discovery)")
    assert problem.endswith("cluster-wide; the configured endpoints were still scraped")
    assert recent_usage(telemetry) == KUBERNETES_FIXTURE_USAGE


def test_no_ready_pod_and_no_cluster_to_ask_are_reported(kube: KubeEmulator, store: Store) -> None:
    telemetry = TelemetryStore(store.engine)
    kube.add_endpoint_slice(NAMESPACE, SERVICE, [SliceEndpoint("10.244.2.7", ready=False)])
    settings = GpuTelemetrySettings(dcgm=DcgmSettings(service=SERVICE_REF))

    empty = GpuCollector(
        settings, telemetry, discover_endpoints=targets(kube), pod_holders=gpu_holders
    ).collect_once()
    unconfigured = GpuCollector(settings, telemetry).collect_once()

    assert (empty.samples, unconfigured.samples) == (0, 0)
    assert empty.problems == (
        f"no ready dcgm-exporter pod was found behind Service {SERVICE_REF}, so none was scraped; is "
        "dcgm-exporter running on the GPU nodes?",
    )
    assert unconfigured.problems == (
        f"gpu.dcgm.service names {SERVICE_REF}, but no Kubernetes cluster is configured to look it up "
        "in; set the k8s settings (e.g. CONCIERGE_K8S__KUBECONFIG) to scrape its pods",
    )


def test_concierge_digest_now_scrapes_the_service_named_in_the_settings(
    kube: KubeEmulator, tmp_path: Path
) -> None:
    """The wiring, as an admin runs it: the console script with only environment settings."""
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", BOT_TOKEN)
    env = cli_env(
        tmp_path,
        K8S__KUBECONFIG=str(kubeconfig),
        GPU__DCGM__SERVICE=SERVICE_REF,
        GPU__DCGM__SERVICE_PORT="metrics",
    )
    with serving(lambda _: Reply(body=fixture("kubernetes.txt").encode())) as (url, received):
        kube.add_endpoint_slice(
            NAMESPACE, SERVICE, [SliceEndpoint("127.0.0.1")], ports=[("metrics", urlsplit(url).port or 0)]
        )
        done = subprocess.run(
            [CONCIERGE, "digest", "--since", "1h", "--now"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert done.returncode == 0, done.stderr
    assert [r.path for r in received] == ["/metrics"]
    assert "Cluster: 3 GPUs, mean utilisation 32.3 %" in done.stdout, done.stdout  # (94 + 3 + 0) / 3
    owners = [line.split() for line in done.stdout.splitlines() if line.startswith(("ml-alice", "research"))]
    assert [(row[0], row[-2]) for row in owners] == [("ml-alice", "94.0"), ("research", "3.0")]
    assert "note:" not in done.stderr, done.stderr
    lists = [r for r in kube.request_log if r.resource == "endpointslices"]
    assert [(r.verb, r.namespace, r.query.get("labelSelector"), r.user) for r in lists] == [
        ("list", NAMESPACE, SELECTOR, BOT_USER)
    ]


# ---- the emulator's EndpointSlices, through the client's own API classes -------------------------


def test_the_emulator_serves_endpoint_slices_as_the_apiserver_does(kube: KubeEmulator) -> None:
    two_slices(kube)
    api = client.ApiClient(kube.client_configuration(ADMIN_TOKEN))
    discovery = client.DiscoveryV1Api(api)

    listed: Any = discovery.list_namespaced_endpoint_slice(NAMESPACE, label_selector=SELECTOR)
    assert [s.metadata.name for s in listed.items] == [f"{SERVICE}-abcde", f"{SERVICE}-fghij"]
    first = listed.items[0]
    assert (first.address_type, first.ports[0].name, first.ports[0].port, first.ports[0].protocol) == (
        "IPv4",
        "gpu-metrics",
        9400,
        "TCP",
    )
    assert [(e.addresses, e.conditions.ready, e.target_ref.name) for e in first.endpoints] == [
        (["10.244.1.7"], True, "dcgm-exporter-a"),
        (["10.244.2.7"], False, "dcgm-exporter-b"),
    ]
    everywhere = discovery.list_endpoint_slice_for_all_namespaces(label_selector=SELECTOR)
    assert len(everywhere.items) == 3
    for item in kube.objects("discovery.k8s.io/v1", "EndpointSlice"):
        kubernetes_validate.validate(item, "1.30", strict=True)

    # The apiserver's validation: loopback addresses (CVE-2021-25737) and a missing addressType.
    body: Any = {
        "metadata": {"name": "hijack", "labels": {"kubernetes.io/service-name": SERVICE}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.0.1"]}],
        "ports": [{"name": "metrics", "port": 9400}],
    }
    with pytest.raises(ApiException) as refused:
        discovery.create_namespaced_endpoint_slice(NAMESPACE, body)
    status = json.loads(refused.value.body or "{}")
    assert (refused.value.status, status["reason"]) == (422, "Invalid")
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)',
            "field": "endpoints[0].addresses[0]",
        }
    ]
    with pytest.raises(ApiException) as unsupported:
        discovery.create_namespaced_endpoint_slice(NAMESPACE, body | {"addressType": "IP"})
    assert json.loads(unsupported.value.body or "{}")["details"]["causes"][0]["message"] == (
        'Unsupported value: "IP": supported values: "FQDN", "IPv4", "IPv6"'
    )
    body["endpoints"] = [{"addresses": ["10.244.6.7"]}]
    created: Any = discovery.create_namespaced_endpoint_slice(NAMESPACE, body)
    assert created.ports[0].protocol == "TCP"  # defaulted

    # Deleting the Service deletes the slices it owns (not the one created by hand above).
    client.CoreV1Api(api).delete_namespaced_service(SERVICE, NAMESPACE)
    remaining: Any = discovery.list_namespaced_endpoint_slice(NAMESPACE, label_selector=SELECTOR)
    assert [s.metadata.name for s in remaining.items] == ["hijack"]
    api.close()  # type: ignore[no-untyped-call]
