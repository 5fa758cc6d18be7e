"""`unisd eval`: evaluate a run's checkpoint, a config's base model, or a named model.

What is evaluated, from CONFIG_OR_RUN_DIR:
- a run directory (with `config.yaml`/`config.json` and `checkpoints/step-*`): its latest
  checkpoint; LoRA adapters are applied to the base, and retention metrics compare with the base
  (adapters disabled: one copy in memory); a full fine-tune is compared with a fresh base copy;
- a checkpoint directory (`adapter/` or `model/` beside `config.json`): that checkpoint;
- a RunConfig file: the config's base model;
- nothing, or `--model`: that model (default `builtin:tiny-random`).

Writes OUTPUT/items.jsonl (one line per item, appended as chunks finish) and OUTPUT/report.json
(metrics per benchmark and the flat `eval/<benchmark>/<metric>` keys). Re-running with the same
settings resumes: items already in items.jsonl are not evaluated again.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import yaml

from unisd_core.config import EvalEngine, ModelConfig, RunConfig
from unisd_core.data import EVAL_SPLITS, OOD_PAIRS, DataError, Example, load_examples

ITEMS_FILE = "items.jsonl"
REPORT_FILE = "report.json"
STATE_FILE = "eval_state.json"
DEFAULT_MAX_NEW_TOKENS = 256
ENGINES: tuple[EvalEngine, ...] = get_args(EvalEngine)
VLLM_CHUNK = 256  # items generated (and saved) together by vLLM


class EvalSetupError(ValueError):
    """The evaluation cannot start: the message says what to fix."""


class EvalStateMismatch(EvalSetupError):
    """OUTPUT holds items of a different evaluation (another model, data or settings)."""


class EvalStopped(Exception):
    """`stop()` said stop: the items finished so far are saved, a re-run resumes after them."""


@dataclass(frozen=True)
class Target:
    """What to evaluate: a base model, optionally with a checkpoint on top."""

    model: ModelConfig
    config: RunConfig | None
    checkpoint: Path | None  # a directory holding `adapter/` or `model/`


def _read_config(path: Path) -> RunConfig:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise EvalSetupError(f"cannot read config {path}: {exc}") from exc
    try:
        return RunConfig.model_validate(raw)
    except ValueError as exc:
        raise EvalSetupError(f"{path} is not a valid RunConfig: {exc}") from exc


def _latest_checkpoint(run_dir: Path) -> Path | None:
    found = sorted(
        p
        for p in (run_dir / "checkpoints").glob("step-*")
        if (p / "adapter").is_dir() or (p / "model").is_dir()
    )
    return found[-1] if found else None


def resolve_target(config_or_run_dir: Path | None, model: str | None) -> Target:
    """Work out the model, config and checkpoint from the command's first argument."""
    path = config_or_run_dir
    if path is None:
        return Target(ModelConfig(name_or_path=model or "builtin:tiny-random"), None, None)
    if not path.exists():
        raise EvalSetupError(f"{path} does not exist (expected a run dir, checkpoint or config)")
    config: RunConfig | None = None
    checkpoint: Path | None = None
    if path.is_file():
        config = _read_config(path)
    else:
        is_checkpoint = (path / "adapter").is_dir() or (path / "model").is_dir()
        for name in ("config.json", "config.yaml", "config.yml"):
            if (path / name).is_file():
                config = _read_config(path / name)
                break
        if config is None:
            raise EvalSetupError(f"{path} holds no config.yaml/config.json")
        checkpoint = path if is_checkpoint else _latest_checkpoint(path)
    if model is not None:
        # --model names the model outright: evaluate it, not the run's checkpoint.
        return Target(ModelConfig(name_or_path=model), config, None)
    return Target(config.model, config, checkpoint)


def _data_field(config: RunConfig | None, name: str) -> Any:
    """A RunConfig.data field when the config has it (fields are added as the project grows)."""
    if config is None:
        return None
    return getattr(config.data, name, None)


def default_benchmarks(config: RunConfig | None) -> list[str]:
    configured = _data_field(config, "eval_benchmarks")
    if configured:
        return list(configured)
    if config is not None:
        trained = str(config.data.benchmark)
        return [trained] + ([OOD_PAIRS[trained]] if trained in OOD_PAIRS else [])
    return ["scienceqa"]


def _fingerprint(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _load_done(output: Path, fingerprint: str, fresh: bool) -> dict[str, dict[str, Any]]:
    state_path, items_path = output / STATE_FILE, output / ITEMS_FILE
    if fresh:
        for p in (state_path, items_path, output / REPORT_FILE):
            p.unlink(missing_ok=True)
    if state_path.is_file():
        saved = json.loads(state_path.read_text(encoding="utf-8")).get("fingerprint")
        if saved != fingerprint:
            raise EvalStateMismatch(
                f"{output} holds results of a different evaluation (other model, data or "
                "settings); choose another --output or pass --fresh"
            )
    done: dict[str, dict[str, Any]] = {}
    if items_path.is_file():
        for line in items_path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by an interrupted write: that item is simply redone
            done[f"{record['benchmark']}/{record['id']}"] = record
    return done


def _load_model(target: Target, device: str) -> tuple[Any, Any, Any, str]:
    """(model, tokenizer, base for retention or None, description)."""
    import torch

    from unisd_core import modeling
    from unisd_core.evaluation.retention import adapters_disabled

    loaded = modeling.load(target.model)
    base: Any = loaded.model
    description = target.model.name_or_path
    model: Any = base
    retention_base: Any = None
    if target.checkpoint is not None:
        if (target.checkpoint / "adapter").is_dir():
            from peft import PeftModel

            model = PeftModel.from_pretrained(base, str(target.checkpoint / "adapter"))
            retention_base = adapters_disabled(model)
        else:
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(
                str(target.checkpoint / "model"), dtype=torch.float32
            )
            retention_base = base.to(device)
        description += f" + {target.checkpoint}"
    model.to(device)
    model.eval()
    return model, loaded.tokenizer, retention_base, description


def run_eval(
    config_or_run_dir: Path | None,
    benchmarks: Sequence[str],
    output: Path,
    model: str | None,
    limit: int | None,
    batch_size: int,
    *,
    source: str | None = None,
    split: str | None = None,
    max_new_tokens: int | None = None,
    max_prompt_length: int | None = None,
    seed: int = 42,
    likelihoods: bool = True,
    device: str | None = None,
    fresh: bool = False,
    progress: bool = True,
    stop: Callable[[], bool] | None = None,
    engine: EvalEngine = "auto",
) -> dict[str, Any]:
    """Evaluate and write OUTPUT/items.jsonl + OUTPUT/report.json; return the report dict.

    `stop` is polled after each chunk of items is saved; when it says stop, EvalStopped is
    raised (no report is written) and a later call with the same settings resumes.
    """
    target = resolve_target(config_or_run_dir, model)
    config = target.config
    chosen = list(benchmarks) or default_benchmarks(config)
    data_source = source or (str(config.data.source) if config is not None else "bundled")
    limit = limit if limit is not None else _data_field(config, "max_eval_examples")
    max_new = max_new_tokens or _data_field(config, "max_completion_length")
    max_new = int(max_new or DEFAULT_MAX_NEW_TOKENS)
    prompt_limit = max_prompt_length or _data_field(config, "max_prompt_length")
    if batch_size < 1:
        raise EvalSetupError("--batch-size must be >= 1")
    if engine not in ENGINES:
        raise EvalSetupError(f"--engine must be one of {list(ENGINES)}, not {engine!r}")

    examples: list[Example] = []
    splits: dict[str, str] = {}
    for benchmark in chosen:
        splits[benchmark] = split or EVAL_SPLITS.get(benchmark, "test")
        try:
            examples += load_examples(
                benchmark, source=data_source, split=splits[benchmark], seed=seed, limit=limit
            )
        except DataError as exc:
            raise EvalSetupError(str(exc)) from exc

    settings = {
        "model": target.model.model_dump(mode="json"),
        "checkpoint": str(target.checkpoint) if target.checkpoint else None,
        "benchmarks": chosen,
        "splits": splits,
        "source": data_source,
        "limit": limit,
        "seed": seed,
        "max_new_tokens": max_new,
        "max_prompt_length": prompt_limit,
        "likelihoods": likelihoods,
    }
    fingerprint = _fingerprint(settings)
    output.mkdir(parents=True, exist_ok=True)
    done_records = _load_done(output, fingerprint, fresh)
    (output / STATE_FILE).write_text(
        json.dumps({"fingerprint": fingerprint, "settings": settings}, indent=2), encoding="utf-8"
    )

    import torch

    from unisd_core.evaluation.evaluator import ItemResult, evaluate
    from unisd_core.vllm_engine import EngineUnavailable, choose_engine, vllm_generator

    run_device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen_engine = choose_engine(engine, run_device)
    except EngineUnavailable as exc:
        raise EvalSetupError(str(exc)) from exc
    net, tokenizer, retention_base, description = _load_model(target, run_device)
    generator = None
    if chosen_engine == "vllm":
        generator = vllm_generator(
            net,
            tokenizer,
            output,
            seed=seed,
            max_model_len=(prompt_limit + max_new) if prompt_limit else None,
        )
    started = time.monotonic()
    items_path = output / ITEMS_FILE

    def append(items: list[ItemResult]) -> None:
        with items_path.open("a", encoding="utf-8") as handle:
            for item in items:
                handle.write(item.to_json() + "\n")
        if stop is not None and stop():
            raise EvalStopped(f"evaluation stopped; finished items are kept in {items_path}")

    # Ids are unique within a benchmark; `done` is keyed per benchmark to stay unambiguous.
    done = {
        key.split("/", 1)[1]: ItemResult.from_dict(record)
        for key, record in done_records.items()
        if key.split("/", 1)[0] in chosen
    }
    report = evaluate(
        net,
        tokenizer,
        examples,
        batch_size=batch_size,
        max_new_tokens=max_new,
        base_model=retention_base,
        max_prompt_length=prompt_limit,
        likelihoods=likelihoods,
        done=done,
        on_items=append,
        progress=progress,
        generator=generator,
        # vLLM batches internally and is fastest on many prompts at once.
        chunk_size=VLLM_CHUNK if generator is not None else None,
    )
    result = {
        "model": description,
        "settings": settings,
        "device": run_device,
        "engine": chosen_engine,
        "seconds": round(time.monotonic() - started, 2),
        "resumed_items": len(done),
        "metrics": report.metrics,
        "flat": report.flat(),
        "notes": sorted(
            {str(ex.metadata["train_source"]) for ex in examples if "train_source" in ex.metadata}
        ),
    }
    (output / REPORT_FILE).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result
