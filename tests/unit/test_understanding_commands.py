"""Finding the command and taking it out of the request (bot/understanding/commands.py)."""

from __future__ import annotations

import pytest

from bot.understanding.commands import split_command


@pytest.mark.parametrize(
    ("text", "command"),
    [
        # quoted or backticked: verbatim, quotes removed
        (
            "run `torchrun --nproc_per_node=8 pretrain.py` on 8 H100s",
            "torchrun --nproc_per_node=8 pretrain.py",
        ),
        ('run "python eval.py --split test" on a T4', "python eval.py --split test"),
        ("run 'bash -c \"echo hi\"' on a gpu", 'bash -c "echo hi"'),
        ("```bash\npython a.py\npython b.py\n``` on 2 gpus", "python a.py\npython b.py"),
        ("run \u201cpython x.py\u201d please", "python x.py"),
        # unquoted: from a recognisable head to where the request resumes
        ("one H100 for 2h please: python finetune.py --lr 3e-4", "python finetune.py --lr 3e-4"),
        ("queue python eval.py with 1 T4, 20 min", "python eval.py"),
        ("run python x.py with one gpu for 1.5 hours", "python x.py"),
        ("A100 80GB x2 for 6h: python -m train --config big.yaml", "python -m train --config big.yaml"),
        ("sbatch 2 v100 gpus, 30 minutes, run ./smoke.sh", "./smoke.sh"),
        ("job name x, 8 a100, deepspeed sft.py", "deepspeed sft.py"),
        ("give me a gpu for an hour to run nvidia-smi", "nvidia-smi"),
        ("run my_tool --input data.csv on a V100", "my_tool --input data.csv"),
        ("to run python a.py I need 3 gpus", "python a.py"),
        ("Reserve 2 x RTX 4090 for 8 hours (python diffusion.py)", "python diffusion.py"),
        ("CUDA_VISIBLE_DEVICES=0 python x.py on 1 gpu", "CUDA_VISIBLE_DEVICES=0 python x.py"),
        ("1 gpu: python x.py 4 gpus", "python x.py"),
        ("run python train.py.", "python train.py"),
        ("--time=00:45:00 one v100 ./check.sh", "./check.sh"),
        ("2 L40 for 1 hour, python l40.py", "python l40.py"),
        ("partition=hopper, python bench.py", "python bench.py"),
        ("run python -c 'import torch' on 1 gpu", "python -c 'import torch'"),
        ('python x.py --name "hello world" on 2 gpus', 'python x.py --name "hello world"'),
        ("papermill report.ipynb out.ipynb on a T4", "papermill report.ipynb out.ipynb"),
        ("run hostname on 1 gpu", "hostname"),
        ("run `nvidia-smi` on 1 gpu", "nvidia-smi"),
        # a one-line fence has no language tag: its first word is the program
        ("```python train.py --epochs 50``` on 1 gpu", "python train.py --epochs 50"),
        ("1 gpu: ```bash run.sh```", "bash run.sh"),
        ("```sh\n./a.sh\n```", "./a.sh"),
        # the linking word after "command" is not the program
        ("1 gpu, command is python x.py", "python x.py"),
        ("the cmd would be my_tool --fast, on a T4", "my_tool --fast"),
        ("command: sweep_runner --n 3 with 2 gpus", "sweep_runner --n 3"),
        ("1 gpu, cmd=python x.py", "python x.py"),
        # every line of a command of several lines, up to the line that is no command
        (
            "2 A100s for 4h, run:\npython prep.py\npython train.py -e 3",
            "python prep.py\npython train.py -e 3",
        ),
        (
            "1 gpu:\ncd /data\nsource venv/bin/activate\n./go.sh",
            "cd /data\nsource venv/bin/activate\n./go.sh",
        ),
        ("python a.py \\\n  --lr 3 &&\n  echo done\nthanks", "python a.py \\\n  --lr 3 &&\n  echo done"),
        ("python x.py\nfor 2 hours on 1 gpu", "python x.py"),
        # quoted commands one after another are the lines of one
        ("1 A100: `python eval.py` then `python report.py`", "python eval.py\npython report.py"),
        ("run 'a.sh' and 'b.sh', 1 gpu", "a.sh\nb.sh"),
        ("run `python x.py` on 2 gpus named `nightly`", "python x.py"),  # a value, not a line
    ],
)
def test_finds_the_command(text: str, command: str) -> None:
    assert split_command(text).command == command


@pytest.mark.parametrize(
    "text",
    [
        "deploy vllm with meta-llama/Llama-3.2-3B-Instruct on kubernetes, 1 gpu",
        "run nvidia/cuda:12.4.1-base-ubuntu22.04 on kubernetes with 1 gpu",
        "run a job on 2 gpus for an hour",
        "I need 4 A100s for 8 hours",
        "why isn't my deployment vllm-mistral running?",
        'named "my-run" with 1 gpu',
        "serve `org/Model-7B` on 1 gpu",  # a quoted model id is a value
    ],
)
def test_no_command_is_invented(text: str) -> None:
    assert split_command(text).command is None


def test_the_command_is_blanked_and_positions_kept() -> None:
    text = "run `torchrun --nproc_per_node=8 pretrain.py` on 8 H100s"
    split = split_command(text)
    assert len(split.remainder) == len(text)
    assert "nproc" not in split.remainder
    assert split.remainder.endswith("on 8 H100s")


def test_a_quoted_label_value_is_unquoted_for_the_readers_not_taken() -> None:
    split = split_command("job named 'llama-sft' with 1 gpu: python x.py")
    assert split.command == "python x.py"
    assert "llama-sft" in split.remainder and "'" not in split.remainder


def test_a_command_never_runs_past_the_line() -> None:
    split = split_command("python x.py\n#SBATCH --uid=0")
    assert split.command == "python x.py"
    assert "#SBATCH" in split.remainder
