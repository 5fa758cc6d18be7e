"""The training loop: on-policy self-distillation (UniSD), and the SFT / SSD baselines.

Read top to bottom. `train` loads data (before the model, so data errors come first), builds the
student and teacher(s), plans the teacher contexts, then runs one optimizer step per iteration:

    on_policy_distill: sample y ~ student(x); score y under the student and, in padded teacher
                       forwards batched by prompt length (teachers/passes.py), under the gold,
                       auxiliary and negative contexts; combine the enabled components
                       (objectives.py); step; EMA-sync the teacher.
    sft:               NLL of the gold demonstration given the student prompt.
    ssd:               NLL of the base model's own sample (drawn once per example, cached).
    none:              no training (the `base` preset: evaluate the base model).

Metrics go to the sink every step; `stop()` is polled at every step boundary, and a stop writes
a checkpoint when an output directory is given, so the run can resume exactly where it stopped.

Launched as N processes (`resources.gpus = N`, see distributed.py), every process runs this loop
on its shard of each step's prompts; DDP averages the gradients, metrics are combined across
ranks, and rank 0 alone reports, writes samples and writes checkpoints.
"""

from __future__ import annotations

import functools
import json
import math
import random
import resource
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import get_scheduler

from unisd_core import checkpoint as ckpt
from unisd_core import distributed, generation
from unisd_core.callbacks import MetricSink, StopSignal, never_stop
from unisd_core.config import RunConfig
from unisd_core.data import Example, load_examples
from unisd_core.data.prompts import gold_completion, student_messages
from unisd_core.networks import Networks, build_networks, pick_device
from unisd_core.objectives import (
    ScoredBatch,
    distillation_objective,
    mean_metrics,
    negative_log_likelihood,
)
from unisd_core.rollouts import Rollouts, build_rollouts, rollout_engine
from unisd_core.scoring import Packed, forward_completions, pack
from unisd_core.teachers import cache, contexts, passes
from unisd_core.teachers.negatives import (
    Negative,
    deterministic_negative,
    rationale_request_messages,
    wrong_letter,
)

#: Teacher rows (contexts x completions) per forward; bounds activation memory (method.md 0.4).
TEACHER_ROWS_PER_FORWARD = 32
#: Token budget of model-written texts (induced instructions, negative rationales).
AUX_GENERATION_TOKENS = 96
#: Ranks sample their rollouts with seeds this far apart (rank 0 keeps the single-process seed).
RANK_SEED_STRIDE = 1_000_000_007


@dataclass(frozen=True)
class TrainResult:
    steps_completed: int
    stopped_early: bool
    checkpoint: Path | None = None
    info: dict[str, str] = field(default_factory=dict)


def train(
    cfg: RunConfig,
    sink: MetricSink,
    stop: StopSignal = never_stop,
    resume_from: Path | str | None = None,
    output_dir: Path | str | None = None,
) -> TrainResult:
    """Train `cfg` and report metrics to `sink`; see the module docstring.

    In a multi-GPU run every process calls this; only rank 0 calls `sink` and writes to
    `output_dir`, and every rank returns the same result.
    """
    out = Path(output_dir) if output_dir is not None else None
    examples = load_examples(
        cfg.data.benchmark,
        source=cfg.data.source,
        split=cfg.data.train_split,
        seed=cfg.train.seed,
        limit=cfg.data.max_train_examples,
    )
    _preflight(cfg, examples)
    if cfg.objective == "none":
        return TrainResult(steps_completed=0, stopped_early=False)
    device = pick_device(cfg)
    if cfg.objective == "on_policy_distill":
        rollout_engine(cfg, device)  # an engine that cannot run fails before any model loads
    group = distributed.join(cfg, device)
    resume_path = _resolve_resume(resume_from, cfg)
    device = group.device

    _seed_everything(cfg.train.seed)  # the same initial weights (LoRA init) on every rank
    nets = build_networks(cfg, device)
    nets.student.train()
    parallel = distributed.parallelize(nets, group, fsdp=cfg.resources.fsdp)
    nets.train_model = parallel.train_model
    _seed_rank(cfg.train.seed, group.rank)
    total = total_steps(cfg, len(examples))
    # fused: one kernel over all tensors (CPU and CUDA); the for-loop default took 0.67 s of a
    # 6 s SmolLM2 full fine-tuning step on a CPU core, fused 0.17 s. Same update rule.
    optimizer = torch.optim.AdamW(
        nets.trainable_parameters(),
        lr=cfg.train.lr,
        weight_decay=cfg.train.weight_decay,
        fused=True,
    )
    scheduler = get_scheduler(
        "constant_with_warmup" if cfg.train.schedule == "constant" else cfg.train.schedule,
        optimizer,
        num_warmup_steps=math.ceil(cfg.train.warmup_ratio * total),
        num_training_steps=total,
    )
    order = batch_order(len(examples), cfg.train.batch_size, total, cfg.train.seed)
    step_fn = StepRunner(cfg, nets, examples, parallel)

    try:
        start = 0
        if resume_path is not None:
            restored = ckpt.load_checkpoint(
                resume_path,
                networks=nets,
                optimizer=optimizer,
                scheduler=scheduler,
                prepare_weights=parallel.weights_to_shards(nets),
            )
            parallel.shard_optimizer_state(optimizer)
            start = restored.step
            step_fn.load_extra(restored.extra)

        def save(step: int) -> Path | None:
            if out is None:
                return None
            # Every rank takes part in these: they gather RNG states (and FSDP shards).
            extra = step_fn.extra()
            weights = parallel.full_weights(nets)
            optimizer_state = parallel.full_optimizer_state(optimizer)
            path = None
            if group.is_main:  # the ranks' weights and optimizer states are the same
                path = ckpt.save_checkpoint(
                    out,
                    step=step,
                    cfg=cfg,
                    networks=nets,
                    optimizer=optimizer,
                    scheduler=scheduler,
                    extra=extra,
                    meta={"total_steps": total, **step_fn.info},
                    weights=weights,
                    optimizer_state=optimizer_state,
                )
            # The others wait here until the checkpoint is complete, then learn where it is.
            return group.broadcast(path)

        last_saved: Path | None = None
        last_saved_step = start
        for step in range(start + 1, total + 1):
            if group.any(stop()):  # one rank asked (a cancel flag read at another moment): all stop
                return TrainResult(step - 1, True, save(step - 1), dict(step_fn.info))
            started = time.perf_counter()
            metrics = step_fn.run(group.shard(order[step - 1]), step)
            grad_norm = parallel.grad_norm(
                torch.nn.utils.clip_grad_norm_(nets.trainable_parameters(), cfg.train.max_grad_norm)
            )
            metrics["train/lr"] = float(scheduler.get_last_lr()[0])
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            metrics["train/grad_norm"] = grad_norm
            if cfg.objective == "on_policy_distill" and cfg.ema.enabled:
                if step % cfg.ema.ref_model_sync_steps == 0:
                    metrics["ema/tensors_updated"] = float(
                        nets.ema_sync(cfg.ema.ref_model_mixup_beta)
                    )
                metrics["ema/teacher_drift"] = parallel.ema_drift(nets)
            step_fn.share_caches()
            metrics["sys/step_s"] = time.perf_counter() - started
            metrics["sys/peak_mem_gb"] = peak_memory_gb(device)
            metrics = group.reduce_metrics(metrics)
            metrics["sys/tokens_per_s"] = metrics.pop("_tokens") / max(metrics["sys/step_s"], 1e-9)
            if step == start + 1:
                # Epoch-based runs learn their length only here: hosts read it for progress and ETA.
                metrics["train/total_steps"] = float(total)
            if group.is_main:
                sink(step, metrics)
            sampled = cfg.train.sample_every and step % cfg.train.sample_every == 0
            if out is not None and sampled and group.is_main:
                step_fn.write_samples(out / "samples.jsonl", step)
            if (
                out is not None
                and cfg.train.checkpoint_every
                and step % cfg.train.checkpoint_every == 0
            ):
                last_saved, last_saved_step = save(step), step
        if out is not None and last_saved_step != total:
            last_saved = save(total)
        group.barrier()  # every rank is done before any of them moves on (rank 0: to evaluating)
        return TrainResult(total, False, last_saved, dict(step_fn.info))
    finally:
        step_fn.close()  # a vLLM rollout engine gives its GPU memory back


# --- one optimizer step ------------------------------------------------------------------------


class StepRunner:
    """Builds the batches of one step and accumulates its gradients; owns the prompt caches.

    In a multi-GPU run it sees this rank's shard of each step; `parallel` shares what must be
    the same on every rank (induced instructions, SSD samples, generated negatives) and, under
    FSDP, gathers the full weights around every pass that is not a training forward.
    """

    def __init__(
        self,
        cfg: RunConfig,
        nets: Networks,
        examples: Sequence[Example],
        parallel: distributed.Parallel | None = None,
    ) -> None:
        self.cfg = cfg
        self.nets = nets
        self.examples = examples
        self.parallel = parallel or distributed.Parallel(
            distributed.Group(device=nets.device), nets.student
        )
        self.group = self.parallel.group
        self.tokenizer = nets.tokenizer
        eos = generation.eos_token_ids(nets.student, self.tokenizer)
        self.eos_id = eos[0]
        self.pad_id = generation.pad_token_id(self.tokenizer, eos)
        self.info: dict[str, str] = {"objective": cfg.objective}
        self._ids: dict[tuple[str, int], list[int]] = {}
        self._last_samples: list[dict[str, Any]] = []
        self.ssd_samples: dict[int, list[int]] = {}
        self.generated_negatives: dict[int, Negative] = {}
        # Drawn on this rank since the last `share_caches` (multi-GPU runs only).
        self._fresh_ssd: dict[int, list[int]] = {}
        self._fresh_negatives: dict[int, Negative] = {}
        if cfg.objective == "on_policy_distill":
            self.info["rollout_engine"] = rollout_engine(cfg, nets.device)
        self.plan: contexts.AuxiliaryPlan | None = None
        if cfg.objective == "on_policy_distill" and cfg.agreement.enabled:
            self.plan = contexts.plan_auxiliary(
                examples,
                source=cfg.agreement.context_source,
                k=cfg.agreement.num_auxiliary_contexts,
                seed=cfg.train.seed,
                induce=self._induce,
            )
            self.info["agreement_contexts"] = self.plan.backend

    # --- prompts ------------------------------------------------------------------------------

    def _encode(self, messages: list[dict[str, str]]) -> list[int]:
        return generation.encode_chat(
            self.tokenizer, messages, max_length=self.cfg.data.max_prompt_length
        )

    def _cached(self, kind: str, index: int, build: Any) -> list[int]:
        key = (kind, index)
        if key not in self._ids:
            self._ids[key] = self._encode(build())
        return self._ids[key]

    def student_prompt(self, index: int) -> list[int]:
        return self._cached("student", index, lambda: student_messages(self.examples[index]))

    def teacher_prompt(self, index: int) -> list[int]:
        return self._cached(
            "teacher", index, lambda: contexts.teacher_messages(self.examples[index])
        )

    def auxiliary_prompts(self, index: int) -> list[list[int]]:
        assert self.plan is not None
        plan = self.plan
        return [
            self._cached(f"aux{k}", index, lambda m=m: m)
            for k, m in enumerate(plan.messages(self.examples, index))
        ]

    def negative_prompt(self, index: int) -> list[int]:
        return self._cached(
            "negative",
            index,
            lambda: contexts.negative_messages(self.examples[index], self.negative(index)),
        )

    def negative(self, index: int) -> Negative:
        example = self.examples[index]
        if self.cfg.contrastive.negatives == "generated" and example.options:
            if index not in self.generated_negatives:
                self._generate_negatives([index])
            return self.generated_negatives[index]
        return deterministic_negative(example, self.cfg.train.seed)

    def gold_ids(self, index: int) -> list[int]:
        key = ("gold", index)
        if key not in self._ids:
            text = gold_completion(self.examples[index])
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            self._ids[key] = [*ids, self.eos_id][: self.cfg.data.max_completion_length]
        return self._ids[key]

    # --- model-written texts ------------------------------------------------------------------

    def _sample_from_base(
        self,
        prompts: list[list[int]],
        *,
        seed: int,
        temperature: float,
        top_p: float,
        max_new_tokens: int,
    ) -> list[generation.Generation]:
        model, context = self.nets.base_model_for_sampling()
        with context:
            return generation.generate(
                model,
                self.tokenizer,
                prompts,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                top_p=top_p,
                batch_size=max(1, len(prompts)),
                seed=seed,
            )

    def _cache_key(self) -> tuple[Any, ...]:
        cfg = self.cfg
        return (
            cfg.data.benchmark,
            cfg.data.source,
            cfg.data.train_split,
            cfg.model.name_or_path,
            cfg.model.revision,
            cfg.train.seed,
            AUX_GENERATION_TOKENS,
        )

    def _induce(self, requests: list[list[dict[str, str]]]) -> list[str]:
        """Induced instructions; rank 0's on every rank, so all ranks score the same contexts
        (sampling on two GPUs is not guaranteed to agree to the bit)."""
        with self.parallel.gathered():
            texts = self._induce_here(requests) if self.group.is_main else None
        return self.group.broadcast(texts) or []

    def _induce_here(self, requests: list[list[dict[str, str]]]) -> list[str]:
        path = cache.cache_path("induction", *self._cache_key(), requests)
        cached = cache.load(path)
        if isinstance(cached, list) and len(cached) == len(requests):
            return [str(text) for text in cached]
        outs = self._sample_from_base(
            [self._encode(r) for r in requests],
            seed=self.cfg.train.seed,
            temperature=0.7,
            top_p=1.0,
            max_new_tokens=AUX_GENERATION_TOKENS,
        )
        texts = [g.text for g in outs]
        cache.save(path, texts)
        return texts

    def _generate_negatives(self, indices: list[int]) -> None:
        """Model-written rationales for wrong options, cached per (dataset, model, seed)."""
        path = cache.cache_path("negatives", *self._cache_key())
        stored = cache.load(path)
        stored = stored if isinstance(stored, dict) else {}
        missing = []
        for i in indices:
            hit = stored.get(self.examples[i].id)
            if isinstance(hit, list) and len(hit) == 2:
                self.generated_negatives[i] = Negative(answer=hit[0], rationale=hit[1])
                if self.group.is_distributed:  # shared too: checkpoints hold every rank's
                    self._fresh_negatives[i] = self.generated_negatives[i]
            else:
                missing.append(i)
        if not missing:
            return
        wrongs = {}
        for i in missing:
            rng = random.Random(f"{self.cfg.train.seed}:{self.examples[i].id}")
            wrongs[i] = wrong_letter(self.examples[i], rng)
        outs = self._sample_from_base(
            [
                self._encode(rationale_request_messages(self.examples[i], wrongs[i]))
                for i in missing
            ],
            seed=self.cfg.train.seed + min(missing),
            temperature=0.7,
            top_p=1.0,
            max_new_tokens=AUX_GENERATION_TOKENS,
        )
        for i, out in zip(missing, outs, strict=True):
            negative = Negative(answer=wrongs[i], rationale=out.text.strip())
            self.generated_negatives[i] = negative
            stored[self.examples[i].id] = [negative.answer, negative.rationale]
        if self.group.is_distributed:
            self._fresh_negatives.update({i: self.generated_negatives[i] for i in missing})
        else:  # several ranks would overwrite each other's entries: `share_caches` saves
            cache.save(path, stored)

    # --- the step -----------------------------------------------------------------------------

    def run(self, indices: list[int], step: int) -> dict[str, float]:
        if self.cfg.objective == "on_policy_distill":
            return self._on_policy(indices, step)
        if self.cfg.objective == "sft":
            return self._imitation(indices, [self.gold_ids(i) for i in indices])
        with self.parallel.gathered():
            completions = self._ssd_completions(indices, step)
        return self._imitation(indices, completions)

    def _micro_batches(self, indices: list[int]) -> list[list[int]]:
        size = len(indices) // self.cfg.train.grad_accum
        return [indices[i : i + size] for i in range(0, len(indices), size)]

    def _accumulate(self, indices: list[int]) -> Iterator[tuple[list[int], Any]]:
        """(micro-batch, context of its forward and backward): gradients are reduced across
        ranks once per step, on the last micro-batch."""
        micros = self._micro_batches(indices)
        for n, micro in enumerate(micros):
            yield micro, self.parallel.gradient_sync(sync=n == len(micros) - 1)

    @functools.cached_property
    def rollouts(self) -> Rollouts:
        """The sampler of on-policy rollouts, started at the first one (vLLM takes a while)."""
        return build_rollouts(self.cfg, self.nets.student, self.tokenizer)

    def close(self) -> None:
        if "rollouts" in self.__dict__:  # started (cached_property stores it on the instance)
            self.rollouts.close()

    def _seed(self, step: int) -> int:
        """The sampling seed of this rank at `step` (rank 0: the single-process seed)."""
        return (_step_seed(self.cfg.train.seed, step) + self.group.rank * RANK_SEED_STRIDE) % (
            2**63
        )

    def _imitation(self, indices: list[int], completions: list[list[int]]) -> dict[str, float]:
        """SFT and SSD: per-sequence mean NLL of the given completions."""
        by_index = dict(zip(indices, completions, strict=True))
        parts, tokens = [], 0
        for micro, sync in self._accumulate(indices):
            packed = pack(
                [self.student_prompt(i) for i in micro],
                [by_index[i] for i in micro],
                pad_id=self.pad_id,
            ).to(self.nets.device)
            with sync:
                logits, _ = forward_completions(self.nets.train_model, packed)
                loss = negative_log_likelihood(
                    logits, packed.completion_ids, packed.completion_mask
                )
                (loss / self.cfg.train.grad_accum).backward()
            parts.append({"loss/total": float(loss.detach()), "loss/nll": float(loss.detach())})
            tokens += int(packed.attention_mask.sum())
        return {**mean_metrics(parts), "_tokens": float(tokens)}

    def _ssd_completions(self, indices: list[int], step: int) -> list[list[int]]:
        """The base model's own samples (SSD), drawn once per example and reused."""
        missing = [i for i in indices if i not in self.ssd_samples]
        if missing:
            outs = self._sample_from_base(
                [self.student_prompt(i) for i in missing],
                seed=self._seed(step),
                temperature=self.cfg.train.temperature,
                top_p=self.cfg.train.top_p,
                max_new_tokens=self.cfg.train.max_new_tokens,
            )
            for i, out in zip(missing, outs, strict=True):
                ids = out.completion_ids[: self.cfg.data.max_completion_length]
                self.ssd_samples[i] = ids or [self.eos_id]
                if self.group.is_distributed:
                    self._fresh_ssd[i] = self.ssd_samples[i]
        return [self.ssd_samples[i] for i in indices]

    def _on_policy(self, indices: list[int], step: int) -> dict[str, float]:
        cfg = self.cfg
        if random.Random(_step_seed(cfg.train.seed, step)).random() >= cfg.train.on_policy_fraction:
            return self._distill_on(
                indices, {i: self.gold_ids(i) for i in indices}, on_policy=False
            )
        gen_started = time.perf_counter()
        with self.parallel.gathered():
            rollouts = self.rollouts.sample(
                [self.student_prompt(i) for i in indices],
                version=step - 1,  # optimizer steps taken: the weights' version
                max_new_tokens=cfg.train.max_new_tokens,
                temperature=cfg.train.temperature,
                top_p=cfg.train.top_p,
                seed=self._seed(step),
            )
        gen_seconds = time.perf_counter() - gen_started
        completions = {
            i: (r.completion_ids[: cfg.data.max_completion_length] or [self.eos_id])
            for i, r in zip(indices, rollouts, strict=True)
        }
        self._last_samples = [
            {"example": self.examples[i].id, "completion": r.text, "finished": r.finished}
            for i, r in zip(indices, rollouts, strict=True)
        ]
        metrics = self._distill_on(indices, completions, on_policy=True)
        metrics["train/completion_finished"] = sum(r.finished for r in rollouts) / len(rollouts)
        metrics["sys/generation_s"] = gen_seconds
        return metrics

    def _distill_on(
        self, indices: list[int], completions: dict[int, list[int]], *, on_policy: bool
    ) -> dict[str, float]:
        """Teacher-student divergence along the given completions (rollouts or gold data)."""
        cfg = self.cfg
        parts, tokens = [], 0
        for micro, sync in self._accumulate(indices):
            ys = [completions[i] for i in micro]
            student_batch = pack(
                [self.student_prompt(i) for i in micro], ys, pad_id=self.pad_id
            ).to(self.nets.device)
            with sync:
                student_logits, student_hidden = forward_completions(
                    self.nets.train_model, student_batch, hidden=cfg.feature_matching.enabled
                )
                # The teachers run on the unwrapped model (no gradient, no DDP bookkeeping).
                with self.parallel.gathered():
                    scored = self._score_teachers(micro, ys)
                scored.completion_ids = student_batch.completion_ids
                scored.mask = student_batch.completion_mask
                scored.student_logits = student_logits
                scored.student_hidden = student_hidden
                result = distillation_objective(cfg, scored)
                (result.loss / cfg.train.grad_accum).backward()
            parts.append(result.metrics)
            tokens += int(student_batch.attention_mask.sum())
        metrics = mean_metrics(parts)
        lengths = [len(completions[i]) for i in indices]
        metrics["train/completion_length"] = sum(lengths) / len(lengths)
        metrics["train/on_policy"] = float(on_policy)
        metrics["_tokens"] = float(tokens)
        return metrics

    def _score_teachers(self, micro: list[int], ys: list[list[int]]) -> ScoredBatch:
        """All teacher contexts of a micro-batch, batched by prompt length (teachers/passes.py)."""
        cfg = self.cfg
        return passes.score_contexts(
            self.nets.teacher_forward,
            gold=[self.teacher_prompt(i) for i in micro],
            completions=ys,
            auxiliary=(
                [self.auxiliary_prompts(i) for i in micro] if cfg.agreement.enabled else None
            ),
            negative=[self.negative_prompt(i) for i in micro] if cfg.contrastive.enabled else None,
            negative_temperature=cfg.divergence.temperature,
            hidden=cfg.feature_matching.enabled,
            pad_id=self.pad_id,
            device=self.nets.device,
            max_rows=TEACHER_ROWS_PER_FORWARD,
        )

    # --- state that must survive a resume ----------------------------------------------------

    def extra(self) -> dict[str, Any]:
        """Trainer state for a checkpoint. Called on every rank: in a multi-GPU run it gathers
        each rank's RNG state (rank r's dropout masks continue exactly after a resume)."""
        state: dict[str, Any] = {
            "ssd_samples": {str(k): v for k, v in self.ssd_samples.items()},
            "generated_negatives": {
                str(k): [v.answer, v.rationale] for k, v in self.generated_negatives.items()
            },
        }
        if self.group.is_distributed:
            state["rng_by_rank"] = self.group.gather(ckpt.rng_state())
        return state

    def load_extra(self, extra: dict[str, Any]) -> None:
        self.ssd_samples = {int(k): list(v) for k, v in extra.get("ssd_samples", {}).items()}
        self.generated_negatives = {
            int(k): Negative(answer=v[0], rationale=v[1])
            for k, v in extra.get("generated_negatives", {}).items()
        }
        by_rank = extra.get("rng_by_rank")
        if self.group.is_distributed and by_rank:
            ckpt.set_rng_state(by_rank[self.group.rank])  # the checkpoint's own RNG is rank 0's

    def _shares_caches(self) -> bool:
        generated = self.cfg.contrastive.enabled and self.cfg.contrastive.negatives == "generated"
        return self.group.is_distributed and (self.cfg.objective == "ssd" or generated)

    def share_caches(self) -> None:
        """Make this step's SSD samples and generated negatives every rank's (a collective, at
        the end of every step): each example then has one sample and one negative for the whole
        run, as in a single process, and a checkpoint from rank 0 holds them all. When two ranks
        drew for the same example in one step, the lower rank's draw is kept."""
        if not self._shares_caches():
            return
        fresh = self.group.gather((self._fresh_ssd, self._fresh_negatives))
        self._fresh_ssd, self._fresh_negatives = {}, {}
        ssd: dict[int, list[int]] = {}
        negatives: dict[int, Negative] = {}
        for rank_ssd, rank_negatives in fresh:
            for i, ids in rank_ssd.items():
                ssd.setdefault(i, ids)
            for i, negative in rank_negatives.items():
                negatives.setdefault(i, negative)
        self.ssd_samples.update(ssd)
        self.generated_negatives.update(negatives)
        if negatives and self.group.is_main:
            self._save_negatives(negatives)

    def _save_negatives(self, negatives: dict[int, Negative]) -> None:
        path = cache.cache_path("negatives", *self._cache_key())
        stored = cache.load(path)
        stored = stored if isinstance(stored, dict) else {}
        new = {self.examples[i].id: [n.answer, n.rationale] for i, n in negatives.items()}
        if any(stored.get(key) != value for key, value in new.items()):  # not all cache hits
            cache.save(path, {**stored, **new})

    def write_samples(self, path: Path, step: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)  # before the first checkpoint makes it
        with path.open("a", encoding="utf-8") as handle:
            for sample in self._last_samples:
                handle.write(json.dumps({"step": step, **sample}) + "\n")


# --- helpers -----------------------------------------------------------------------------------


def _preflight(cfg: RunConfig, examples: Sequence[Example]) -> None:
    """Checks that need the data but not the model, so they fail before any weights load."""
    if cfg.agreement.enabled and cfg.agreement.context_source != "induction":
        k = cfg.agreement.num_auxiliary_contexts
        if len(examples) <= k:
            raise ValueError(
                f"agreement.num_auxiliary_contexts={k} needs more than {k} training examples; "
                f"{cfg.data.benchmark} has {len(examples)}"
            )


def _resolve_resume(resume_from: Path | str | None, cfg: RunConfig) -> Path | None:
    if resume_from is None:
        return None
    found = ckpt.latest_checkpoint(Path(resume_from))
    if found is None:
        raise FileNotFoundError(f"resume_from: no checkpoint found at {resume_from}")
    ckpt.check_compatible(found, cfg)
    return found


def total_steps(cfg: RunConfig, n_examples: int) -> int:
    if cfg.train.max_steps is not None:
        return cfg.train.max_steps
    assert cfg.train.epochs is not None
    return max(1, math.ceil(cfg.train.epochs * n_examples / cfg.train.batch_size))


def batch_order(n_items: int, batch_size: int, steps: int, seed: int) -> list[list[int]]:
    """Epochs of seeded shuffles, cut into batches: the data order is a function of the seed."""
    rng = random.Random(seed)
    stream: list[int] = []
    while len(stream) < batch_size * steps:
        epoch = list(range(n_items))
        rng.shuffle(epoch)
        stream.extend(epoch)
    return [stream[i * batch_size : (i + 1) * batch_size] for i in range(steps)]


def _step_seed(seed: int, step: int) -> int:
    return (seed * 1_000_003 + step) % (2**63)


def peak_memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1e9
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss * (1 if sys.platform == "darwin" else 1024) / 1e9  # bytes on macOS, KiB on Linux


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def _seed_rank(seed: int, rank: int) -> None:
    """Ranks other than 0 draw their own dropout masks once the shared weights are built; rank 0
    keeps the single-process stream."""
    if rank:
        _seed_everything((seed + rank * RANK_SEED_STRIDE) % (2**63))


__all__ = ["Packed", "TrainResult", "batch_order", "total_steps", "train"]
