"""Kubernetes names from any text: always a valid RFC 1035 label, never empty."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from backends.k8s.naming import (
    DNS_LABEL,
    LABEL_VALUE,
    dns_label,
    is_namespace,
    label_value,
    short_id,
    workload_name,
)
from backends.types import JobRequest

REQUEST_ID = "0f8e9a2c-1b2d-4e5f-8a9b-0c1d2e3f4a5b"


@given(st.text(max_size=300), st.text(max_size=60))
def test_any_text_becomes_a_valid_label(text: str, request_id: str) -> None:
    name = dns_label(text, f"concierge-{short_id(request_id)}")
    assert DNS_LABEL.match(name), name
    assert 1 <= len(name) <= 63


@given(st.text(max_size=200))
def test_any_text_becomes_a_valid_label_value(text: str) -> None:
    value = label_value(text)
    assert LABEL_VALUE.match(value), value
    assert len(value) <= 63


@given(
    st.builds(
        JobRequest,
        name=st.none() | st.text(min_size=1, max_size=128).filter(str.strip),
        command=st.none() | st.text(min_size=1, max_size=300),
        model=st.none() | st.text(min_size=1, max_size=128).filter(str.strip),
    )
)
def test_every_request_gets_a_workload_name(request: JobRequest) -> None:
    assert DNS_LABEL.match(workload_name(request, REQUEST_ID))
    assert DNS_LABEL.match(workload_name(request, REQUEST_ID, unique=True))


def test_names_keep_what_a_person_recognises() -> None:
    assert workload_name(JobRequest(name="My Training_Run #3"), REQUEST_ID) == "my-training-run-3"
    assert workload_name(JobRequest(model="meta-llama/Llama-3.1-8B-Instruct"), REQUEST_ID) == (
        "llama-3-1-8b-instruct"
    )
    assert workload_name(JobRequest(command="python /src/train_gpt.py --lr 3e-4"), REQUEST_ID) == "train-gpt"
    assert workload_name(JobRequest(image="ghcr.io/acme/bench:2.1"), REQUEST_ID) == "bench"
    assert workload_name(JobRequest(name="Modèle Été"), REQUEST_ID) == "modele-ete"


def test_derived_batch_names_carry_the_request_id_and_given_names_do_not() -> None:
    script = JobRequest(command="python train.py")
    assert workload_name(script, REQUEST_ID, unique=True) == "train-0f8e9a2c"
    assert workload_name(JobRequest(name="train", command="x"), REQUEST_ID, unique=True) == "train"
    assert workload_name(JobRequest(), REQUEST_ID, unique=True) == "concierge-0f8e9a2c"
    long = workload_name(JobRequest(command="python " + "x" * 80 + ".py"), REQUEST_ID, unique=True)
    assert len(long) == 63 and long.endswith("-0f8e9a2c") and DNS_LABEL.match(long)


def test_a_name_never_starts_with_a_digit_or_a_dash() -> None:
    assert workload_name(JobRequest(name="3d-unet"), REQUEST_ID) == "gpu-3d-unet"
    assert workload_name(JobRequest(name="---x"), REQUEST_ID) == "x"


def test_nothing_usable_falls_back_to_the_request_id() -> None:
    assert workload_name(JobRequest(name="日本語"), REQUEST_ID) == "concierge-0f8e9a2c"
    assert workload_name(JobRequest(), REQUEST_ID) == "concierge-0f8e9a2c"
    assert dns_label("!!!", "concierge-request") == "concierge-request"


def test_long_names_are_cut_to_63_without_a_trailing_dash() -> None:
    name = workload_name(JobRequest(name="a" * 62 + "-b" * 10), REQUEST_ID)
    assert len(name) <= 63 and not name.endswith("-")
    assert re.fullmatch(r"a{62}", name)


def test_namespaces_are_checked_not_rewritten() -> None:
    assert is_namespace("research")
    assert is_namespace("team-7")
    assert not is_namespace("Research")
    assert not is_namespace("a" * 64)
    assert not is_namespace("ns; rm -rf /")
