"""Run a template's cells in this process, one after another, and resume where it stopped.

Each cell trains and evaluates into ``ROOT/runs/<method>-<benchmark>-s<seed>/`` (config.yaml,
metrics.jsonl, checkpoints/, eval/) and is marked finished by ``cell.json``. Re-running the same
command skips finished cells, resumes a cell's training from its last checkpoint and its
evaluation from the items already scored. ``ROOT/options.json`` pins the template options: a
different set of options in the same folder is refused rather than mixed into one table.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from unisd_core.callbacks import JsonlSink
from unisd_core.config import build_config
from unisd_core.replication.collect import CELL_FILE, collect_local, read_cell
from unisd_core.templates import PaperTableOptions, TemplateRun, paper_table

OPTIONS_FILE = "options.json"
TABLE_FILE = "runs.csv"
CLAIM_FILE = "claimed-by.pid"


class ReplicationSetupError(ValueError):
    """The folder cannot take this replication: the message says why."""


def cell_dir(root: Path, run: TemplateRun) -> Path:
    return root / "runs" / f"{run.method}-{run.benchmark}-s{run.seed}"


def pin_options(root: Path, options: PaperTableOptions) -> None:
    path = root / OPTIONS_FILE
    wanted = options.model_dump(mode="json")
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved != wanted:
            changed = sorted(
                k for k in wanted.keys() | saved.keys() if saved.get(k) != wanted.get(k)
            )
            raise ReplicationSetupError(
                f"{root} holds a replication with other options (differs in {', '.join(changed)});"
                " choose another folder"
            )
        return
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(wanted, indent=2), encoding="utf-8")


def claim(run_dir: Path) -> bool:
    """Take a cell for this process; False while another live process holds it.

    Processes sharing a folder (shards, or a second invocation) never run one cell twice; a
    claim left by a process that died is taken over.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / CLAIM_FILE
    for _ in range(2):
        try:
            handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                holder = int(path.read_text(encoding="utf-8") or 0)
            except (OSError, ValueError):
                holder = 0
            if holder and holder != os.getpid() and _alive(holder):
                return False
            path.unlink(missing_ok=True)  # a dead holder's claim
            continue
        os.write(handle, str(os.getpid()).encode())
        os.close(handle)
        return True
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_cell(root: Path, run: TemplateRun) -> dict[str, object]:
    """Train and evaluate one cell (resuming what an interrupted attempt left); its record."""
    from unisd_core.checkpoint import latest_checkpoint
    from unisd_core.pipeline import train_and_evaluate

    out = cell_dir(root, run)
    out.mkdir(parents=True, exist_ok=True)
    config = build_config(run.config)
    resume = out if latest_checkpoint(out) is not None else None
    started = time.monotonic()
    result = train_and_evaluate(
        config, JsonlSink(out / "metrics.jsonl"), output_dir=out, resume_from=resume
    )
    total = time.monotonic() - started
    eval_seconds = float((result.eval_report or {}).get("seconds", 0.0))
    record: dict[str, object] = {
        "method": run.method,
        "benchmark": run.benchmark,
        "seed": run.seed,
        "steps": result.train.steps_completed,
        "train_seconds": round(total - eval_seconds, 2),
        "eval_seconds": round(eval_seconds, 2),
        "finished": result.eval_report is not None,
    }
    (out / CELL_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
    (out / CLAIM_FILE).unlink(missing_ok=True)
    return record


def run_local(
    options: PaperTableOptions,
    root: Path,
    *,
    shard: tuple[int, int] = (1, 1),
    seed_major: bool = False,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Run every unfinished cell of the template and write ``ROOT/runs.csv``; return the table.

    ``shard=(i, n)`` runs only every n-th cell starting at the i-th, so n processes (e.g. one
    per CPU core) can share one folder; each cell has its own subfolder. ``seed_major`` runs
    every method on the first seed before any method on the second (a budget that runs out
    leaves complete rows with fewer seeds rather than missing rows).
    """
    part, parts = shard
    if not 1 <= part <= parts:
        raise ReplicationSetupError(f"shard {part}/{parts}: expected 1 <= i <= n")
    pin_options(root, options)
    runs = paper_table(options)
    if seed_major:
        runs = sorted(runs, key=lambda r: options.seed_list.index(r.seed))  # stable: keeps rows
    for index, run in enumerate(runs, start=1):
        if (index - 1) % parts != part - 1:
            continue
        where = f"[{index}/{len(runs)}] {run.label} seed {run.seed}"
        if read_cell(cell_dir(root, run)) is not None:
            log(f"{where}: done earlier")
            continue
        if not claim(cell_dir(root, run)):
            log(f"{where}: running in another process")
            continue
        log(f"{where}: training and evaluating")
        record = run_cell(root, run)
        log(
            f"{where}: {record['steps']} steps in {record['train_seconds']} s, "
            f"evaluated in {record['eval_seconds']} s"
        )
    table, _ = collect_local(root)
    table.to_csv(root / TABLE_FILE, index=False)
    return table
