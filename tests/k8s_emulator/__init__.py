"""A Kubernetes API emulator for tests: the real wire protocol on 127.0.0.1 for the unchanged client.

    with KubeEmulator() as kube:
        kube.add_token("bot-token", "system:serviceaccount:concierge:bot")
        kube.allow_bot()
        kube.add_namespace("research")
        kube.add_node("gpu-1", gpu_product="NVIDIA-A100-SXM4-80GB", gpus=8, gpu_memory_mib=81920)
        kube.add_endpoint_slice("gpu-operator", "nvidia-dcgm-exporter", [SliceEndpoint("10.0.0.7")])
        api = kubernetes.client.ApiClient(kube.client_configuration("bot-token"))

Modules: resources (what is served), store (objects, resourceVersion, change log), routes and
dispatch (paths, authentication, impersonation, RBAC, verbs), server (HTTP), watch, selectors,
patches, defaults and validation (what the apiserver fills and refuses), rbac, cluster (the verbs
and the settle loop), workloads (Deployment/ReplicaSet/Job controllers), scheduler, kubelet,
events, nodes (GPU nodes as GPU Feature Discovery labels them), endpoints (a Service's
EndpointSlices, written by tests: no endpointslice controller runs).
"""

from tests.k8s_emulator.dispatch import RequestRecord
from tests.k8s_emulator.emulator import BOT_USER, KubeEmulator
from tests.k8s_emulator.endpoints import SliceEndpoint
from tests.k8s_emulator.state import MessageStyle

__all__ = ["BOT_USER", "KubeEmulator", "MessageStyle", "RequestRecord", "SliceEndpoint"]
