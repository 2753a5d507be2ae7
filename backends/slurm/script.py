"""The sbatch script a request becomes: a header we control and the person's command, untouched.

Why nothing from a person's text can add or break an `#SBATCH` line:
- Every header value is checked against a strict character set for its option (names:
  `[A-Za-z0-9_.-]`, paths: absolute and `[A-Za-z0-9_./-]`, numbers are ints); a value that fails
  raises RequestInvalid naming the field. The job name is the one value derived from free text, so
  it is reduced to that set instead (fallback `concierge-<short id>`). No newline, quote, `$` or
  space can reach the header.
- sbatch reads `#SBATCH` lines only until the first line that is neither blank nor a comment
  (src/sbatch/opt.c). After our last directive comes `: end of sbatch options`, a call of the
  shell's null builtin `:`: it prints nothing and changes no directory, option, variable or exit
  status, so the command runs exactly as written, yet every `#SBATCH` line the command may contain
  is past the point where sbatch stops reading. (`set -euo pipefail` would change how the command
  behaves, `cd` would undo --chdir, `echo` would write into the job's output.)
`--export=NONE` gives the job the person's own login environment (loaded on the node, verified
on 22.05 both as root with --uid and as the user), never the bot's variables.
The command itself goes in unchanged, except that a final newline is added. sbatch refuses
scripts with DOS line ends (`\\r\\n`) and NUL bytes, so those are rejected here with a message.

MIG: Slurm sites expose MIG slices as GPU GRES whose type is the profile (gres.conf
`Name=gpu Type=1g.10gb …`; Princeton's Della documents `--gres=gpu:1g.10gb:1`), so a MIG request
becomes `--gres=gpu:<profile>:<count>`. A shared GPU becomes `--gres=shard:<count>` (Slurm's GPU
sharding since 22.05); both need the site to define those GRES, and sbatch says so otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from backends.command_names import script_name
from backends.errors import ConfigurationError, RequestInvalid
from backends.slurm.durations import format_time_limit
from backends.slurm.gres import gres_option
from backends.slurm.settings import SlurmSettings
from backends.types import Footprint, GpuKind, Identity, JobRequest

OUR_TAG = "gpu-concierge:"
END_OF_OPTIONS = ": end of sbatch options"
SHEBANG = "#!/bin/bash"
DIRECTIVE = "#SBATCH"

_SLURM_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_GPU_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MIG_PROFILE = re.compile(r"^\d+g\.\d+gb$")
_PATH = re.compile(r"^/[A-Za-z0-9_./-]{0,4095}$")
_OUTPUT_PATTERN = re.compile(r"^[A-Za-z0-9_.%/-]{1,4096}$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_NOT_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
MAX_JOB_NAME = 64
# Said in the preview, beside the --export=NONE that makes it true (sbatch_options).
LOGIN_ENVIRONMENT = (
    "runs with {user}'s login environment (their PATH, modules and variables): Slurm loads it on the "
    "node (--export=NONE); nothing of the bot's is passed on"
)


def _checked_name(field: str, value: str) -> str:
    if not _SLURM_NAME.match(value):
        raise RequestInvalid(
            f"the {field} {value!r} cannot be used: Slurm {field} names contain only letters, "
            "digits, '_', '.' and '-' (and do not start with '.' or '-'); use the name exactly as "
            "`concierge free` or `sinfo` shows it"
        )
    return value


def _short_id(request_id: str) -> str:
    return _NOT_NAME_CHARS.sub("", request_id)[:8] or "job"


def job_name(request: JobRequest, request_id: str) -> str:
    """A name safe for the header, derived from any text; `concierge-<short id>` when none is left."""
    source = request.name or script_name(request.command) or ""
    cleaned = re.sub(r"-{2,}", "-", _NOT_NAME_CHARS.sub("-", source)).strip("-.")
    cleaned = cleaned[:MAX_JOB_NAME].strip("-.")
    return cleaned or f"concierge-{_short_id(request_id)}"


def _gres(footprint: Footprint) -> str | None:
    """The GRES of each node, from the footprint: its count is the footprint's, never recomputed."""
    request, count = footprint.request, footprint.gpus_per_unit
    if footprint.gpu_kind is GpuKind.NONE:
        return None
    if footprint.gpu_kind is GpuKind.MIG:
        profile = request.mig_profile or ""
        if not _MIG_PROFILE.match(profile):
            raise RequestInvalid(f"the MIG profile {profile!r} is not a profile like 1g.10gb")
        return gres_option(count, profile)
    if footprint.gpu_kind is GpuKind.SHARED:
        return f"shard:{count}"
    if request.gpu_type and not _GPU_TYPE.match(request.gpu_type):
        raise RequestInvalid(
            f"the GPU type {request.gpu_type!r} cannot be used: GPU types contain only letters, "
            "digits, '_', '.' and '-'"
        )
    return gres_option(count, request.gpu_type)


def _checked_path(field: str, value: str) -> str:
    if not _PATH.match(value) or "/../" in f"{value}/":
        raise ConfigurationError(
            f"the {field} {value!r} cannot go into an sbatch script: it must be an absolute path of "
            "letters, digits, '_', '.', '-' and '/'; fix the Slurm settings (workdir) or the "
            "user's home directory"
        )
    return value


def sbatch_options(
    footprint: Footprint,
    request_id: str,
    settings: SlurmSettings,
    *,
    workdir: str | None = None,
) -> list[str]:
    """The options of the header, in order, each one `--name=value` with a checked value. Nodes,
    GPUs and the wall time come from the footprint, so the script holds exactly what was judged."""
    request = footprint.request
    if not _REQUEST_ID.match(request_id):
        raise RequestInvalid(f"the request id {request_id!r} has characters a Slurm comment cannot hold")
    if not _OUTPUT_PATTERN.match(settings.output_pattern):
        raise ConfigurationError(
            f"the Slurm output pattern {settings.output_pattern!r} may only hold letters, digits, "
            "'_', '.', '-', '/' and Slurm's %-patterns; fix slurm.output_pattern in the settings"
        )
    options = [f"--job-name={job_name(request, request_id)}"]
    partition = request.partition or settings.default_partition
    if partition:
        options.append(f"--partition={_checked_name('partition', partition)}")
    if request.account:
        options.append(f"--account={_checked_name('account', request.account)}")
    if request.qos:
        options.append(f"--qos={_checked_name('qos', request.qos)}")
    options.append(f"--nodes={int(footprint.units)}")
    gres = _gres(footprint)
    if gres:
        options.append(f"--gres={gres}")
    if footprint.time_limit_minutes is None:
        raise RequestInvalid("a Slurm job needs a wall time, and this request has none")
    options.append(f"--time={format_time_limit(int(footprint.time_limit_minutes))}")
    if request.cpus is not None:
        options.append(f"--cpus-per-task={int(request.cpus)}")
    if request.memory_gb is not None:
        options.append(f"--mem={int(request.memory_gb)}G")
    options.append(f"--output={settings.output_pattern}")
    options.append("--export=NONE")  # the job gets the person's login environment, not the bot's
    if workdir:
        options.append(f"--chdir={_checked_path('working directory', workdir)}")
    options.append(f"--comment={OUR_TAG}{request_id}")
    return options


def _checked_command(command: str | None) -> str:
    if command is None or not command.strip():
        raise RequestInvalid(
            "there is no command to run: say what the job should run, e.g. "
            '`2 A100s for 4 hours to run "python3 train.py"`'
        )
    if "\x00" in command:
        raise RequestInvalid("the command contains a NUL character, which a batch script cannot hold")
    if "\r\n" in command:
        raise RequestInvalid(
            "the command has Windows line ends (\\r\\n), which sbatch refuses; send it with plain "
            "newlines (e.g. run dos2unix on a pasted script)"
        )
    return command if command.endswith("\n") else command + "\n"


def render_sbatch_script(
    footprint: Footprint,
    identity: Identity,
    request_id: str,
    settings: SlurmSettings,
    *,
    workdir: str | None = None,
) -> str:
    """The complete script: shebang, our #SBATCH lines, the `:` barrier, the command as written.

    `identity` is who the job is for; the header does not depend on it (who submits is decided by
    the submitting side, with --uid), but the signature keeps it so a site rule could.
    """
    del identity
    command = _checked_command(footprint.request.command)
    header = [SHEBANG]
    header += [
        f"{DIRECTIVE} {option}" for option in sbatch_options(footprint, request_id, settings, workdir=workdir)
    ]
    header.append(END_OF_OPTIONS)
    return "\n".join(header) + "\n" + command


def script_warnings(request: JobRequest) -> tuple[str, ...]:
    warnings: list[str] = []
    if request.gpu_memory_gb is not None:
        warnings.append(
            f"Slurm cannot pick GPUs by memory here: {request.gpu_memory_gb} GB per GPU is not part "
            "of the job; name a GPU type that has enough memory"
        )
    if request.shared and not request.mig_profile:
        warnings.append(
            "a shared GPU is requested as a Slurm shard (--gres=shard:…); the cluster must define "
            "shard GRES, otherwise ask for a whole GPU"
        )
    if request.mig_profile:
        warnings.append(
            f"the MIG slice is requested as GRES type {request.mig_profile} (--gres=gpu:"
            f"{request.mig_profile}:…); the cluster must name its MIG GRES that way"
        )
    return tuple(warnings)


def honoured_directives(script: str) -> list[str]:
    """The #SBATCH lines sbatch will read: up to the first line that is neither blank nor a comment."""
    directives: list[str] = []
    lines: Sequence[str] = script.split("\n")
    for index, line in enumerate(lines):
        if index == 0 and line.startswith("#!"):
            continue
        if line.startswith(DIRECTIVE):
            directives.append(line)
            continue
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        break
    return directives
