"""The training loop. Walking-skeleton version: supervised fine-tuning on gold demonstrations.

Read top to bottom: load model and data, build batches, then one optimizer step per iteration,
reporting metrics to the sink and polling the stop signal at every step boundary.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase, get_cosine_schedule_with_warmup

from unisd_core import modeling
from unisd_core.callbacks import MetricSink, StopSignal, never_stop
from unisd_core.config import RunConfig
from unisd_core.data import Example, load_examples
from unisd_core.data.prompts import gold_completion, student_messages

IGNORE_INDEX = -100
MAX_SEQUENCE_TOKENS = 1024
MAX_GRAD_NORM = 1.0


@dataclass(frozen=True)
class TrainResult:
    steps_completed: int
    stopped_early: bool


def train(cfg: RunConfig, sink: MetricSink, stop: StopSignal = never_stop) -> TrainResult:
    """Run `cfg.train.max_steps` optimizer steps (fewer if `stop()` turns true)."""
    _seed_everything(cfg.train.seed)
    examples = load_examples(
        cfg.data.benchmark, source=cfg.data.source, split="train", seed=cfg.train.seed
    )
    loaded = modeling.load(cfg.model)
    model, tokenizer = loaded.model, loaded.tokenizer
    model.train()

    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=0.0)
    max_steps = cfg.train.max_steps
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, num_warmup_steps=math.ceil(0.1 * max_steps), num_training_steps=max_steps
    )
    order = _batch_order(len(examples), cfg.train.batch_size, max_steps, cfg.train.seed)

    for step in range(1, max_steps + 1):
        if stop():
            return TrainResult(steps_completed=step - 1, stopped_early=True)
        started = time.perf_counter()
        batch = sft_batch([examples[i] for i in order[step - 1]], tokenizer)
        loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
        lr = scheduler.get_last_lr()[0]
        optimizer.step()
        scheduler.step()
        elapsed = time.perf_counter() - started
        tokens = int(batch["attention_mask"].sum())
        sink(
            step,
            {
                "loss/total": float(loss.detach()),
                "train/lr": float(lr),
                "train/grad_norm": float(grad_norm),
                "sys/tokens_per_s": tokens / max(elapsed, 1e-9),
            },
        )
    return TrainResult(steps_completed=max_steps, stopped_early=False)


def sft_batch(
    examples: list[Example], tokenizer: PreTrainedTokenizerBase
) -> dict[str, torch.Tensor]:
    """Prompt + gold completion, right-padded; loss only on the completion tokens."""
    rows: list[tuple[list[int], list[int]]] = []
    for example in examples:
        prompt_ids = tokenizer.apply_chat_template(
            student_messages(example), add_generation_prompt=True, tokenize=True, return_dict=False
        )
        completion_ids = tokenizer(
            gold_completion(example) + (tokenizer.eos_token or ""), add_special_tokens=False
        )["input_ids"]
        ids = (list(prompt_ids) + list(completion_ids))[-MAX_SEQUENCE_TOKENS:]
        n_prompt = max(len(ids) - len(completion_ids), 0)
        rows.append((ids, [IGNORE_INDEX] * n_prompt + ids[n_prompt:]))
    width = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for row, (ids, labs) in enumerate(rows):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(labs)] = torch.tensor(labs)
        attention[row, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def _batch_order(n_items: int, batch_size: int, steps: int, seed: int) -> list[list[int]]:
    """Epochs of seeded shuffles, cut into batches: the data order is a function of the seed."""
    rng = random.Random(seed)
    stream: list[int] = []
    while len(stream) < batch_size * steps:
        epoch = list(range(n_items))
        rng.shuffle(epoch)
        stream.extend(epoch)
    return [stream[i * batch_size : (i + 1) * batch_size] for i in range(steps)]


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
