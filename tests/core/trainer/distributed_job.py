"""One rank of a multi-process trainer test; `test_distributed.py` starts two under accelerate.

Usage: `python -m tests.core.trainer.distributed_job SPEC.json`. The spec lists runs, trained one
after the other in the same processes (a launch costs more than a tiny run):

    {"runs": [{"name": "a", "config": {...}, "output": "DIR", "resume": false,
               "stop_after": null, "stop_rank": 1}], "results": "DIR"}

For each run every rank writes `RESULTS/NAME/rank-R.json` (what its sink received, the prompt
indices of each step it trained on, which ranks wrote checkpoints, the result) and `rank-R.pt`
(the tensors training changed, whole: under DDP both ranks must hold the same ones).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch.distributed.tensor import DTensor

from unisd_core import trainer
from unisd_core.config import RunConfig
from unisd_core.networks import Networks


class Recorder:
    """Wraps the trainer's seams to see, per rank, what it trained on and what it wrote."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.shards: dict[int, list[int]] = {}
        self.saves: list[int] = []
        self.nets: Networks | None = None
        self.points: list[tuple[int, dict[str, float]]] = []

    def install(self) -> None:
        run, build, save = (
            trainer.StepRunner.run,
            trainer.build_networks,
            trainer.ckpt.save_checkpoint,
        )
        recorder = self

        def recorded_run(
            runner: trainer.StepRunner, indices: list[int], step: int
        ) -> dict[str, float]:
            recorder.shards[step] = list(indices)
            return run(runner, indices, step)

        def recorded_build(*args: Any, **kwargs: Any) -> Networks:
            recorder.nets = build(*args, **kwargs)
            return recorder.nets

        def recorded_save(*args: Any, **kwargs: Any) -> Path:
            recorder.saves.append(int(os.environ["RANK"]))
            return save(*args, **kwargs)

        trainer.StepRunner.run = recorded_run  # type: ignore[method-assign,assignment]
        trainer.build_networks = recorded_build
        trainer.ckpt.save_checkpoint = recorded_save

    def sink(self, step: int, metrics: Mapping[str, float]) -> None:
        self.points.append((step, dict(metrics)))


def run_one(spec: dict[str, Any], results: Path, rank: int, recorder: Recorder) -> None:
    recorder.reset()
    cfg = RunConfig.model_validate(spec["config"])
    polls = {"n": 0}

    def stop() -> bool:
        # Only one rank asks to stop: the trainer must make every rank stop at the same step.
        polls["n"] += 1
        limit = spec.get("stop_after")
        return limit is not None and rank == spec.get("stop_rank", 1) and polls["n"] > limit

    output = Path(spec["output"])
    result = trainer.train(
        cfg,
        recorder.sink,
        stop,
        resume_from=output if spec.get("resume") else None,
        output_dir=output,
    )
    where = results / spec["name"]
    where.mkdir(parents=True, exist_ok=True)
    assert recorder.nets is not None
    state = recorder.nets.changing_state()
    # FSDP holds shards: gather them (every rank, same order) to compare whole tensors.
    full = {k: v.full_tensor() if isinstance(v, DTensor) else v for k, v in state.items()}
    torch.save(full, where / f"rank-{rank}.pt")
    record = {
        "points": recorder.points,
        "shards": recorder.shards,
        "saves": recorder.saves,
        "steps_completed": result.steps_completed,
        "stopped_early": result.stopped_early,
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
    }
    (where / f"rank-{rank}.json").write_text(json.dumps(record), encoding="utf-8")


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    recorder = Recorder()
    recorder.install()
    for run in spec["runs"]:
        run_one(run, Path(spec["results"]), rank, recorder)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
