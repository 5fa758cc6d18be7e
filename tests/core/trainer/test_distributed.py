"""Data-parallel training: two processes under accelerate (gloo on this CPU) train one run.

The slow tests launch `distributed_job.py` on two ranks and read back what each rank saw and
holds; the fast ones check the pieces (metric combination, sharding, launch commands, the rules
that keep a launch and its config consistent) without starting processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from tests.core.trainer.trainer_helpers import FAST
from unisd_core import distributed, launch, train
from unisd_core.callbacks import ListSink
from unisd_core.checkpoint import STATE_FILE, latest_checkpoint
from unisd_core.cli import app
from unisd_core.config import RunConfig, deep_merge

REPO = Path(__file__).resolve().parents[3]
LAUNCH_TIMEOUT_S = 600


def config(preset: str, **overrides: Any) -> dict[str, Any]:
    """The raw config of a tiny run: batch 4 over two ranks, three steps."""
    raw = deep_merge(FAST, {"train": {"batch_size": 4}, "resources": {"gpus": 2}})
    return {"preset": preset, **deep_merge(raw, overrides)}


def child_env() -> dict[str, str]:
    """Two ranks on two shared cores: one thread each (busy-waiting OpenMP threads make
    contended torch many times slower), no GPU even where there is one (both ranks would claim
    it), the repository importable for the job module, no hub access."""
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
    }


def launch_job(tmp_path: Path, runs: list[dict[str, Any]]) -> Path:
    """Train `runs` one after the other on two ranks; returns the results directory."""
    results = tmp_path / "results"
    spec = tmp_path / f"spec-{runs[0]['name']}.json"
    spec.write_text(json.dumps({"results": str(results), "runs": runs}), encoding="utf-8")
    command = launch.launch_command(
        num_processes=2,
        module="tests.core.trainer.distributed_job",
        args=[str(spec)],
        main_process_port=launch.free_port(),
    )
    done = subprocess.run(
        command,
        cwd=REPO,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=LAUNCH_TIMEOUT_S,
        check=False,
    )
    log = tmp_path / f"launch-{runs[0]['name']}.log"
    log.write_text(done.stdout + done.stderr, encoding="utf-8")
    assert done.returncode == 0, failure_lines(done.stdout + done.stderr)
    return results


def failure_lines(output: str) -> str:
    """What the ranks said about their failure (the launcher's summary alone says little)."""
    keep = ("[rank", "Error", "error", "terminate", "what()", "Exception")
    return "\n".join(line for line in output.splitlines() if any(k in line for k in keep))[-8000:]


def record(results: Path, name: str, rank: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((results / name / f"rank-{rank}.json").read_text())
    return data


def weights(results: Path, name: str, rank: int) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = torch.load(results / name / f"rank-{rank}.pt")
    return state


def losses(points: list[tuple[int, dict[str, float]]]) -> list[float]:
    return [metrics["loss/total"] for _, metrics in points]


def checkpoint_state(output: Path) -> dict[str, Any]:
    found = latest_checkpoint(output)
    assert found is not None
    state: dict[str, Any] = torch.load(found / STATE_FILE, weights_only=False)
    return state


def assert_ranks_in_sync(results: Path, name: str) -> None:
    """Both ranks end with the very same weights (and EMA teacher): DDP kept them together."""
    first, second = weights(results, name, 0), weights(results, name, 1)
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


def assert_ranks_split_each_batch(results: Path, name: str, steps: int) -> None:
    """Each rank trained on its own half of every step's prompts."""
    shards = [record(results, name, rank)["shards"] for rank in (0, 1)]
    for step in range(1, steps + 1):
        mine, theirs = shards[0][str(step)], shards[1][str(step)]
        assert len(mine) == len(theirs) == 2
        assert mine != theirs


def assert_only_rank_zero_reported(results: Path, name: str, steps: list[int]) -> None:
    zero, one = record(results, name, 0), record(results, name, 1)
    assert [step for step, _ in zero["points"]] == steps
    assert one["points"] == []
    assert zero["saves"] and not one["saves"]
    assert zero["checkpoint"] == one["checkpoint"]  # every rank learns where it is


# --- two processes -----------------------------------------------------------------------------


@pytest.mark.slow
def test_sft_on_two_processes_is_the_one_process_run_and_ssd_shares_its_samples(
    tmp_path: Path,
) -> None:
    """SFT is deterministic: a batch of 4 split over two ranks (DDP averaging their gradients,
    or FSDP reduce-scattering them over sharded weights) gives the losses and weights of a batch
    of 4 in one process. SSD samples drawn on either rank end up in every rank's cache and in
    the checkpoint."""
    no_dropout = {"model": {"lora": {"dropout": 0.0}}}
    sft = config("sft", **no_dropout)
    sharded = config("sft", **no_dropout, resources={"fsdp": True})
    ssd = config("ssd", **no_dropout)
    ssd_sharded = config("ssd", **no_dropout, resources={"fsdp": True})
    results = launch_job(
        tmp_path,
        [
            {"name": "sft", "config": sft, "output": str(tmp_path / "sft")},
            {"name": "fsdp", "config": sharded, "output": str(tmp_path / "fsdp")},
            {"name": "ssd", "config": ssd, "output": str(tmp_path / "ssd")},
            {"name": "ssd-fsdp", "config": ssd_sharded, "output": str(tmp_path / "ssd-fsdp")},
        ],
    )

    single = ListSink()
    one_process = RunConfig.model_validate({**sft, "resources": {"gpus": 1}})
    train(one_process, single, output_dir=tmp_path / "single")
    reference = checkpoint_state(tmp_path / "single")
    for name in ("sft", "fsdp"):
        zero = record(results, name, 0)
        expected = [value for _, value in single.points["loss/total"]]
        assert losses(zero["points"]) == pytest.approx(expected, rel=1e-5)
        assert [m["train/grad_norm"] for _, m in zero["points"]] == pytest.approx(
            [value for _, value in single.points["train/grad_norm"]], rel=1e-4
        )
        # The checkpoint holds whole tensors in the one-process layout, FSDP's included.
        ours = checkpoint_state(tmp_path / name)
        for key, tensor in reference["weights"].items():
            torch.testing.assert_close(ours["weights"][key], tensor, rtol=1e-4, atol=1e-6)
        for index, per_param in reference["optimizer"]["state"].items():
            torch.testing.assert_close(
                ours["optimizer"]["state"][index]["exp_avg_sq"], per_param["exp_avg_sq"]
            )

    for name in ("sft", "ssd"):
        assert_ranks_in_sync(results, name)
        assert_ranks_split_each_batch(results, name, steps=3)
        assert_only_rank_zero_reported(results, name, [1, 2, 3])
    seen = {
        i for rank in (0, 1) for s in record(results, "ssd", rank)["shards"].values() for i in s
    }
    cached = checkpoint_state(tmp_path / "ssd")["extra"]["ssd_samples"]
    assert {int(k) for k in cached} == seen
    # Under FSDP the base model samples from gathered weights: the same samples, the same run.
    assert checkpoint_state(tmp_path / "ssd-fsdp")["extra"]["ssd_samples"] == cached
    assert losses(record(results, "ssd-fsdp", 0)["points"]) == pytest.approx(
        losses(record(results, "ssd", 0)["points"]), rel=1e-5
    )


@pytest.mark.slow
def test_on_policy_lora_on_two_processes_stays_in_sync_and_resumes_exactly(
    tmp_path: Path,
) -> None:
    """UniSD* under LoRA with every component, induced contexts and generated negatives, the
    EMA adapter synced every step: ranks roll out their own shards yet hold identical weights;
    a stop asked by rank 1 alone stops both; the resumed run continues bit for bit. The same
    run with FSDP (sharded weights, gathered for rollouts and teachers) is the DDP run, and
    resumes bit for bit too, as does full fine-tuning under FSDP (student and EMA teacher both
    sharded)."""
    raw = config(
        "unisd_star",
        ema={"ref_model_sync_steps": 1},
        agreement={"context_source": "induction"},
        contrastive={"negatives": "generated"},
        train={"sample_every": 1},
    )
    sharded = deep_merge(raw, {"resources": {"fsdp": True}})
    full = config(
        "ema",
        ema={"ref_model_sync_steps": 1},
        model={"lora": {"enabled": False}},
        resources={"fsdp": True},
    )
    names = ("whole", "split", "fsdp", "fsdp-split", "full", "full-split")
    out = {name: tmp_path / name for name in names}
    results = launch_job(
        tmp_path,
        [
            {"name": "whole", "config": raw, "output": str(out["whole"])},
            {"name": "split", "config": raw, "output": str(out["split"]), "stop_after": 2},
            {"name": "fsdp", "config": sharded, "output": str(out["fsdp"])},
            {
                "name": "fsdp-split",
                "config": sharded,
                "output": str(out["fsdp-split"]),
                "stop_after": 2,
            },
            {"name": "full", "config": full, "output": str(out["full"])},
            {
                "name": "full-split",
                "config": full,
                "output": str(out["full-split"]),
                "stop_after": 2,
            },
        ],
    )
    zero = record(results, "whole", 0)
    for _, metrics in zero["points"]:
        assert all(torch.isfinite(torch.tensor(value)) for value in metrics.values()), metrics
        assert metrics["train/on_policy"] == 1.0
        assert metrics["ema/tensors_updated"] > 0
    assert_ranks_in_sync(results, "whole")
    assert_ranks_split_each_batch(results, "whole", steps=3)
    assert_only_rank_zero_reported(results, "whole", [1, 2, 3])
    samples = [
        json.loads(line) for line in (out["whole"] / "samples.jsonl").read_text().splitlines()
    ]
    assert [s["step"] for s in samples] == [1, 1, 2, 2, 3, 3]  # rank 0's two rollouts a step

    stopped = [record(results, "split", rank) for rank in (0, 1)]
    assert [r["steps_completed"] for r in stopped] == [2, 2]
    assert all(r["stopped_early"] for r in stopped)
    assert Path(stopped[0]["checkpoint"]).name == "step-000002"
    state = checkpoint_state(out["split"])
    assert len(state["extra"]["rng_by_rank"]) == 2
    trained_on = {i for r in stopped for s in r["shards"].values() for i in s}
    assert {int(k) for k in state["extra"]["generated_negatives"]} == trained_on

    # FSDP: the same rollouts (same seeds, the same weights up to rounding), the same run.
    fsdp = record(results, "fsdp", 0)
    assert losses(fsdp["points"]) == pytest.approx(losses(zero["points"]), rel=1e-3)
    drifts = [[m["ema/teacher_drift"] for _, m in r["points"]] for r in (zero, fsdp)]
    assert drifts[1] == pytest.approx(drifts[0], rel=1e-3)  # summed over shards, not one shard
    for key, tensor in weights(results, "whole", 0).items():
        torch.testing.assert_close(weights(results, "fsdp", 0)[key], tensor, rtol=1e-3, atol=1e-5)

    resumed = launch_job(
        tmp_path,
        [
            {"name": "resumed", "config": raw, "output": str(out["split"]), "resume": True},
            {
                "name": "fsdp-resumed",
                "config": sharded,
                "output": str(out["fsdp-split"]),
                "resume": True,
            },
            {
                "name": "full-resumed",
                "config": full,
                "output": str(out["full-split"]),
                "resume": True,
            },
        ],
    )
    for first, second, reference in (
        ("split", "resumed", "whole"),
        ("fsdp-split", "fsdp-resumed", "fsdp"),
        ("full-split", "full-resumed", "full"),
    ):
        stopped_points = record(results, first, 0)["points"]
        again = record(resumed, second, 0)["points"]
        assert losses(stopped_points) + losses(again) == losses(
            record(results, reference, 0)["points"]
        )
        assert_ranks_in_sync(resumed, second)
        final, expected = weights(resumed, second, 0), weights(results, reference, 0)
        for key, tensor in expected.items():
            assert torch.equal(final[key], tensor), (second, key)


@pytest.mark.slow
def test_unisd_train_launches_itself_stops_on_ctrl_c_resumes_and_evaluates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`unisd train` with resources.gpus 2 re-launches itself under accelerate (here on CPU:
    the GPU count check is told there are two). Ctrl-C after the first step stops both ranks at
    a step boundary with a checkpoint; `--resume` finishes the run; rank 0 alone writes the
    metrics, then evaluates the final checkpoint."""
    for key, value in child_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(distributed, "visible_gpus", lambda: 2)
    output = tmp_path / "run"
    steps = 40  # a run that is still going when Ctrl-C comes
    data = {"max_eval_examples": 2, "eval_max_new_tokens": 4, "eval_benchmarks": ["scienceqa"]}
    raw = config("sft", train={"max_steps": steps}, data=data)
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(raw), encoding="utf-8")
    command = ["train", str(config_file), "--output", str(output)]

    presser = threading.Thread(target=press_ctrl_c_after_a_step, args=(output / "metrics.jsonl",))
    presser.start()
    stopped = CliRunner().invoke(app, command)
    presser.join()

    assert stopped.exit_code == 0, stopped.output
    summary = json.loads((output / "summary.json").read_text())
    assert summary["stopped_early"] and 1 <= summary["steps_completed"] < steps
    assert Path(summary["checkpoint"]).name == f"step-{summary['steps_completed']:06d}"
    assert not (output / "eval").exists()

    resumed = CliRunner().invoke(app, [*command, "--resume"])

    assert resumed.exit_code == 0, resumed.output
    lines = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    trained = [line["step"] for line in lines if "loss/total" in line["metrics"]]
    assert trained == list(range(1, steps + 1))  # once each: rank 1 wrote none
    assert "eval/scienceqa/accuracy" in lines[-1]["metrics"]
    summary = json.loads((output / "summary.json").read_text())
    assert summary["steps_completed"] == steps and not summary["stopped_early"]
    assert summary["eval"] and "eval/scienceqa/accuracy" in summary["eval"]
    assert (output / "eval" / "report.json").is_file()
    assert not (output / ".stop-requested").exists()


def press_ctrl_c_after_a_step(metrics: Path) -> None:
    """SIGINT to this process once the launched run has logged a step, as a terminal's Ctrl-C
    reaches `unisd train` (its launched processes run in a session of their own)."""
    deadline = time.monotonic() + LAUNCH_TIMEOUT_S
    while time.monotonic() < deadline:
        if metrics.is_file() and metrics.read_text().strip():
            handler = signal.getsignal(signal.SIGINT)
            # Only while `unisd train` waits on its launch: a stray SIGINT would stop pytest.
            if getattr(handler, "__name__", "") == "on_interrupt":
                os.kill(os.getpid(), signal.SIGINT)
            return
        time.sleep(0.1)


# --- the pieces, in this process ------------------------------------------------------------


def test_metrics_combine_as_means_sums_and_maxima() -> None:
    combined = distributed.combine_metrics(
        [
            {"loss/total": 1.0, "_tokens": 10.0, "sys/step_s": 2.0, "only/zero": 5.0},
            {"loss/total": 3.0, "_tokens": 30.0, "sys/step_s": 1.0},
        ]
    )
    assert combined == {"loss/total": 2.0, "_tokens": 40.0, "sys/step_s": 2.0, "only/zero": 5.0}


def test_ranks_take_contiguous_shards_and_a_group_of_one_is_the_identity() -> None:
    batch = [7, 3, 9, 1]
    assert distributed.Group(rank=1, world_size=2).shard(batch) == [9, 1]
    alone = distributed.Group()
    assert alone.shard(batch) == batch
    assert alone.any(True) and not alone.any(False)
    assert alone.gather("x") == ["x"] and alone.broadcast(3) == 3
    assert alone.reduce_metrics({"_tokens": 4.0}) == {"_tokens": 4.0}
    with pytest.raises(ValueError, match="evenly"):
        distributed.Group(rank=0, world_size=2).shard([1, 2, 3])


def test_the_global_batch_must_split_over_gpus_and_micro_batches() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"train\.batch_size"):
        RunConfig.model_validate(
            {"train": {"batch_size": 6, "grad_accum": 2}, "resources": {"gpus": 2}}
        )
    RunConfig.model_validate(
        {"train": {"batch_size": 8, "grad_accum": 2}, "resources": {"gpus": 2}}
    )


def test_fsdp_needs_several_gpus() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"resources\.fsdp"):
        RunConfig.model_validate({"resources": {"fsdp": True}})
    assert RunConfig.model_validate({"resources": {"gpus": 2, "fsdp": True}}).resources.fsdp


def test_a_multi_gpu_config_outside_a_launch_says_how_to_launch_it() -> None:
    cfg = RunConfig.model_validate(config("sft"))
    with pytest.raises(ValueError, match="one process per GPU") as caught:
        train(cfg, ListSink())
    assert "accelerate.commands.launch --multi_gpu" in str(caught.value)
    assert "--num_processes 2" in str(caught.value)


def test_a_launch_must_match_the_configured_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    cfg = RunConfig.model_validate(config("sft", train={"batch_size": 4}, resources={"gpus": 4}))
    with pytest.raises(ValueError, match=r"launched as 2 processes but resources\.gpus is 4"):
        distributed.join(cfg, torch.device("cpu"))


def test_unisd_train_needs_the_gpus_it_launches_on(tmp_path: Path) -> None:
    if torch.cuda.device_count() >= 2:
        pytest.skip("this machine has the GPUs: the command would launch")
    outcome = CliRunner().invoke(
        app,
        ["train", "--preset", "sft", "--set", "resources.gpus=2", "--output", str(tmp_path)],
    )
    assert outcome.exit_code == 1
    assert "resources.gpus is 2" in outcome.output
    assert "accelerate.commands.launch --multi_gpu --num_machines 1 --num_processes 2" in (
        outcome.output
    )


def test_the_launch_is_accelerates_own_command_line() -> None:
    from accelerate.commands.launch import launch_command_parser

    command = launch.train_command(
        Path("out/config.yaml"), Path("out"), gpus=4, resume=True, main_process_port=29511
    )
    args = launch_command_parser().parse_args(command[3:])
    assert (args.multi_gpu, args.num_processes, args.main_process_port, args.module) == (
        True,
        4,
        29511,
        True,
    )
    assert args.training_script == "unisd_core.cli"
    assert args.training_script_args == ["train", "out/config.yaml", "--output", "out", "--resume"]
    with pytest.raises(ValueError, match="two or more"):
        launch.launch_command(num_processes=1, module="m", main_process_port=1)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_leaving_waits_while_a_named_thread_runs_and_not_once_it_sleeps() -> None:
    """What `_leave` relies on before the interpreter finalizes: a thread with the given name
    that is running keeps the wait going until its timeout; once it sleeps, the wait ends."""
    import ctypes
    import hashlib

    name = "unisd_test_busy"
    stop, named = threading.Event(), threading.Event()

    def busy() -> None:
        ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME: this thread's comm
        named.set()
        block = bytes(1 << 20)
        while not stop.is_set():
            hashlib.sha256(block).digest()  # runs with the GIL released
        stop.wait()

    worker = threading.Thread(target=busy, daemon=True)
    worker.start()
    named.wait(5)
    try:
        assert distributed._thread_states(Path("/proc/self/task"), name) != []
        assert not distributed._wait_until_idle(name, timeout_s=0.3)
    finally:
        stop.set()
        worker.join(5)
    idle = threading.Event()

    def sleeper() -> None:
        ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)
        idle.wait()

    parked = threading.Thread(target=sleeper, daemon=True)
    parked.start()
    try:
        assert distributed._wait_until_idle(name, timeout_s=5)
    finally:
        idle.set()
        parked.join(5)
