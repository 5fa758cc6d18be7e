"""Where a run executes: which queues a worker consumes, which GPUs it owns, how it launches.

A worker owns a fixed set of GPUs (`unisd worker --gpus 0,1` -> CUDA_VISIBLE_DEVICES=0,1) and
executes one run at a time. A run that needs one GPU goes to queue `gpu`; a run that needs N > 1
goes to `gpu-xN`, which only workers owning N GPUs consume, and is launched with `accelerate`.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

from backend.queue import gpus_of_queue, is_known_queue, multi_gpu_queue
from unisd_core import launch

#: Libraries whose versions decide whether a run can be reproduced.
RECORDED_LIBRARIES = ("torch", "transformers", "peft", "accelerate", "celery", "unisd-studio")


class PlacementError(ValueError):
    """A worker was asked to consume queues or GPUs it cannot serve."""


def parse_gpu_ids(text: str) -> list[str]:
    """`"0,1"` -> `["0", "1"]`; ids are kept as strings (CUDA also accepts UUIDs)."""
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids:
        raise PlacementError("--gpus needs at least one GPU id, e.g. --gpus 0 or --gpus 0,1")
    if len(set(ids)) != len(ids):
        raise PlacementError(f"--gpus lists a GPU twice: {text!r}")
    return ids


def default_queues(gpu_ids: list[str] | None) -> list[str]:
    """CPU-only worker: both classes (the embedded default). GPU worker: its own size class."""
    if not gpu_ids:
        return ["cpu", "gpu"]
    return ["gpu"] if len(gpu_ids) == 1 else [multi_gpu_queue(len(gpu_ids))]


def check_queues(names: list[str], gpu_ids: list[str] | None) -> list[str]:
    """Reject unknown queues, and GPU queues asking for more GPUs than the worker owns."""
    if not names:
        raise PlacementError("no queue given")
    unknown = [name for name in names if not is_known_queue(name)]
    if unknown:
        raise PlacementError(
            f"unknown queue(s) {unknown}; choose from cpu, gpu, gpu-x2, gpu-x4, ... (gpu-xN)"
        )
    owned = len(gpu_ids) if gpu_ids else 0
    for name in names:
        needed = gpus_of_queue(name)
        if needed > 1 and needed > owned:
            raise PlacementError(f"queue {name} runs need {needed} GPUs; this worker owns {owned}")
    return names


def visible_gpu_ids() -> list[str]:
    """The GPUs this process may use, as the CUDA runtime sees them (empty: CPU only)."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return [part.strip() for part in value.split(",") if part.strip() and part.strip() != "-1"]


def accelerate_command(
    *, run_id: int, attempt: int, gpu_ids: list[str], main_process_port: int
) -> list[str]:
    """The command that trains one run on several GPUs: one process per GPU under accelerate.

    `--gpu_ids` repeats the worker's own GPUs, so accelerate's CUDA_VISIBLE_DEVICES matches the
    one the worker was started with; the port is picked per run so two launches never collide.
    """
    if len(gpu_ids) < 2:
        raise PlacementError("accelerate launches are for runs on two or more GPUs")
    return launch.launch_command(
        num_processes=len(gpu_ids),
        module="workers.distributed",
        args=["--run-id", str(run_id), "--attempt", str(attempt)],
        main_process_port=main_process_port,
        gpu_ids=gpu_ids,
    )


def free_local_port() -> int:
    return launch.free_port()


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in RECORDED_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_sha(start: Path | None = None) -> str | None:
    """The commit of the checkout the code runs from, when it runs from one."""
    directory = start or Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and len(sha) == 40 else None


def execution_env(gpu_ids: list[str]) -> dict[str, object]:
    """What the run row records about where and with what it ran."""
    return {
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "gpu_ids": gpu_ids,
        "versions": library_versions(),
        "git_sha": git_sha(),
    }
