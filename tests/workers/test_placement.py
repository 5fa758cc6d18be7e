"""Queues, GPU ownership, the accelerate command and what a run records about its host."""

from __future__ import annotations

import sys

import pytest

from backend.queue import gpus_of_queue, is_known_queue, queue_for
from unisd_core.config import RunConfig
from workers import placement
from workers.placement import PlacementError


@pytest.mark.parametrize(
    ("resources", "queue"),
    [
        ({}, "cpu"),  # device auto: the deployment's default queue
        ({"device": "cpu"}, "cpu"),
        ({"device": "cuda"}, "gpu"),
        ({"device": "cuda", "gpus": 2}, "gpu-x2"),
        ({"gpus": 8}, "gpu-x8"),
    ],
)
def test_a_runs_queue_follows_its_resources(resources: dict[str, object], queue: str) -> None:
    # A batch every GPU count here divides: the global batch is split over the GPUs.
    config = RunConfig.model_validate({"resources": resources, "train": {"batch_size": 8}})
    assert queue_for(config, "cpu") == queue


def test_queue_names() -> None:
    assert all(is_known_queue(q) for q in ("cpu", "gpu", "gpu-x2", "gpu-x64"))
    assert not any(is_known_queue(q) for q in ("gpu-x1", "gpu-x65", "tpu", "GPU", "gpu-x"))
    assert [gpus_of_queue(q) for q in ("cpu", "gpu", "gpu-x4")] == [0, 1, 4]


def test_worker_queues_follow_the_gpus_it_owns() -> None:
    assert placement.default_queues(None) == ["cpu", "gpu"]
    assert placement.default_queues(["0"]) == ["gpu"]
    assert placement.default_queues(["2", "3"]) == ["gpu-x2"]
    assert placement.check_queues(["gpu-x2", "gpu"], ["0", "1"]) == ["gpu-x2", "gpu"]
    with pytest.raises(PlacementError, match="unknown queue"):
        placement.check_queues(["gpu", "fast"], ["0"])
    with pytest.raises(PlacementError, match="need 4 GPUs; this worker owns 2"):
        placement.check_queues(["gpu-x4"], ["0", "1"])
    with pytest.raises(PlacementError):
        placement.check_queues([], None)


def test_gpu_ids_are_parsed_strictly() -> None:
    assert placement.parse_gpu_ids(" 0, 1 ") == ["0", "1"]
    with pytest.raises(PlacementError, match="twice"):
        placement.parse_gpu_ids("0,0")
    with pytest.raises(PlacementError):
        placement.parse_gpu_ids(",")


def test_visible_gpus_come_from_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert placement.visible_gpu_ids() == ["2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert placement.visible_gpu_ids() == []


def test_a_multi_gpu_run_is_launched_with_accelerate() -> None:
    command = placement.accelerate_command(
        run_id=7, attempt=2, gpu_ids=["2", "3"], main_process_port=29517
    )
    assert command[:3] == [sys.executable, "-m", "accelerate.commands.launch"]

    def flag(name: str) -> str:
        return command[command.index(name) + 1]

    assert "--multi_gpu" in command
    assert flag("--num_processes") == "2" and flag("--num_machines") == "1"
    assert flag("--gpu_ids") == "2,3" and flag("--main_process_port") == "29517"
    assert command[-6:] == ["--module", "workers.distributed", "--run-id", "7", "--attempt", "2"]
    with pytest.raises(PlacementError):
        placement.accelerate_command(run_id=7, attempt=1, gpu_ids=["0"], main_process_port=1)


def test_accelerate_accepts_the_command_line() -> None:
    """The flags are accelerate's own: its parser reads them back unchanged."""
    from accelerate.commands.launch import launch_command_parser

    command = placement.accelerate_command(
        run_id=3, attempt=1, gpu_ids=["0", "1"], main_process_port=29500
    )
    args = launch_command_parser().parse_args(command[3:])
    assert (args.multi_gpu, args.num_processes, args.gpu_ids, args.module) == (
        True,
        2,
        "0,1",
        True,
    )
    assert args.training_script == "workers.distributed"
    assert args.training_script_args == ["--run-id", "3", "--attempt", "1"]


def test_the_execution_env_names_host_gpus_and_versions() -> None:
    env = placement.execution_env(["0"])
    assert env["hostname"] and env["gpu_ids"] == ["0"]
    versions = env["versions"]
    assert isinstance(versions, dict)
    assert {"python", "torch", "transformers", "celery", "unisd-studio"} <= set(versions)
    sha = env["git_sha"]
    assert sha is None or (isinstance(sha, str) and len(sha) == 40)
