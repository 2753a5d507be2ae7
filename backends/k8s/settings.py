"""Settings of the Kubernetes backend.

They live with the backend, not in bot/, so the backend depends on nothing of the doors; the
bot's typed `Settings` nests them (`CONCIERGE_K8S__…`) and passes them in.

Images are pinned to a tag: a moving tag (`latest`) would make the same request run different
servers from one day to the next. `backoff_limit` is 0 by default because a GPU job that failed
usually fails again the same way; retrying it only holds GPUs longer (Slurm does not requeue
either). Finished Jobs stay a day (`ttl_seconds_after_finished`) so `concierge status` and
`concierge why` can still read them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class K8sSettings(BaseModel):
    kubeconfig: Path | None = None  # None: in-cluster service account, else the default kubeconfig
    context: str | None = None  # kubeconfig context; None: the file's current context
    default_namespace: str | None = None  # when neither the request nor the person's map names one
    request_timeout_s: float = Field(default=30.0, gt=0)
    runtime_class_name: str | None = None  # e.g. "nvidia" where the GPU Operator made that RuntimeClass
    priority_class_name: str | None = None
    default_image: str = "nvidia/cuda:12.4.1-runtime-ubuntu22.04"  # batch jobs that name no image
    vllm_image: str = "vllm/vllm-openai:v0.11.0"
    tgi_image: str = "ghcr.io/huggingface/text-generation-inference:3.3.4"
    hf_cache_pvc: str | None = None  # a PersistentVolumeClaim mounted as the Hugging Face cache
    hf_token_secret: str | None = None  # a Secret in the workload's namespace holding a HF token
    hf_token_secret_key: str = "token"  # noqa: S105 (the key's name inside the Secret, not a token)
    ttl_seconds_after_finished: int | None = Field(default=86_400, ge=0)
    backoff_limit: int = Field(default=0, ge=0)
    kubernetes_version: str = "1.30"  # the schema version manifests are checked against
    facts_ttl_s: float = Field(default=30.0, ge=0)  # how long one nodes LIST serves plans
    # GPU products (`nvidia.com/gpu.product` values) to plan with when the cluster cannot be read.
    fallback_gpu_products: tuple[str, ...] = ()
    client_cache_size: int = Field(default=64, ge=1)  # impersonating API clients kept open
