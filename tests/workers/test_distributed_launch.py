"""A multi-GPU run end to end: the worker launches two processes under accelerate, they train
and rank 0 evaluates, and the worker stores the checkpoint and the evaluation.

On this CPU machine the two "GPUs" are two gloo processes: accelerate sets CUDA_VISIBLE_DEVICES
from the worker's GPU ids, torch sees no CUDA device, and the trainer falls back to the CPU.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from sqlalchemy import select

from backend.db.models import Artifact, Evaluation
from backend.db.session import session_scope
from tests.workers.test_runner import FAST_EVAL, events, execute, get, new_run, points


@pytest.mark.slow
def test_a_two_gpu_run_is_launched_trained_and_evaluated(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if torch.cuda.is_available():
        pytest.skip("the CPU stand-in for two GPUs; a GPU machine would use its real ones")
    # The launched processes find the run and its directory the way a deployed worker's do.
    monkeypatch.setenv("UNISD_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("UNISD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # two ranks share two cores
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run_id = new_run(
        sqlite_url,
        train={"max_steps": 2, "batch_size": 2},
        resources={"gpus": 2},
        data={**FAST_EVAL, "max_eval_examples": 2, "eval_benchmarks": ["scienceqa"]},
    )

    assert execute(sqlite_url, run_id, tmp_path, gpu_ids=["0", "1"]) == "succeeded"

    run = get(sqlite_url, run_id)
    assert (run.status, run.step) == ("succeeded", 2)
    trained = [step for key, step in points(sqlite_url, run_id) if key == "loss/total"]
    assert trained == [1, 2]  # rank 0 alone reported
    with session_scope(sqlite_url) as session:
        kinds = set(session.scalars(select(Artifact.kind).where(Artifact.run_id == run_id)))
        scores = {
            (e.benchmark, e.metric)
            for e in session.scalars(select(Evaluation).where(Evaluation.run_id == run_id))
        }
    assert {"checkpoint", "eval_report"} <= kinds
    assert ("scienceqa", "accuracy") in scores
    assert any(
        message.startswith("evaluated on scienceqa") for message in events(sqlite_url, run_id)
    )
