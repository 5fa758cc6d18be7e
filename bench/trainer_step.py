"""Seconds per optimizer step and peak memory of every preset, relative to `sft` and `gkd`.

Each preset runs in its own subprocess (a clean peak-memory reading), with the same model,
batch, prompt and generation lengths. The first `--warmup` steps are not averaged. Every
distillation step generates (`train.on_policy_fraction` is forced to 1; `--keep-fraction`
keeps the presets' own, e.g. gkd's 0.5), so that every measured step does the same work.

Step time is reported with and without generation, both in wall seconds and in process CPU
seconds. On a shared machine the CPU seconds are the steadier number (other processes stretch
wall time, not the CPU time this process spends); each measured step's generation time is
subtracted from that same step.

    python bench/trainer_step.py                      # tiny model, CPU
    python bench/trainer_step.py --model builtin:smollm2-135m-instruct --steps 2 \\
        --presets sft gkd unisd_star
    python bench/trainer_step.py --device cuda --dtype bfloat16 --json out.json

Peak memory: CUDA max allocated on a GPU; on CPU the growth of the process's peak RSS over its
RSS before the model loads (an approximation that includes allocator slack).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PRESETS = (
    "sft",
    "gkd",
    "sdft",
    "opsd",
    "ssd",
    "agree",
    "ema",
    "contrast",
    "match",
    "clip",
    "unisd_star",
)


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def _config(args: argparse.Namespace) -> dict[str, Any]:
    train: dict[str, Any] = {
        "max_steps": args.warmup + args.steps,
        "batch_size": args.batch_size,
        "max_new_tokens": args.new_tokens,
        "rollout_engine": args.rollout_engine,
    }
    if not args.keep_fraction:
        train["on_policy_fraction"] = 1.0
    return {
        "preset": args.worker,
        "model": {"name_or_path": args.model, "dtype": args.dtype},
        "data": {"max_prompt_length": args.prompt_length, "max_completion_length": 4096},
        "train": train,
        "resources": {"device": args.device},
    }


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """Run one preset in this process and return its per-step timings."""
    import torch

    from unisd_core import generation, rollouts
    from unisd_core.config import RunConfig
    from unisd_core.trainer import train

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = RunConfig.model_validate(_config(args))
    # Step boundaries come from the sink (called once at the end of every step); generation
    # calls are attributed to the step they happen in. The trainer calls `generate` through the
    # module, so wrapping the module attribute sees rollouts and SSD samples alike; vLLM
    # rollouts (which never call it) are timed at their own sampler, weight push included.
    ends: list[tuple[float, float]] = []
    walls: list[float] = []
    gen = [[0.0, 0.0] for _ in range(args.warmup + args.steps + 1)]

    def timed(original: Any) -> Any:
        def run(*a: Any, **k: Any) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            out = original(*a, **k)
            step = len(ends)  # steps finished so far = index of the current one
            gen[step][0] += time.perf_counter() - wall
            gen[step][1] += time.process_time() - cpu
            return out

        return run

    def sink(step: int, metrics: Any) -> None:
        ends.append((time.perf_counter(), time.process_time()))
        walls.append(float(metrics["sys/step_s"]))

    generation.generate = timed(generation.generate)
    rollouts.VllmRollouts.sample = timed(rollouts.VllmRollouts.sample)  # type: ignore[method-assign]
    start_rss = _rss_gb()
    cuda = torch.cuda.is_available() and args.device != "cpu"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    train(cfg, sink)
    measured = range(args.warmup, len(walls))
    step_s = [walls[i] for i in measured]
    step_cpu = [ends[i][1] - ends[i - 1][1] for i in measured]
    peak = torch.cuda.max_memory_allocated() / 1e9 if cuda else _rss_gb() - start_rss
    return {
        "preset": args.worker,
        "step_s": statistics.fmean(step_s),
        "step_s_no_gen": statistics.fmean(step_s[j] - gen[i][0] for j, i in enumerate(measured)),
        "cpu_s": statistics.fmean(step_cpu),
        "cpu_s_no_gen": statistics.fmean(step_cpu[j] - gen[i][1] for j, i in enumerate(measured)),
        "peak_gb": peak,
        "lora": cfg.model.lora.enabled,
    }


def _ratio(row: dict[str, Any], key: str, ref: dict[str, Any] | None) -> str:
    return f"{row[key] / ref[key]:6.2f}" if ref and ref[key] > 0 else "     -"


def _print(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    by_name = {row["preset"]: row for row in rows}
    sft, gkd = by_name.get("sft"), by_name.get("gkd")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"model={args.model} batch={args.batch_size} prompt<={args.prompt_length} "
        f"new_tokens={args.new_tokens} steps={args.steps} after {args.warmup} warm-up "
        f"threads={args.threads or 'default'} rollouts={args.rollout_engine} on_policy_fraction="
        f"{'preset' if args.keep_fraction else 1.0}; load average {load} on {os.cpu_count()} CPUs"
    )
    print(
        f"{'preset':11s} {'lora':>4s} | {'wall s':>7s} {'x sft':>6s} {'-gen':>7s} {'x sft':>6s} "
        f"{'x gkd':>6s} | {'cpu s':>7s} {'x sft':>6s} {'-gen':>7s} {'x sft':>6s} {'x gkd':>6s} "
        f"| {'peak GB':>7s} {'x sft':>6s}"
    )
    for row in rows:
        print(
            f"{row['preset']:11s} {'yes' if row['lora'] else 'no':>4s} | "
            f"{row['step_s']:7.3f} {_ratio(row, 'step_s', sft)} "
            f"{row['step_s_no_gen']:7.3f} {_ratio(row, 'step_s_no_gen', sft)} "
            f"{_ratio(row, 'step_s_no_gen', gkd)} | "
            f"{row['cpu_s']:7.3f} {_ratio(row, 'cpu_s', sft)} "
            f"{row['cpu_s_no_gen']:7.3f} {_ratio(row, 'cpu_s_no_gen', sft)} "
            f"{_ratio(row, 'cpu_s_no_gen', gkd)} | "
            f"{row['peak_gb']:7.3f} {_ratio(row, 'peak_gb', sft)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:tiny-random")
    parser.add_argument("--presets", nargs="*", default=list(PRESETS))
    parser.add_argument("--steps", type=int, default=3, help="measured steps")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured steps first (>= 1)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--prompt-length", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--keep-fraction", action="store_true", help="presets' own on-policy share")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16"))
    parser.add_argument(
        "--rollout-engine",
        default="hf",
        choices=("hf", "vllm", "auto"),
        help="train.rollout_engine (vllm: needs the package and a GPU)",
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="torch intra-op threads (0: default)"
    )
    parser.add_argument("--json", type=Path, default=None, help="Also write the rows here.")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.warmup < 1:
        parser.error("--warmup must be >= 1 (the first step's CPU time includes setup)")

    if args.worker:
        print(json.dumps(worker(args)))
        return

    rows = []
    for preset in args.presets:
        command = [sys.executable, __file__, "--worker", preset, *sys.argv[1:]]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{preset}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"  measured {preset}", file=sys.stderr)
    _print(rows, args)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
