"""Model-serving containers: vLLM (the default) and Hugging Face TGI, for `model: <hf id>`.

vLLM serves the OpenAI API on port 8000 (`vllm/vllm-openai`, started as
`python3 -m vllm.entrypoints.openai.api_server --model …`, an entry point every release since
0.2 keeps); TGI is picked when the request names it (`tgi`, `text-generation-inference`, or a TGI
image), started by its image's launcher with `--model-id`. Both:
- get the model id as ONE argv element (never text parsed into arguments), and shard it over the
  pod's GPUs (`--tensor-parallel-size` / `--num-shard`) when there are several;
- are ready when `GET /health` answers (both servers have it), so a Service sends no traffic to a
  replica still loading weights;
- mount a memory-backed `emptyDir` on /dev/shm (the container default of 64 MB breaks NCCL and
  PyTorch's shared-memory tensors), and, when configured, a PVC as the Hugging Face cache and the
  token from a Secret (`HF_TOKEN`), never a token in the manifest.
A command given with a model replaces the server's start-up (run as `/bin/sh -c <command>`) in the
same image with the same port, probe and volumes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from backends.errors import RequestInvalid
from backends.k8s.settings import K8sSettings
from backends.types import JobRequest

SERVING_PORT = 8000
_TGI_WORDS = re.compile(r"(?<![a-z0-9])(tgi|text-generation-inference)(?![a-z0-9])", re.IGNORECASE)
_MODEL_ID = re.compile(r"^[A-Za-z0-9_./-][A-Za-z0-9_./:@-]*$")
SHM_VOLUME = "dshm"
CACHE_VOLUME = "hf-cache"


class ServingEngine(StrEnum):
    VLLM = "vllm"
    TGI = "tgi"


_CACHE_PATH = {ServingEngine.VLLM: "/root/.cache/huggingface", ServingEngine.TGI: "/data"}


@dataclass(frozen=True)
class ServingPod:
    container: dict[str, Any]
    volumes: tuple[dict[str, Any], ...]
    port: int


def serving_engine(request: JobRequest) -> ServingEngine | None:
    if not request.model:
        return None
    said = (request.image, request.command, request.name)
    if any(text and _TGI_WORDS.search(text) for text in said):
        return ServingEngine.TGI
    return ServingEngine.VLLM


def checked_model(model: str) -> str:
    if not _MODEL_ID.match(model) or ".." in model.split("/"):
        raise RequestInvalid(
            f"the model {model!r} is not a model id like meta-llama/Llama-3.1-8B-Instruct: ids hold "
            "only letters, digits, '_', '.', '-' and '/'"
        )
    return model


def _server_args(engine: ServingEngine, model: str, port: int, gpus: int) -> list[str]:
    if engine is ServingEngine.TGI:
        args = ["--model-id", model, "--hostname", "0.0.0.0", "--port", str(port)]  # noqa: S104
        return args + (["--num-shard", str(gpus)] if gpus > 1 else [])
    args = ["--model", model, "--host", "0.0.0.0", "--port", str(port)]  # noqa: S104
    return args + (["--tensor-parallel-size", str(gpus)] if gpus > 1 else [])


def serving_pod(
    request: JobRequest,
    settings: K8sSettings,
    engine: ServingEngine,
    *,
    image: str | None,
    resources: dict[str, Any],
    gpus: int,
) -> ServingPod:
    model = checked_model(request.model or "")
    port = request.port or SERVING_PORT
    cache = _CACHE_PATH[engine]
    default_image = settings.tgi_image if engine is ServingEngine.TGI else settings.vllm_image
    container: dict[str, Any] = {"name": engine.value, "image": image or default_image}
    if request.command:
        container["command"] = ["/bin/sh", "-c", request.command]
    elif engine is ServingEngine.VLLM:
        container["command"] = ["python3", "-m", "vllm.entrypoints.openai.api_server"]
        container["args"] = _server_args(engine, model, port, gpus)
    else:
        container["args"] = _server_args(engine, model, port, gpus)
    env: list[dict[str, Any]] = [{"name": "HF_HOME", "value": cache}, {"name": "MODEL_ID", "value": model}]
    if settings.hf_token_secret:
        env.append(
            {
                "name": "HF_TOKEN",
                "valueFrom": {
                    "secretKeyRef": {"name": settings.hf_token_secret, "key": settings.hf_token_secret_key}
                },
            }
        )
    mounts: list[dict[str, Any]] = [{"name": SHM_VOLUME, "mountPath": "/dev/shm"}]  # noqa: S108
    volumes: list[dict[str, Any]] = [{"name": SHM_VOLUME, "emptyDir": {"medium": "Memory"}}]
    if settings.hf_cache_pvc:
        mounts.append({"name": CACHE_VOLUME, "mountPath": cache})
        volumes.append({"name": CACHE_VOLUME, "persistentVolumeClaim": {"claimName": settings.hf_cache_pvc}})
    container.update(
        {
            "env": env,
            "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
            "readinessProbe": {
                "httpGet": {"path": "/health", "port": "http"},
                "periodSeconds": 10,
                "failureThreshold": 3,
            },
            "volumeMounts": mounts,
            "resources": resources,
        }
    )
    return ServingPod(container=container, volumes=tuple(volumes), port=port)
