"""The sbatch script: our header exactly as emitted, the command untouched, no injection."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from backends.errors import ConfigurationError, RequestInvalid
from backends.footprint import GpusNotStated, derive_footprint, gpus_per_unit
from backends.slurm.script import (
    END_OF_OPTIONS,
    honoured_directives,
    job_name,
    render_sbatch_script,
    sbatch_options,
    script_warnings,
)
from backends.slurm.settings import SlurmSettings
from backends.types import Footprint, Identity, JobRequest

ALICE = Identity(requester="U1", unix_user="alice")
SETTINGS = SlurmSettings()
# What each option's value may be made of (the module's promise, restated independently).
VALUE_SHAPES = {
    "--job-name": r"[A-Za-z0-9_.-]{1,64}",
    "--partition": r"[A-Za-z0-9_][A-Za-z0-9_.-]*",
    "--account": r"[A-Za-z0-9_][A-Za-z0-9_.-]*",
    "--qos": r"[A-Za-z0-9_][A-Za-z0-9_.-]*",
    "--nodes": r"\d+",
    "--gres": r"(gpu|shard)(:[A-Za-z0-9_.-]+)?:\d+",
    "--time": r"(\d+-)?\d\d:\d\d:00",
    "--cpus-per-task": r"\d+",
    "--mem": r"\d+G",
    "--output": r"[A-Za-z0-9_.%/-]+",
    "--export": r"NONE",
    "--chdir": r"/[A-Za-z0-9_./-]*",
    "--comment": r"gpu-concierge:[A-Za-z0-9_.:-]+",
}


def footprint(request: JobRequest) -> Footprint:
    """What the request holds on Slurm. Requests here that name no GPU are about the header's
    safety, not GPUs: they are read as the CPU jobs they would be if the person said so."""
    try:
        gpus_per_unit(request)
    except GpusNotStated:
        request = request.model_copy(update={"cpu_only": True})
    return derive_footprint(request, "slurm", default_minutes=60, longest_minutes=2880)


def render(request: JobRequest, request_id: str = "req-1", workdir: str | None = None) -> str:
    return render_sbatch_script(footprint(request), ALICE, request_id, SETTINGS, workdir=workdir)


def assert_header_is_ours(script: str, request: JobRequest, request_id: str, workdir: str | None) -> None:
    emitted = [
        "#SBATCH " + option
        for option in sbatch_options(footprint(request), request_id, SETTINGS, workdir=workdir)
    ]
    assert honoured_directives(script) == emitted
    for line in emitted:
        option, value = line.removeprefix("#SBATCH ").split("=", 1)
        assert re.fullmatch(VALUE_SHAPES[option], value), line


def test_complete_script() -> None:
    request = JobRequest(
        gpus=2,
        gpu_type="a100",
        time_limit_minutes=240,
        cpus=8,
        memory_gb=64,
        nodes=1,
        partition="gpu",
        account="physics",
        qos="normal",
        command="python train.py --epochs 3",
    )
    script = render(request, workdir="/home/alice")
    assert script == (
        "#!/bin/bash\n"
        "#SBATCH --job-name=train.py\n"
        "#SBATCH --partition=gpu\n"
        "#SBATCH --account=physics\n"
        "#SBATCH --qos=normal\n"
        "#SBATCH --nodes=1\n"
        "#SBATCH --gres=gpu:a100:2\n"
        "#SBATCH --time=04:00:00\n"
        "#SBATCH --cpus-per-task=8\n"
        "#SBATCH --mem=64G\n"
        "#SBATCH --output=concierge-%x-%j.out\n"
        "#SBATCH --export=NONE\n"
        "#SBATCH --chdir=/home/alice\n"
        "#SBATCH --comment=gpu-concierge:req-1\n"
        f"{END_OF_OPTIONS}\n"
        "python train.py --epochs 3\n"
    )


def test_defaults_from_settings_and_minimal_request() -> None:
    settings = SlurmSettings(default_partition="short")
    script = render_sbatch_script(footprint(JobRequest(command="nvidia-smi")), ALICE, "r", settings)
    assert "#SBATCH --partition=short" in script
    assert "--gres" not in script and "--chdir" not in script
    # Every Slurm job has a wall time: the site's default when none was stated.
    assert "#SBATCH --time=01:00:00" in script and "#SBATCH --nodes=1" in script


@pytest.mark.parametrize(
    ("request_fields", "gres"),
    [
        ({"gpus": 1}, "gpu:1"),
        ({"gpu_type": "l40s"}, "gpu:l40s:1"),
        ({"gpus": 4, "gpu_type": "h100", "nodes": 2}, "gpu:h100:4"),
        ({"mig_profile": "1g.10gb"}, "gpu:1g.10gb:1"),
        ({"mig_profile": "3g.40gb", "gpus": 2}, "gpu:3g.40gb:2"),
        ({"shared": True}, "shard:1"),
        ({"cpu_only": True}, None),
    ],
)
def test_gpu_requests(request_fields: dict[str, object], gres: str | None) -> None:
    script = render(JobRequest(command="run", **request_fields))  # type: ignore[arg-type]
    found = [line for line in honoured_directives(script) if line.startswith("#SBATCH --gres=")]
    assert found == ([f"#SBATCH --gres={gres}"] if gres else [])


def test_day_long_times() -> None:
    assert "#SBATCH --time=2-00:00:00" in render(JobRequest(command="x", time_limit_minutes=2880))


@pytest.mark.parametrize(
    ("name", "command", "expected"),
    [
        (None, "python train.py --lr 3", "train.py"),
        (None, "bash /data/run_all.sh", "run_all.sh"),
        (None, "nvidia-smi -L", "nvidia-smi"),
        ("my experiment #3", None, "my-experiment-3"),
        ("résumé $(rm -rf ~)", None, "r-sum-rm-rf"),
        ("a\"b'c", None, "a-b-c"),
        ("💥💥", None, "concierge-req12345"),
        ("x" * 120, None, "x" * 64),
        ("--partition=evil", None, "partition-evil"),
    ],
)
def test_job_names_are_made_safe(name: str | None, command: str | None, expected: str) -> None:
    request = JobRequest(name=name, command=command or "true")
    assert job_name(request, "req12345-6789") == expected


@pytest.mark.parametrize(
    "command",
    [
        "#SBATCH --partition=evil\nsleep 1",
        "sleep 1\n#SBATCH --partition=evil",
        "\n#SBATCH --partition=evil\n",
        "   \n# just a comment\n#SBATCH --qos=evil\necho hi",
        "echo \"$(whoami)\" 'quoted' `date`; exit 3",
    ],
)
def test_command_cannot_add_directives_and_stays_unchanged(command: str) -> None:
    request = JobRequest(command=command, partition="gpu")
    script = render(request)
    assert_header_is_ours(script, request, "req-1", None)
    assert script.endswith(command if command.endswith("\n") else command + "\n")
    assert script.index(END_OF_OPTIONS) < script.index(command)


def test_name_with_newline_and_directive_stays_one_safe_value() -> None:
    request = JobRequest(name="x\n#SBATCH --partition=evil", command="true")
    script = render(request)
    assert_header_is_ours(script, request, "req-1", None)
    assert not any(line.startswith("#SBATCH --partition") for line in honoured_directives(script))
    assert "#SBATCH --job-name=x-SBATCH-partition-evil" in honoured_directives(script)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("partition", "gpu\n#SBATCH --qos=evil"),
        ("partition", "gpu short"),
        ("account", "$(id)"),
        ("account", "-x"),
        ("qos", "normal;rm"),
        ("qos", "'normal'"),
    ],
)
def test_unsafe_names_are_refused_naming_the_field(field: str, value: str) -> None:
    with pytest.raises(RequestInvalid, match=field):
        render(JobRequest(command="true", **{field: value}))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("command", "message"),
    [("a\r\nb", "Windows line ends"), ("a\x00b", "NUL"), ("   ", "no command")],
)
def test_commands_sbatch_would_refuse(command: str, message: str) -> None:
    with pytest.raises(RequestInvalid, match=message):
        render(JobRequest(command=command))


def test_missing_command() -> None:
    with pytest.raises(RequestInvalid, match="no command"):
        render(JobRequest(gpus=1))


def test_bad_settings_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="output pattern"):
        render_sbatch_script(
            footprint(JobRequest(command="x")), ALICE, "r", SlurmSettings(output_pattern="out put.txt")
        )
    with pytest.raises(ConfigurationError, match="working directory"):
        render(JobRequest(command="x"), workdir="/home/al ice")
    with pytest.raises(ConfigurationError, match="working directory"):
        render(JobRequest(command="x"), workdir="relative/dir")


def test_request_id_must_be_plain() -> None:
    with pytest.raises(RequestInvalid, match="request id"):
        render(JobRequest(command="x"), request_id="r 1\n#SBATCH")


def test_warnings_for_what_slurm_cannot_express() -> None:
    assert any("memory" in w for w in script_warnings(JobRequest(gpu_memory_gb=80, gpus=1)))
    assert any("shard" in w for w in script_warnings(JobRequest(shared=True)))
    assert script_warnings(JobRequest(gpus=1)) == ()


def test_honoured_directives_follow_sbatch_rules() -> None:
    script = "#!/bin/bash\n#SBATCH --a=1\n\n   # note\n#SBATCH --b=2\nrun\n#SBATCH --c=3\n"
    assert honoured_directives(script) == ["#SBATCH --a=1", "#SBATCH --b=2"]


safe_names = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    name=st.one_of(st.none(), st.text(min_size=1, max_size=80)),
    command=st.text(min_size=1, max_size=300),
    partition=st.one_of(st.none(), safe_names, st.text(min_size=1, max_size=30)),
    qos=st.one_of(st.none(), safe_names),
    gpus=st.one_of(st.none(), st.integers(min_value=0, max_value=16)),
    minutes=st.one_of(st.none(), st.integers(min_value=1, max_value=366 * 24 * 60)),
)
def test_no_text_can_change_the_header(
    name: str | None,
    command: str,
    partition: str | None,
    qos: str | None,
    gpus: int | None,
    minutes: int | None,
) -> None:
    try:
        request = JobRequest(
            name=name, command=command, partition=partition, qos=qos, gpus=gpus, time_limit_minutes=minutes
        )
    except ValidationError:
        return  # the request model itself refused it (e.g. a blank name)
    try:
        script = render(request)
    except RequestInvalid as refused:
        # Refusals are for the named reasons only: an unsafe partition or a command sbatch refuses.
        assert any(word in refused.message for word in ("partition", "NUL", "Windows", "no command"))
        return
    assert_header_is_ours(script, request, "req-1", None)
    body = script.split(END_OF_OPTIONS + "\n", 1)[1]
    assert body.rstrip("\n") == command.rstrip("\n") or body == command + "\n"
