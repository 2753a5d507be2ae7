"""The Slurm backend: GPU requests as sbatch jobs, over the Slurm command-line clients.

Modules, each small: `runner` (running commands safely, counting them), `cli_errors` (what a
failure means), `script` (the sbatch script), `gres`/`hostlist`/`durations` (Slurm's spellings),
`json_formats` (squeue --json across versions), `capacity` (sinfo → GPU pools), `reasons` (pending
codes in plain words), `alternatives`/`explanations`/`limits` (what would start sooner, and why it
waits), `accounts` (Unix users), `backend` (the Backend protocol on top). `rest` is the other
transport: the same commands as slurmrestd requests (`rest_shapes`: its documents per API
version). Importing this package imports none of them: `settings` is read by every command that
builds `Settings`.
"""
