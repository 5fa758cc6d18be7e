"""Our `gkd` preset against TRL's GKD trainer, side by side: step time and peak memory.

Both trainers run GKD in self-distillation mode (the teacher is the same model as the student)
on the same weights, the same prompts in the same order, and the same settings: fully on-policy
(TRL `lmbda=1.0`, ours `train.on_policy_fraction=1.0`), sampling at temperature 1 and top-p 1,
generalised JSD with beta/alpha 0.5, AdamW at a constant learning rate, fp32, no gradient
checkpointing, no dropout (TRL's GKD default; with `--lora` both use our LoRA rank, alpha and
targets). One difference is the method's and stays: our teacher is shown the gold-context prompt
(method.md 1), TRL's teacher sees the student's prompt. Rollouts are sampled by each side's own
sampler: ours is the project's KV-cached decoding loop (`unisd_core.generation`), TRL's is HF
`generate`; both forward the same model one token at a time.

    .venv/bin/python bench/vs_trl.py --model builtin:tiny-random
    OMP_NUM_THREADS=2 .venv/bin/python bench/vs_trl.py --model builtin:smollm2-135m-instruct \\
        --threads 2 --steps 3
    .venv/bin/python bench/vs_trl.py --lora       # both sides train LoRA adapters

TRL is not a project dependency. It lives in a bench-only virtual environment, run as a
subprocess with its own interpreter (`--trl-python`, default /tmp/trl-venv/bin/python):

    python3 -m venv /tmp/trl-venv
    /tmp/trl-venv/bin/pip install torch==2.13.0     # first: else pip pulls a CUDA build
    /tmp/trl-venv/bin/pip install 'trl==1.16.*' transformers==5.24.0 peft accelerate datasets

Each trainer runs in its own subprocess, so peak memory readings never mix. Both processes are
started together and take turns one optimizer step at a time (alternating which goes first), so
a shared machine's load swings hit both alike and they never compete with each other. Measured
per step after `--warmup` unmeasured steps: wall seconds of the whole optimizer step and of
generation (the rest of the step is forward student + teacher, loss, backward, optimizer), the
same in process CPU seconds (steadier than wall time on a shared machine), and the completion
length. By default every rollout is exactly `--new-tokens` long on both sides (EOS is masked
until then), so both trainers score the same number of tokens: with EOS allowed the two
samplers' different random streams give different lengths, hence different work
(`--natural-length`). Peak memory is the growth of the process's peak RSS (getrusage maxrss)
over its RSS once the libraries are imported, before the model loads; it includes allocator
slack on both sides.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TRL_PYTHON = "/tmp/trl-venv/bin/python"
TRL_INSTALL_HINT = (
    "python3 -m venv /tmp/trl-venv && /tmp/trl-venv/bin/pip install torch==2.13.0 && "
    "/tmp/trl-venv/bin/pip install 'trl==1.16.*' transformers==5.24.0 peft accelerate datasets"
)
#: Same on both sides; only timing matters, but a warm-up-free constant schedule keeps the
#: first measured step an ordinary one.
LEARNING_RATE = 2e-5
GKD_BETA = 0.5


def rss_now_gb() -> float:
    """Current resident set size (Linux /proc; falls back to the peak elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e9
    except OSError:
        return peak_rss_gb()


def peak_rss_gb() -> float:
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e9


class Clock:
    """Wall and process-CPU time of a span."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def since(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


# --- turn taking: a worker waits for "go" before each step; the parent hands out the turns ------

READY, GO, RESULT = "@@ready", "@@go", "@@result "


def wait_for_turn() -> None:
    """Called by a worker before each step: say so, then block until the parent says go."""
    print(READY, flush=True)
    if sys.stdin.readline().strip() != GO:
        raise SystemExit("vs_trl worker: the parent went away")


def report(result: dict[str, Any]) -> None:
    print(RESULT + json.dumps(result), flush=True)


# --- the parent: prepare identical inputs, run both workers, print the table ------------------


def local_model_dir(name: str, cache: Path) -> Path:
    """A folder `from_pretrained` can read, resolving built-in names the way the project does."""
    if Path(name).is_dir():
        return Path(name)
    from unisd_core import modeling
    from unisd_core.config import ModelConfig

    if name == "builtin:smollm2-135m-instruct":
        # The project's resolver: converts the packaged GGUF once, then reuses the cached folder.
        return modeling._smollm2_dir()
    if name == "builtin:tiny-random":
        target = cache / "tiny-random"
        if not (target / "config.json").is_file():
            loaded = modeling.load(ModelConfig(name_or_path=name))
            loaded.model.save_pretrained(target)
            loaded.tokenizer.save_pretrained(target)
        return target
    raise SystemExit(f"--model {name!r}: give a built-in name or a local model folder")


def build_spec(args: argparse.Namespace, model_dir: Path) -> dict[str, Any]:
    """Prompt ids per step exactly as our trainer will build them, for TRL to consume too."""
    from unisd_core.config import RunConfig
    from unisd_core.data import load_examples
    from unisd_core.data.prompts import gold_completion, student_messages
    from unisd_core.generation import encode_chat
    from unisd_core.modeling import load_tokenizer
    from unisd_core.trainer import batch_order

    cfg = RunConfig.model_validate(ours_config(args))
    tokenizer = load_tokenizer(cfg.model)
    examples = load_examples(
        cfg.data.benchmark,
        source=cfg.data.source,
        split=cfg.data.train_split,
        seed=cfg.train.seed,
        limit=cfg.data.max_train_examples,
    )
    total = args.warmup + args.steps
    order = batch_order(len(examples), args.batch_size, total, cfg.train.seed)
    batches = []
    for indices in order:
        batch = []
        for i in indices:
            prompt = encode_chat(
                tokenizer, student_messages(examples[i]), max_length=args.prompt_length
            )
            gold = tokenizer(gold_completion(examples[i]), add_special_tokens=False)["input_ids"]
            batch.append({"prompt": prompt, "gold": list(gold)[: args.new_tokens]})
        batches.append(batch)
    return {
        "model_dir": str(model_dir),
        "batches": batches,
        "pad_id": int(tokenizer.pad_token_id),
        "seed": cfg.train.seed,
        "threads": args.threads,
        "warmup": args.warmup,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "new_tokens": args.new_tokens,
        "lr": LEARNING_RATE,
        "lora": lora_settings(cfg) if args.lora else None,
        "full_length": not args.natural_length,
    }


def lora_settings(cfg: Any) -> dict[str, Any]:
    lora = cfg.model.lora
    return {
        "r": lora.r,
        "alpha": lora.alpha,
        "dropout": lora.dropout,
        "target_modules": list(lora.target_modules),
    }


def ours_config(args: argparse.Namespace) -> dict[str, Any]:
    """The `gkd` preset, set to match TRL's run (see the module docstring)."""
    return {
        "preset": "gkd",
        "model": {
            "name_or_path": args.model,
            "dtype": "float32",
            # TRL's GKD zeroes every dropout (its `disable_dropout` default), LoRA's included.
            "lora": {"enabled": bool(args.lora), "dropout": 0.0},
        },
        "data": {
            "max_prompt_length": args.prompt_length,
            "max_completion_length": args.new_tokens,
        },
        "train": {
            "max_steps": args.warmup + args.steps,
            "batch_size": args.batch_size,
            "max_new_tokens": args.new_tokens,
            "on_policy_fraction": 1.0,
            "temperature": 1.0,
            "top_p": 1.0,
            "lr": LEARNING_RATE,
            "schedule": "constant",
            "warmup_ratio": 0.0,
        },
        "divergence": {"alpha": GKD_BETA, "temperature": 1.0},
        "resources": {"device": "cpu"},
    }


class Worker:
    """One trainer in its own process, driven through its stdin/stdout (see `wait_for_turn`)."""

    def __init__(self, python: str, side: str, spec_path: Path, args: argparse.Namespace) -> None:
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), HF_HUB_OFFLINE="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        command = [python, __file__, "--worker", side, "--spec", str(spec_path)]
        if side == "ours":
            command += ["--ours-config", json.dumps(ours_config(args))]
        self.side = side
        # stderr, read back only on failure; closed with the process (at exit)
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
        )

    def _line(self) -> str:
        """The next protocol line (trainers print their own logs too: those are skipped)."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("@@"):
                return line.rstrip("\n")
        self.process.wait()
        self.log.seek(0)
        raise SystemExit(f"{self.side} worker failed:\n{self.log.read()[-4000:]}")

    def wait_ready(self) -> None:
        if self._line() != READY:
            raise SystemExit(f"{self.side} worker: unexpected protocol line")

    def run_step(self) -> None:
        """Let the worker run one step; returns when it is ready for the next (or done)."""
        assert self.process.stdin is not None
        self.process.stdin.write(GO + "\n")
        self.process.stdin.flush()
        self.pending = self._line()

    def result(self) -> dict[str, Any]:
        line = self.pending
        if not line.startswith(RESULT):
            raise SystemExit(f"{self.side} worker: expected its result, got {line!r}")
        self.process.wait()
        return json.loads(line[len(RESULT) :])


def run_side_by_side(workers: list[Worker], steps: int) -> None:
    """Every worker loads its model, then they take turns, one step each, alternating order."""
    for worker in workers:
        worker.wait_ready()
    for step in range(steps):
        for worker in workers if step % 2 == 0 else workers[::-1]:
            worker.run_step()
            if step < steps - 1 and worker.pending != READY:
                raise SystemExit(f"{worker.side} worker: expected ready, got {worker.pending!r}")


def summarise(result: dict[str, Any]) -> dict[str, float]:
    steps = result["steps"]

    def mean(key: str) -> float:
        return statistics.fmean(step[key] for step in steps)

    return {
        "step_s": mean("step_s"),
        "gen_s": mean("gen_s"),
        "rest_s": mean("step_s") - mean("gen_s"),
        "step_cpu_s": mean("step_cpu_s"),
        "rest_cpu_s": mean("step_cpu_s") - mean("gen_cpu_s"),
        "completion_len": mean("completion_len"),
        "peak_gb": result["peak_gb"],
        "peak_abs_gb": result["peak_abs_gb"],
    }


def print_table(ours: dict[str, float], trl: dict[str, float], args: argparse.Namespace) -> None:
    rows = [
        ("step, no generation (s)", "rest_s", "<= 0.6"),
        ("step, with generation (s)", "step_s", "<= 0.8"),
        ("generation (s)", "gen_s", ""),
        ("step, no generation (CPU s)", "rest_cpu_s", ""),
        ("step, with generation (CPU s)", "step_cpu_s", ""),
        ("peak memory, RSS growth (GB)", "peak_gb", "<= 1.0"),
        ("peak RSS, absolute (GB)", "peak_abs_gb", ""),
        ("completion length (tokens)", "completion_len", ""),
    ]
    print(
        f"model={args.model} lora={args.lora} batch={args.batch_size} "
        f"prompt<={args.prompt_length} new_tokens={args.new_tokens} threads={args.threads} "
        f"steps={args.steps} after {args.warmup} warm-up; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs"
    )
    print(f"{'':32s} {'ours':>9s} {'TRL':>9s} {'ours/TRL':>9s} {'target':>7s}")
    for label, key, target in rows:
        ratio = ours[key] / trl[key] if trl[key] > 0 else float("nan")
        print(f"{label:32s} {ours[key]:9.3f} {trl[key]:9.3f} {ratio:9.2f} {target:>7s}")


def parent(args: argparse.Namespace) -> None:
    trl_python = args.trl_python
    if not Path(trl_python).is_file():
        raise SystemExit(
            f"TRL interpreter {trl_python} not found. Create the bench-only venv:\n"
            f"  {TRL_INSTALL_HINT}\nor pass --trl-python PATH."
        )
    with tempfile.TemporaryDirectory(prefix="vs-trl-") as tmp:
        model_dir = local_model_dir(args.model, Path(args.cache))
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(build_spec(args, model_dir)))
        workers = [
            Worker(sys.executable, "ours", spec_path, args),
            Worker(trl_python, "trl", spec_path, args),
        ]
        run_side_by_side(workers, args.warmup + args.steps)
        results = {worker.side: worker.result() for worker in workers}
    ours, trl = summarise(results["ours"]), summarise(results["trl"])
    print_table(ours, trl, args)
    if args.json:
        args.json.write_text(json.dumps({"ours": results["ours"], "trl": results["trl"]}, indent=2))


# --- worker: ours --------------------------------------------------------------------------------


def worker_ours(spec: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    import torch

    from unisd_core import generation
    from unisd_core.config import RunConfig
    from unisd_core.trainer import train

    torch.set_num_threads(spec["threads"])
    cfg = RunConfig.model_validate(config)
    if spec["full_length"]:
        suppress_eos_in_generate()
    gen_spans: list[tuple[float, float]] = []
    ends: list[float] = []
    original_generate = generation.generate

    def timed_generate(*a: Any, **k: Any) -> Any:
        clock = Clock()
        out = original_generate(*a, **k)
        gen_spans.append(clock.since())
        return out

    generation.generate = timed_generate  # the trainer calls it through the module
    lengths: list[float] = []

    def sink(step: int, metrics: dict[str, float]) -> None:
        # Between the turn (`stop()`, polled before every step) and this call the loop runs
        # one step and nothing else, so their CPU times bracket the step's.
        ends.append(time.process_time())
        lengths.append(metrics.get("train/completion_length", 0.0))
        walls.append(metrics["sys/step_s"])

    def take_turn() -> bool:
        wait_for_turn()
        starts.append(time.process_time())
        return False  # never stop early

    walls: list[float] = []
    starts: list[float] = []
    base = rss_now_gb()
    train(cfg, sink, stop=take_turn)
    steps = []
    for i in range(spec["warmup"], len(walls)):
        steps.append(
            {
                "step_s": walls[i],
                "step_cpu_s": ends[i] - starts[i],
                "gen_s": gen_spans[i][0],
                "gen_cpu_s": gen_spans[i][1],
                "completion_len": lengths[i],
            }
        )
    return {"steps": steps, "peak_gb": peak_rss_gb() - base, "peak_abs_gb": peak_rss_gb()}


def suppress_eos_in_generate() -> None:
    """Every rollout in this process runs to `max_new_tokens`: our decoding loop masks EOS until
    then (`min_new_tokens`), as TRL's side does through its generation config."""
    from unisd_core import generation

    original = generation._decode

    def decode(*args: Any, max_new_tokens: int, **kwargs: Any) -> Any:
        kwargs["min_new_tokens"] = max_new_tokens
        return original(*args, max_new_tokens=max_new_tokens, **kwargs)

    generation._decode = decode  # `generate` looks it up in the module at every call


# --- worker: TRL (runs in the TRL venv: no project imports) -------------------------------------


def worker_trl(spec: dict[str, Any]) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl.experimental.gkd import GKDConfig, GKDTrainer

    torch.set_num_threads(spec["threads"])
    base = rss_now_gb()
    tokenizer = AutoTokenizer.from_pretrained(spec["model_dir"])
    tokenizer.pad_token_id = spec["pad_id"]
    tokenizer.padding_side = "left"
    student = AutoModelForCausalLM.from_pretrained(spec["model_dir"], dtype=torch.float32)
    teacher = AutoModelForCausalLM.from_pretrained(spec["model_dir"], dtype=torch.float32)
    total = spec["warmup"] + spec["steps"]
    gen_spans: list[tuple[float, float]] = []
    lengths: list[float] = []

    class TimedGKD(GKDTrainer):
        """GKD with its on-policy generation call timed (TRL calls it through `self`)."""

        def generate_on_policy_outputs(self, model: Any, inputs: Any, config: Any) -> Any:
            clock = Clock()
            ids, mask, labels = GKDTrainer.generate_on_policy_outputs(model, inputs, config)
            gen_spans.append(clock.since())
            lengths.append(float(mask[:, inputs["prompts"].shape[1] :].sum(1).float().mean()))
            return ids, mask, labels

    starts: dict[int, Clock] = {}
    steps_done: list[tuple[float, float]] = []

    class StepClock(TrainerCallback):
        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            wait_for_turn()
            starts[state.global_step] = Clock()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            steps_done.append(starts[state.global_step - 1].since())

    config = GKDConfig(
        output_dir=tempfile.mkdtemp(prefix="trl-gkd-"),
        per_device_train_batch_size=spec["batch_size"],
        max_steps=total,
        learning_rate=spec["lr"],
        lr_scheduler_type="constant",
        weight_decay=0.0,
        max_grad_norm=1.0,
        lmbda=1.0,
        beta=GKD_BETA,
        temperature=1.0,
        max_new_tokens=spec["new_tokens"],
        seed=spec["seed"],
        gradient_checkpointing=False,
        bf16=False,
        fp16=False,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_steps=10**6,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    peft_config = None
    if spec["lora"]:
        from peft import LoraConfig

        lora = spec["lora"]
        peft_config = LoraConfig(
            r=lora["r"],
            lora_alpha=lora["alpha"],
            lora_dropout=lora["dropout"],
            target_modules=lora["target_modules"],
            bias="none",
            task_type="CAUSAL_LM",
        )
    trainer = TimedGKD(
        model=student,
        teacher_model=teacher,
        args=config,
        train_dataset=Dataset.from_list([{"row": i} for i in range(total * spec["batch_size"])]),
        data_collator=batch_feeder(spec, torch),
        processing_class=tokenizer,
        callbacks=[StepClock()],
        peft_config=peft_config,
    )
    if spec["full_length"]:
        trainer.generation_config.min_new_tokens = spec["new_tokens"]
    trainer.train()
    steps = []
    for i in range(spec["warmup"], total):
        steps.append(
            {
                "step_s": steps_done[i][0],
                "step_cpu_s": steps_done[i][1],
                "gen_s": gen_spans[i][0],
                "gen_cpu_s": gen_spans[i][1],
                "completion_len": lengths[i],
            }
        )
    return {"steps": steps, "peak_gb": peak_rss_gb() - base, "peak_abs_gb": peak_rss_gb()}


def batch_feeder(spec: dict[str, Any], torch: Any) -> Callable[[list[Any]], dict[str, Any]]:
    """A collator that ignores the sampler and hands out our trainer's batches in step order
    (left-padded prompts for generation; prompt + gold as the never-used off-policy input)."""
    batches = iter(spec["batches"])
    pad = spec["pad_id"]

    def left_pad(rows: list[list[int]]) -> tuple[Any, Any]:
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row) :] = 1
        return ids, mask

    def collate(_: list[Any]) -> dict[str, Any]:
        batch = next(batches)
        prompts, prompt_mask = left_pad([row["prompt"] for row in batch])
        ids, mask = left_pad([row["prompt"] + row["gold"] for row in batch])
        labels = ids.masked_fill(mask == 0, -100)
        labels[:, : prompts.shape[1]] = -100
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "labels": labels,
            "prompts": prompts,
            "prompt_attention_mask": prompt_mask,
        }

    return collate


# --- entry point ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:tiny-random")
    parser.add_argument("--steps", type=int, default=3, help="measured steps")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured steps first")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--prompt-length", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    parser.add_argument("--lora", action="store_true", help="train LoRA adapters on both sides")
    parser.add_argument(
        "--natural-length",
        action="store_true",
        help="let EOS end rollouts (default: every rollout is --new-tokens long on both sides, "
        "so both score the same number of tokens whatever the samples)",
    )
    parser.add_argument("--trl-python", default=DEFAULT_TRL_PYTHON)
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "unisd-bench"))
    parser.add_argument("--json", type=Path, default=None, help="also write raw per-step rows")
    parser.add_argument("--worker", choices=("ours", "trl"), help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--ours-config", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is None:
        parent(args)
        return
    spec = json.loads(args.spec.read_text())
    if args.worker == "ours":
        report(worker_ours(spec, json.loads(args.ours_config)))
    else:
        report(worker_trl(spec))


if __name__ == "__main__":
    main()
