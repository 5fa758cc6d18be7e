"""Seconds per optimizer step and peak memory of every preset, relative to `sft`.

Each preset runs in its own subprocess (a clean peak-memory reading), with the same model,
batch, prompt and generation lengths. Step time is reported with and without on-policy
generation (`sys/generation_s`); the first step is a warm-up and is not averaged.

    python bench/trainer_step.py                      # tiny model, CPU
    python bench/trainer_step.py --model builtin:smollm2-135m-instruct --steps 4
    python bench/trainer_step.py --device cuda --dtype bfloat16 --json out.json

Peak memory: CUDA max allocated on a GPU; on CPU the growth of the process's peak RSS over its
RSS before the model loads (an approximation that includes allocator slack).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
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


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """Run one preset in this process and return its timings."""
    import torch

    from unisd_core.callbacks import ListSink
    from unisd_core.config import RunConfig
    from unisd_core.trainer import train

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = RunConfig.model_validate(
        {
            "preset": args.worker,
            "model": {"name_or_path": args.model, "dtype": args.dtype},
            "data": {"max_prompt_length": args.prompt_length, "max_completion_length": 4096},
            "train": {
                "max_steps": args.steps,
                "batch_size": args.batch_size,
                "max_new_tokens": args.new_tokens,
            },
            "resources": {"device": args.device},
        }
    )
    start_rss = _rss_gb()
    cuda = torch.cuda.is_available() and args.device != "cpu"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    sink = ListSink()
    train(cfg, sink)
    steps = [v for _, v in sink.points["sys/step_s"]][1:] or [
        v for _, v in sink.points["sys/step_s"]
    ]
    gens = [v for _, v in sink.points.get("sys/generation_s", [])][1:]
    step_s = sum(steps) / len(steps)
    gen_s = sum(gens) / len(gens) if gens else 0.0
    peak = torch.cuda.max_memory_allocated() / 1e9 if cuda else _rss_gb() - start_rss
    return {
        "preset": args.worker,
        "step_s": step_s,
        "step_s_no_gen": step_s - gen_s,
        "peak_gb": peak,
        "lora": cfg.model.lora.enabled,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:tiny-random")
    parser.add_argument("--presets", nargs="*", default=list(PRESETS))
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--prompt-length", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16"))
    parser.add_argument(
        "--threads", type=int, default=0, help="torch intra-op threads (0: default)"
    )
    parser.add_argument("--json", type=Path, default=None, help="Also write the rows here.")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

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

    by_name = {row["preset"]: row for row in rows}
    sft, gkd = by_name.get("sft"), by_name.get("gkd")
    print(
        f"model={args.model} batch={args.batch_size} prompt<={args.prompt_length} "
        f"new_tokens={args.new_tokens} steps={args.steps} (first step not averaged)"
    )
    header = (
        f"{'preset':11s} {'s/step':>8s} {'x sft':>6s} {'s/step-gen':>10s} {'x sft':>6s} "
        f"{'x gkd':>6s} {'peak GB':>8s} {'x sft':>6s}"
    )
    print(header)
    for row in rows:

        def ratio(key: str, ref: dict[str, Any] | None, r: dict[str, Any] = row) -> str:
            return f"{r[key] / ref[key]:6.2f}" if ref and ref[key] > 0 else "     -"

        print(
            f"{row['preset']:11s} {row['step_s']:8.3f} {ratio('step_s', sft)} "
            f"{row['step_s_no_gen']:10.3f} {ratio('step_s_no_gen', sft)} "
            f"{ratio('step_s_no_gen', gkd)} {row['peak_gb']:8.3f} {ratio('peak_gb', sft)}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
