"""Every reason code FIELD_NOTES.md lists has a code and a plain sentence; unknown ones degrade."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from backends.slurm.reasons import REASONS, ReasonContext, describe_reason, start_estimate_is_meaningful
from backends.types import PendingCode

X = "\N{MULTIPLICATION SIGN}"
# Copied from FIELD_NOTES.md ("Reason codes"), with the code each must become.
FIELD_NOTES_CODES: dict[str, PendingCode] = {
    "Resources": PendingCode.INSUFFICIENT_GPU,
    "Priority": PendingCode.PRIORITY,
    "Dependency": PendingCode.DEPENDENCY,
    "DependencyNeverSatisfied": PendingCode.DEPENDENCY_NEVER,
    "BeginTime": PendingCode.BEGIN_TIME,
    "QOSMaxGRESPerUser": PendingCode.QOS_GPU_LIMIT,
    "QOSMaxGRESPerJob": PendingCode.QOS_GPU_LIMIT,
    "AssocGrpGRES": PendingCode.ACCOUNT_GPU_LIMIT,
    "QOSGrpGRES": PendingCode.QOS_GPU_LIMIT,
    "MaxGRESPerAccount": PendingCode.ACCOUNT_GPU_LIMIT,
    "ReqNodeNotAvail": PendingCode.NODES_UNAVAILABLE,
    "PartitionTimeLimit": PendingCode.TIME_LIMIT,
    "PartitionNodeLimit": PendingCode.NODE_LIMIT,
    "PartitionDown": PendingCode.PARTITION_DOWN,
    "JobHeldUser": PendingCode.HELD,
    "JobHeldAdmin": PendingCode.HELD,
    "InvalidQOS": PendingCode.INVALID_QOS,
    "QOSNotAllowed": PendingCode.INVALID_QOS,
    "InvalidAccount": PendingCode.INVALID_ACCOUNT,
    "Reservation": PendingCode.RESERVATION,
    "None": PendingCode.NOT_YET_CONSIDERED,
}
FIELD_NOTES = Path(__file__).parents[3] / "shared" / "docs" / "FIELD_NOTES.md"
CONTEXT = ReasonContext(
    job="12",
    gpus=f"2 {X} a100 GPUs",
    partition="gpu",
    time_limit="2 h",
    partition_max_time="1 h",
    qos="normal",
    account="physics",
    unavailable_nodes=": n[1-2]",
)


@pytest.mark.parametrize(("slurm_code", "ours"), sorted(FIELD_NOTES_CODES.items()))
def test_every_field_notes_code_is_mapped(slurm_code: str, ours: PendingCode) -> None:
    assert slurm_code in REASONS
    code, sentence = describe_reason(slurm_code, CONTEXT)
    assert code is ours
    assert sentence.startswith("Job 12 ")
    assert "{" not in sentence and "}" not in sentence
    assert len(sentence) > 60  # what happened and what to do, not a bare label


def test_the_list_matches_field_notes_when_it_is_at_hand() -> None:
    if not FIELD_NOTES.exists():
        pytest.skip(f"{FIELD_NOTES} is not present in this checkout")
    text = FIELD_NOTES.read_text()
    section = text[text.index("**Reason codes**") :]
    section = section[: section.index("Use the code field")]
    codes = section.split("):", 1)[1]
    while re.search(r"\([^()]*\)", codes):  # drop remarks such as "(lists UnavailableNodes)"
        codes = re.sub(r"\([^()]*\)", "", codes)
    listed = {word.strip(" .\n") for word in codes.split(",")}
    assert len(listed) >= 20
    assert listed <= set(FIELD_NOTES_CODES), listed - set(FIELD_NOTES_CODES)
    assert listed <= set(REASONS)


def test_sentences_name_the_facts_they_are_about() -> None:
    assert "2 h" in describe_reason("PartitionTimeLimit", CONTEXT)[1]
    assert "1 h" in describe_reason("PartitionTimeLimit", CONTEXT)[1]
    assert "n[1-2]" in describe_reason("ReqNodeNotAvail", CONTEXT)[1]
    assert "scontrol release 12" in describe_reason("JobHeldUser", CONTEXT)[1]
    assert "normal" in describe_reason("QOSMaxGRESPerUser", CONTEXT)[1]
    assert "physics" in describe_reason("AssocGrpGRES", CONTEXT)[1]


def test_unknown_code_is_other_and_quotes_slurm() -> None:
    code, sentence = describe_reason("FrontEndDown", CONTEXT)
    assert code is PendingCode.OTHER
    assert "'FrontEndDown'" in sentence


def test_absent_reason_reads_as_not_yet_considered() -> None:
    assert describe_reason(None, CONTEXT)[0] is PendingCode.NOT_YET_CONSIDERED


def test_defaults_keep_sentences_whole() -> None:
    for slurm_code in REASONS:
        _, sentence = describe_reason(slurm_code, ReasonContext(job="7"))
        assert "{" not in sentence and "  " not in sentence


def test_start_estimates_only_where_they_mean_something() -> None:
    assert start_estimate_is_meaningful("Resources")
    assert start_estimate_is_meaningful("Priority")
    assert not start_estimate_is_meaningful("JobHeldUser")
    assert not start_estimate_is_meaningful("Dependency")
    assert not start_estimate_is_meaningful("PartitionTimeLimit")
