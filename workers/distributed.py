"""One process of a multi-GPU run, started by `accelerate launch` (see placement.py).

The worker that claimed the run keeps the heartbeat and the final write; these processes train
(`train_and_evaluate`: every rank trains, rank 0 then evaluates). Rank 0 reports metrics; every
rank reads the cancel flag (the trainer makes them agree on when to stop). Rank 0 leaves its
outcome in `attempt-N-result.json` for the worker: status and the evaluation report's path, or
a one-line reason and a traceback file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from sqlalchemy import select

from backend.db.models import Run
from backend.db.session import session_scope
from backend.settings import get_settings
from unisd_core.config import RunConfig
from workers import failures
from workers.cancel import CancelFlag
from workers.runner import _resume_from, result_file
from workers.sinks import DbMetricSink, NullSink


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="workers.distributed")
    parser.add_argument("--run-id", type=int, required=True)
    parser.add_argument("--attempt", type=int, required=True)
    args = parser.parse_args(argv)
    settings = get_settings()
    database_url = settings.resolved_database_url
    out_dir = settings.data_dir.resolve() / "runs" / str(args.run_id)
    rank = int(os.environ.get("RANK", "0"))
    with session_scope(database_url) as session:
        raw = session.scalar(select(Run.config).where(Run.id == args.run_id))
    config = RunConfig.model_validate(raw)
    sink = (
        DbMetricSink(
            database_url,
            args.run_id,
            config.train.max_steps or 0,
            attempt=args.attempt,
            checkpoint_every=config.train.checkpoint_every,
        )
        if rank == 0
        else NullSink()
    )
    outcome: dict[str, object]
    try:
        from unisd_core.evaluation.cli import REPORT_FILE
        from unisd_core.pipeline import train_and_evaluate

        result = train_and_evaluate(
            config,
            sink,
            CancelFlag(database_url, args.run_id),
            output_dir=out_dir,
            resume_from=_resume_from(out_dir),
        )
        sink.flush()  # the evaluation's metrics came last
        outcome = {"status": "cancelled" if result.stopped_early else "succeeded"}
        if result.eval_dir is not None:
            outcome["eval_report"] = str(result.eval_dir / REPORT_FILE)
    except Exception as exc:
        failure = failures.classify(exc)
        trace = failures.write_traceback(exc, out_dir, args.attempt)
        outcome = {"status": "failed", "reason": failure.reason, "traceback": str(trace)}
    if rank == 0:
        result_file(out_dir, args.attempt).write_text(json.dumps(outcome), encoding="utf-8")
    return 0 if outcome["status"] != "failed" else 1


if __name__ == "__main__":
    sys.exit(main())
