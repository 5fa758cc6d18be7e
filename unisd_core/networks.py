"""The student and its teacher(s), with as few copies of the base weights as possible.

Under LoRA (method.md 0.3) there is one base model in memory:
* the student is the base plus the trainable adapter `default`;
* the static teacher is the same base with adapters disabled;
* the EMA teacher is a second, frozen adapter `ema` on the same base, started as a copy of the
  student's adapter and moved towards it every `ref_model_sync_steps`.
Full fine-tuning keeps one frozen copy of the base as the teacher (EMA-updated when enabled).

Every teacher forward runs in eval mode under `no_grad`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from transformers import PreTrainedTokenizerBase

from unisd_core import modeling
from unisd_core.config import RunConfig
from unisd_core.scoring import Packed, forward_completions
from unisd_core.teachers.ema import can_fold, ema_update, folded_adapter, teacher_drift

STUDENT_ADAPTER = "default"
EMA_ADAPTER = "ema"


def pick_device(cfg: RunConfig) -> torch.device:
    wanted = cfg.resources.device
    if wanted == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("resources.device is 'cuda' but no CUDA device is visible")
    if wanted == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def pick_dtype(cfg: RunConfig, device: torch.device) -> torch.dtype:
    names = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if cfg.model.dtype != "auto":
        return names[cfg.model.dtype]
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


@dataclass
class Networks:
    student: Any  # a transformers model, or a peft PeftModel around one
    tokenizer: PreTrainedTokenizerBase
    lora: bool
    ema_moves: bool  # the teacher follows the student (EMA enabled and not the compat no-op)
    frozen_teacher: nn.Module | None  # full fine-tuning only
    device: torch.device
    #: What the student's training forwards go through: the DDP wrapper in a multi-GPU run
    #: (set by the trainer), else `student` itself. Everything else uses `student` directly.
    train_model: Any = None

    def __post_init__(self) -> None:
        if self.train_model is None:
            self.train_model = self.student

    # --- the teacher ---------------------------------------------------------------------------

    @contextmanager
    def _eval(self, model: Any) -> Iterator[None]:
        was_training = model.training
        model.eval()
        try:
            yield
        finally:
            if was_training:
                model.train()

    @torch.no_grad()
    def teacher_forward(self, batch: Packed, *, hidden: bool) -> tuple[Tensor, Tensor | None]:
        """The teacher's completion logits (and hidden states) for a packed batch."""
        if self.frozen_teacher is not None:
            return forward_completions(self.frozen_teacher, batch, hidden=hidden)
        with self._eval(self.student):
            if self.lora and self.ema_moves:
                if can_fold(self.student, EMA_ADAPTER):  # the same function, one matmul a layer
                    with folded_adapter(self.student, EMA_ADAPTER):
                        return forward_completions(self.student, batch, hidden=hidden)
                names = [EMA_ADAPTER] * batch.input_ids.shape[0]
                return forward_completions(self.student, batch, hidden=hidden, adapter_names=names)
            with self.base():
                return forward_completions(self.student, batch, hidden=hidden)

    def base(self) -> Any:
        """Context in which `self.student` computes the base model (LoRA: adapters disabled)."""
        return self.student.disable_adapter() if self.lora else nullcontext()

    def base_model_for_sampling(self) -> tuple[Any, Any]:
        """(model, context) that samples from the initial model (SSD, induction, negatives)."""
        if self.frozen_teacher is not None and not self.ema_moves:
            return self.frozen_teacher, nullcontext()
        return self.student, self.base()

    # --- EMA ----------------------------------------------------------------------------------

    def _adapter_tensors(self, adapter: str) -> dict[str, Tensor]:
        marker = f".{adapter}."
        return {
            name.replace(marker, "."): param
            for name, param in self.student.named_parameters()
            if "lora_" in name and marker in name
        }

    def ema_pairs(self) -> tuple[Any, Any]:
        if self.lora:
            return self._adapter_tensors(EMA_ADAPTER), self._adapter_tensors(STUDENT_ADAPTER)
        assert self.frozen_teacher is not None
        return self.frozen_teacher, self.student

    def ema_sync(self, beta: float) -> int:
        """One EMA update of the teacher; the number of tensors moved (0 for the compat no-op)."""
        if not self.ema_moves and self.lora:
            return 0  # upstream_compat: the released code skips every LoRA tensor
        teacher, student = self.ema_pairs()
        return ema_update(teacher, student, beta=beta)

    def ema_drift(self) -> float:
        """Relative distance between the teacher's and the student's EMA-tracked tensors."""
        if not self.ema_moves and self.lora:
            return 0.0
        teacher, student = self.ema_pairs()
        return teacher_drift(teacher, student)

    # --- bookkeeping ---------------------------------------------------------------------------

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.student.parameters() if p.requires_grad]

    def changing_state(self) -> dict[str, Tensor]:
        """The tensors training changes (all a checkpoint must store to resume)."""
        if self.lora:
            return {
                name: param.detach().clone()
                for name, param in self.student.named_parameters()
                if "lora_" in name
            }
        state = {f"student.{k}": v.detach().clone() for k, v in self.student.state_dict().items()}
        if self.frozen_teacher is not None and self.ema_moves:
            teacher_state = self.frozen_teacher.state_dict()
            state.update({f"teacher.{k}": v.detach().clone() for k, v in teacher_state.items()})
        return state

    @torch.no_grad()
    def load_changing_state(self, state: dict[str, Tensor]) -> None:
        if self.lora:
            params = dict(self.student.named_parameters())
            missing = [name for name in params if "lora_" in name and name not in state]
            if missing:
                raise ValueError(f"checkpoint lacks adapter tensors, e.g. {missing[0]}")
            for name, value in state.items():
                params[name].copy_(value)
            return
        self.student.load_state_dict(
            {k.removeprefix("student."): v for k, v in state.items() if k.startswith("student.")}
        )
        if self.frozen_teacher is not None and self.ema_moves:
            self.frozen_teacher.load_state_dict(
                {
                    k.removeprefix("teacher."): v
                    for k, v in state.items()
                    if k.startswith("teacher.")
                }
            )


def needs_teacher(cfg: RunConfig) -> bool:
    return cfg.objective in ("on_policy_distill", "ssd")


def build_networks(cfg: RunConfig, device: torch.device) -> Networks:
    """Load the base model once and arrange student and teacher around it."""
    loaded = modeling.load(cfg.model)
    dtype = pick_dtype(cfg, device)
    base: Any = loaded.model.to(device=device, dtype=dtype)  # type: ignore[call-arg]
    ema_enabled = cfg.objective == "on_policy_distill" and cfg.ema.enabled
    if cfg.model.lora.enabled:
        from peft import LoraConfig, get_peft_model

        lora = cfg.model.lora
        peft_config = LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=list(lora.target_modules),
            bias="none",
            task_type="CAUSAL_LM",
        )
        try:
            student = get_peft_model(base, peft_config)
        except ValueError as exc:
            raise ValueError(
                f"model.lora.target_modules {list(lora.target_modules)} do not match layers of "
                f"{cfg.model.name_or_path}: {exc}"
            ) from exc
        ema_moves = ema_enabled and not cfg.upstream_compat
        if ema_moves:
            student.add_adapter(EMA_ADAPTER, peft_config)
            with torch.no_grad():
                params = dict(student.named_parameters())
                for name, param in params.items():
                    if f".{EMA_ADAPTER}." in name:
                        source = name.replace(f".{EMA_ADAPTER}.", f".{STUDENT_ADAPTER}.")
                        param.copy_(params[source])
                        param.requires_grad_(False)
        student.set_adapter(STUDENT_ADAPTER)
        return Networks(student, loaded.tokenizer, True, ema_moves, None, device)
    frozen = None
    if needs_teacher(cfg):
        frozen = copy.deepcopy(base).eval()
        frozen.requires_grad_(False)
    return Networks(base, loaded.tokenizer, False, ema_enabled, frozen, device)
