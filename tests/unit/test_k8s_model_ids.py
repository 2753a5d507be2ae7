"""Model ids become one argv element of vLLM/TGI: never an option, never a path outside the model cache."""

from __future__ import annotations

import pytest

from backends.errors import RequestInvalid
from backends.k8s.settings import K8sSettings
from backends.k8s.templates import ServingEngine, checked_model, serving_pod
from backends.types import JobRequest

CACHE = "/root/.cache/huggingface"
HOSTILE = [
    "--trust-remote-code",
    "-trust-remote-code",
    "--model=/etc/passwd",
    "-",
    "/etc/passwd",
    "/",
    ".",
    "..",
    ".hidden/model",
    "./model",
    "../model",
    "org/../../etc",
    "org/..",
    "org/.model",
    "org/-model",
    "org/model-",
    "org/model.",
    "org--model/x",
    "meta-llama/Llama--3",
    "a/b/c",
    "org/",
    "/org/name",
    "org//name",
    "meta-llama/Llama-3.1-8B-Instruct:latest",
    "meta-llama/Llama-3.1-8B-Instruct@main",
    "meta llama/x",
    "org/name\n--trust-remote-code",
    "org/na\x00me",
    "mödel/x",
    "x" * 97,
    f"{CACHE}/../../../etc/passwd",
    f"{CACHE}/models/../../etc",
    f"{CACHE}/-x",
    f"{CACHE}/.hidden",
    f"{CACHE}/",
    f"{CACHE}//models/x",
    f"{CACHE}x/models",
    "/data/models/x",
]


@pytest.mark.parametrize("model", HOSTILE)
def test_a_hostile_model_id_is_refused(model: str) -> None:
    with pytest.raises(RequestInvalid, match="not a model id"):
        checked_model(model, CACHE)


@pytest.mark.parametrize(
    "model",
    [
        "meta-llama/Llama-3.1-8B-Instruct",
        "Qwen/Qwen2.5-7B-Instruct",
        "gpt2",
        "bigscience/bloom-560m",
        "_org/model_",
        "TheBloke/Llama-2-7B-Chat-GPTQ",
        "o/" + "x" * 96,
    ],
)
def test_a_hugging_face_repo_id_is_accepted(model: str) -> None:
    assert checked_model(model, None) == model


def test_a_path_is_accepted_only_inside_a_configured_model_cache() -> None:
    inside = f"{CACHE}/models/my-finetune.v2"
    assert checked_model(inside, CACHE) == inside
    with pytest.raises(RequestInvalid, match="needs a model cache: CONCIERGE_K8S__HF_CACHE_PVC"):
        checked_model(inside, None)
    request = JobRequest(model=inside, gpus=1)
    with_cache = K8sSettings(hf_cache_pvc="models")
    pod = serving_pod(request, with_cache, ServingEngine.VLLM, image=None, resources={}, gpus=1)
    assert pod.container["args"][:2] == ["--model", inside]
    with pytest.raises(RequestInvalid, match="not a model id"):
        serving_pod(request, K8sSettings(), ServingEngine.VLLM, image=None, resources={}, gpus=1)
    with pytest.raises(RequestInvalid, match="not a model id"):  # TGI's cache is mounted at /data
        serving_pod(request, with_cache, ServingEngine.TGI, image=None, resources={}, gpus=1)
