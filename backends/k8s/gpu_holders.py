"""Who holds a GPU that dcgm-exporter (Kubernetes mode) says is allocated to a pod.

Pure functions over what the caller already has (the samples' pod/namespace and the pods' label
dicts from the one labelled LIST the tracker makes anyway): no API call here.

- A pod of ours (`app.kubernetes.io/managed-by: gpu-concierge`) belongs to the workload named by
  `app.kubernetes.io/name`: the holder's job_id is `namespace/name`, the same id the backend
  gives that Deployment or Job, so a digest can link the GPU to the request.
- Any other pod is its own holder, `namespace/pod`.
- The owner: our pods carry no owner label (owners are annotations on the workload, and a user
  name is often not a valid label value), so the caller may pass `owners` (job_id → user, e.g.
  from `owners_from_workloads`); else the person the pod's own labels name, where dcgm-exporter
  exports them (`GpuSample.pod_owner`); else the namespace, which on most clusters is the team
  or the person.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from backends.gpu.samples import GpuHolder, GpuSample
from backends.k8s.manifests import MANAGED_BY, MANAGED_BY_LABEL, NAME_LABEL
from backends.k8s.workloads import Workload

# (namespace, pod name)
PodKey = tuple[str, str]


def pod_gpu_holder(
    namespace: str,
    pod: str,
    labels: Mapping[str, str] | None = None,
    owners: Mapping[str, str] | None = None,
    pod_owner: str | None = None,
) -> GpuHolder:
    """The holder of a GPU allocated to this pod."""
    labels = labels or {}
    workload = labels.get(NAME_LABEL) if labels.get(MANAGED_BY_LABEL) == MANAGED_BY else None
    job_id = f"{namespace}/{workload or pod}"
    owner = (owners or {}).get(job_id) or pod_owner or namespace
    return GpuHolder(backend="k8s", job_id=job_id, owner=owner)


def gpu_holders(
    samples: Iterable[GpuSample],
    pod_labels: Mapping[PodKey, Mapping[str, str]] | None = None,
    owners: Mapping[str, str] | None = None,
) -> dict[PodKey, GpuHolder]:
    """A holder for every pod the samples name (those without pod labels too)."""
    pod_labels = pod_labels or {}
    holders: dict[PodKey, GpuHolder] = {}
    for sample in samples:
        if sample.pod and sample.namespace:
            key = (sample.namespace, sample.pod)
            if key not in holders:
                holders[key] = pod_gpu_holder(
                    sample.namespace, sample.pod, pod_labels.get(key), owners, sample.pod_owner
                )
    return holders


def owners_from_workloads(workloads: Iterable[Workload]) -> dict[str, str]:
    """job_id → the Kubernetes user (else the requester) our annotations name, for `owners`."""
    owners: dict[str, str] = {}
    for workload in workloads:
        owner = workload.k8s_user or workload.requester
        if owner:
            owners.setdefault(workload.job_id, owner)
    return owners
