"""Starting a run with one process per GPU: the `accelerate launch` command, and what a launched
process reads about itself. Torch-free, so the CLI and the worker can build a launch cheaply.

A run with `resources.gpus > 1` is trained by N processes started by accelerate's launcher
(torchrun underneath), which gives each one RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
MASTER_PORT. `unisd train` re-launches itself this way and the worker launches
`workers.distributed`; both build the command here. The processes then join one process group in
`unisd_core.distributed` (NCCL on GPUs, gloo on CPU).
"""

from __future__ import annotations

import os
import shlex
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

#: A launched `unisd train` stops at the next step boundary once this file exists; the parent
#: `unisd train` creates it on Ctrl-C (the launched processes run in their own session, so the
#: terminal's SIGINT never reaches them or the launcher, which would kill them outright).
STOP_FILE_ENV = "UNISD_STOP_FILE"


def launch_command(
    *,
    num_processes: int,
    module: str,
    args: Sequence[str] = (),
    main_process_port: int,
    gpu_ids: Sequence[str] | None = None,
) -> list[str]:
    """`python -m accelerate.commands.launch ... --module MODULE ARGS`: one process per GPU.

    `--gpu_ids` pins the processes to those GPUs (accelerate sets CUDA_VISIBLE_DEVICES from it);
    without it they use the visible ones. Mixed precision and dynamo are off in accelerate's
    sense because the trainer picks its own dtype and never compiles; naming them keeps the
    launcher from warning about defaults.
    """
    if num_processes < 2:
        raise ValueError("a launch is for runs on two or more GPUs; one process needs none")
    if gpu_ids is not None and len(gpu_ids) != num_processes:
        raise ValueError(f"{num_processes} processes but {len(gpu_ids)} GPU ids: {list(gpu_ids)}")
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_machines",
        "1",
        "--num_processes",
        str(num_processes),
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
    ]
    if gpu_ids is not None:
        command += ["--gpu_ids", ",".join(gpu_ids)]
    command += ["--main_process_port", str(main_process_port), "--module", module, *args]
    return command


def train_command(
    config_file: Path, output: Path, *, gpus: int, resume: bool, main_process_port: int
) -> list[str]:
    """The launch of `unisd train CONFIG --output OUTPUT [--resume]` on `gpus` processes."""
    args = ["train", str(config_file), "--output", str(output)]
    if resume:
        args.append("--resume")
    return launch_command(
        num_processes=gpus,
        module="unisd_core.cli",
        args=args,
        main_process_port=main_process_port,
    )


def shell_line(command: Sequence[str]) -> str:
    """A command as one line a user can paste into a shell."""
    return shlex.join(command)


def train_hint(gpus: int) -> str:
    """The launch of `unisd train` as a user would type it, for messages."""
    command = train_command(
        Path("CONFIG"), Path("OUTPUT"), gpus=gpus, resume=False, main_process_port=29500
    )
    return shell_line(["python", *command[1:]])


def free_port() -> int:
    """A free local TCP port for the processes' rendezvous (one per launch, so two launches on
    one machine never collide)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def world_size() -> int:
    """Processes in this run: WORLD_SIZE as a launcher sets it, 1 when started directly."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's rank in the run (0 when started directly)."""
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    """This process's index on its machine (its GPU)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_launched() -> bool:
    """True inside a process that a launcher started as one of several."""
    return world_size() > 1


def is_main_process() -> bool:
    """Rank 0: the process that logs, writes checkpoints and evaluates."""
    return rank() == 0


def stop_file() -> Path | None:
    value = os.environ.get(STOP_FILE_ENV)
    return Path(value) if value else None


__all__ = [
    "STOP_FILE_ENV",
    "free_port",
    "is_launched",
    "is_main_process",
    "launch_command",
    "local_rank",
    "rank",
    "shell_line",
    "stop_file",
    "train_command",
    "train_hint",
    "world_size",
]
