"""Checkpoints: everything needed to continue a run exactly, plus a loadable model export.

Layout of `OUTPUT/checkpoints/step-000010/`:
* `state.pt`: the tensors training changes (LoRA: both adapters; full fine-tuning: the student and
  a moving teacher), optimizer, scheduler, RNG states, step, and small trainer state (caches);
* `adapter/` (LoRA, peft format) or `model/` (full fine-tuning, transformers format): for eval;
* `config.json`: the canonical RunConfig; `meta.json`: step, time, versions, hashes.

A checkpoint directory is written under a temporary name and renamed, so a crash never leaves a
half-written checkpoint that resume would pick up.
"""

from __future__ import annotations

import json
import platform
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from unisd_core.config import RunConfig

CHECKPOINTS = "checkpoints"
STATE_FILE = "state.pt"
#: Fields a resumed run may change: how long it runs and how often it reports.
RESUMABLE_CHANGES = {
    ("train", "max_steps"),
    ("train", "epochs"),
    ("train", "checkpoint_every"),
    ("train", "sample_every"),
    ("name",),
}


@dataclass
class Restored:
    step: int
    extra: dict[str, Any]


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def library_versions() -> dict[str, str]:
    import peft
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
    }


def save_checkpoint(
    output_dir: Path,
    *,
    step: int,
    cfg: RunConfig,
    networks: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    extra: dict[str, Any],
    meta: dict[str, Any],
    weights: dict[str, torch.Tensor] | None = None,
    optimizer_state: dict[str, Any] | None = None,
) -> Path:
    """Write `output_dir/checkpoints/step-NNNNNN` atomically and return its path.

    `weights` and `optimizer_state` are given when the live ones are sharded over processes
    (FSDP): the full tensors gathered for this checkpoint, which then also make the export.
    """
    root = output_dir / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:06d}"
    partial = root / f".step-{step:06d}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    torch.save(
        {
            "step": step,
            "weights": weights if weights is not None else networks.changing_state(),
            "optimizer": optimizer_state if optimizer_state is not None else optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng_state(),
            "extra": extra,
        },
        partial / STATE_FILE,
    )
    export: dict[str, Any] = {}
    if weights is not None:  # the model's own state dict would be this process's shards
        export["state_dict"] = weights
        if not networks.lora:
            export["state_dict"] = {
                k.removeprefix("student."): v
                for k, v in weights.items()
                if k.startswith("student.")
            }
    if networks.lora:
        networks.student.save_pretrained(
            partial / "adapter", selected_adapters=["default"], **export
        )
    else:
        networks.student.save_pretrained(partial / "model", **export)
    networks.tokenizer.save_pretrained(partial / ("adapter" if networks.lora else "model"))
    (partial / "config.json").write_text(cfg.canonical_json(), encoding="utf-8")
    info = {
        "step": step,
        "saved_at": time.time(),
        "config_hash": cfg.config_hash(),
        "versions": library_versions(),
        **meta,
    }
    (partial / "meta.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    return final


def latest_checkpoint(path: Path) -> Path | None:
    """`path` itself if it is a checkpoint, else the newest checkpoint under it (or None)."""
    if (path / STATE_FILE).is_file():
        return path
    root = path / CHECKPOINTS if (path / CHECKPOINTS).is_dir() else path
    if not root.is_dir():
        return None
    found = sorted(p for p in root.glob("step-*") if (p / STATE_FILE).is_file())
    return found[-1] if found else None


def _differences(a: Any, b: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[tuple[str, ...]] = []
        for key in sorted(set(a) | set(b)):
            out += _differences(a.get(key), b.get(key), (*prefix, key))
        return out
    return [] if a == b else [prefix]


def check_compatible(checkpoint: Path, cfg: RunConfig) -> None:
    """A resumed run must be the same run: only its length and reporting may change."""
    saved = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
    changed = [
        diff
        for diff in _differences(saved, cfg.model_dump(mode="json"))
        if diff not in RESUMABLE_CHANGES and diff != ("preset",)
    ]
    if changed:
        names = ", ".join(".".join(d) for d in changed[:5])
        raise ValueError(f"cannot resume {checkpoint}: the config differs in {names}")


def load_checkpoint(
    checkpoint: Path,
    *,
    networks: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    prepare_weights: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
) -> Restored:
    """Restore weights, optimizer, scheduler and RNG; returns the step to continue after.

    `prepare_weights` turns the stored full tensors into what the networks hold (FSDP: shards).
    """
    state = torch.load(checkpoint / STATE_FILE, map_location="cpu", weights_only=False)
    weights = state["weights"]
    networks.load_changing_state(prepare_weights(weights) if prepare_weights else weights)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    return Restored(step=int(state["step"]), extra=dict(state.get("extra") or {}))
