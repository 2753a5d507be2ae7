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

The model is one argv element, but the server's argument parser still reads an element that starts
with `-` as an option (`--model --trust-remote-code`), so `checked_model` accepts only a Hugging
Face repo id as huggingface_hub validates them (`[org/]name`, letters, digits, `.`, `_`, `-`, each
part starting and ending with a letter, digit or `_`, no `--` or `..`, at most 96 characters a part)
or, when a model cache volume is configured, a path inside that cache's mount whose every part is a
plain file name (no `..`, no hidden parts, nothing starting with `-`). Anything else is refused.
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
_REPO_PART = r"[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?"
_REPO_ID = re.compile(rf"^(?:{_REPO_PART}/)?{_REPO_PART}$")
_CACHED_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}$")
MAX_MODEL_PATH = 1024
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


def checked_model(model: str, cache_dir: str | None = None) -> str:
    """`model` when it is a Hugging Face repo id, or a path inside `cache_dir` (the mounted model
    cache, None when there is none); RequestInvalid otherwise."""
    if _REPO_ID.match(model) and "--" not in model and ".." not in model:
        return model
    inside = cache_dir is not None and model.startswith(cache_dir + "/") and len(model) <= MAX_MODEL_PATH
    if inside and all(_CACHED_PART.match(part) for part in model[len(f"{cache_dir}/") :].split("/")):
        return model
    where = (
        f"or a path inside the model cache, {cache_dir}/…"
        if cache_dir is not None
        else "(a local path needs a model cache: CONCIERGE_K8S__HF_CACHE_PVC)"
    )
    raise RequestInvalid(
        f"the model {model!r} is not a model id like meta-llama/Llama-3.1-8B-Instruct {where}: ids hold "
        "only letters, digits, '_', '.', '-' and one '/', and never start with '-', '.' or '/'"
    )


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
    cache = _CACHE_PATH[engine]
    model = checked_model(request.model or "", cache if settings.hf_cache_pvc else None)
    port = request.port or SERVING_PORT
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
