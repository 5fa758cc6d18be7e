"""Data-parallel training: what the N processes of a multi-GPU run share, and how.

A run with `resources.gpus = N > 1` is N copies of the same trainer, one per GPU, started by
`accelerate launch` (see `unisd_core.launch`). Each process calls `join` and trains through the
`Group` it gets back:

* the data: `train.batch_size` is the global batch (prompts per optimizer step over all GPUs);
  rank r takes the r-th contiguous slice of each step's prompts and cuts it into
  `train.grad_accum` micro-batches of its own;
* the model: the student is wrapped in DistributedDataParallel, which averages gradients across
  ranks in backward, so clipping, the optimizer, the scheduler and the EMA teacher (a function of
  the student's weights) move identically everywhere. Rollouts, teacher scoring and EMA updates
  use the unwrapped model, which is the same module: no wrapper is in their way;
* the reporting: metrics are combined across ranks (`combine_metrics`) and only rank 0 reports
  them, writes samples and checkpoints, and evaluates.

A process started without a launcher is a group of one whose collectives are identities, so the
single-process path runs the very same code. On CPU the group uses gloo, which is how the tests
run two processes on a machine without GPUs.
"""

from __future__ import annotations

import atexit
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from unisd_core import launch
from unisd_core.config import RunConfig

T = TypeVar("T")

#: How long a rank may wait in a collective. Rank 0 writes checkpoints while the others wait at
#: a barrier, and a large full fine-tuning checkpoint can take minutes: the launchers' defaults
#: (10 min for NCCL) would kill a healthy run.
COLLECTIVE_TIMEOUT = timedelta(minutes=60)
#: Metrics summed over ranks (counts); `sys/` metrics take the slowest rank; the rest are means.
SUMMED_METRICS = frozenset({"_tokens"})


@dataclass(frozen=True)
class Group:
    """This process's place in the run: its rank among `world_size`, and the device it trains on."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's contiguous slice of a step's items (the config makes them divide evenly)."""
        if len(items) % self.world_size:
            raise ValueError(f"{len(items)} items do not split evenly over {self.world_size} ranks")
        size = len(items) // self.world_size
        return list(items[self.rank * size : (self.rank + 1) * size])

    # --- collectives (identities in a group of one) --------------------------------------------

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on one: ranks must agree on when to stop, or the
        ones that go on wait forever for the ones that left."""
        if not self.is_distributed:
            return flag
        value = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def barrier(self) -> None:
        if self.is_distributed:
            dist.barrier()

    def gather(self, value: T) -> list[T]:
        """Every rank's `value` (picklable), in rank order, on every rank."""
        if not self.is_distributed:
            return [value]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out

    def broadcast(self, value: T) -> T:
        """Rank 0's `value` on every rank (what the others pass is ignored)."""
        if not self.is_distributed:
            return value
        box: list[Any] = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def reduce_metrics(self, metrics: Mapping[str, float]) -> dict[str, float]:
        """One step's metrics for the whole run (see `combine_metrics`)."""
        if not self.is_distributed:
            return dict(metrics)
        return combine_metrics(self.gather(dict(metrics)))


def combine_metrics(per_rank: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Combine each rank's metrics of one step: counts add up, times and memory take the slowest
    rank, and everything else (losses, diagnostics) is the mean over the ranks that report it.

    Ranks hold equal shares of the batch, so the mean of their per-rank means is the batch mean
    for every metric that is itself a mean over the rank's sequences.
    """
    combined: dict[str, float] = {}
    keys = list(dict.fromkeys(key for metrics in per_rank for key in metrics))
    for key in keys:
        values = [float(metrics[key]) for metrics in per_rank if key in metrics]
        if key in SUMMED_METRICS:
            combined[key] = sum(values)
        elif key.startswith("sys/"):
            combined[key] = max(values)
        else:
            combined[key] = sum(values) / len(values)
    return combined


def visible_gpus() -> int:
    """GPUs this process could start processes on (what `unisd train` checks before launching)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def join(cfg: RunConfig, device: torch.device) -> Group:
    """This process's group: a group of one unless a launcher started several processes.

    Raises ValueError when the launch and the config disagree on the number of processes, which
    would silently change how the batch is split.
    """
    world = launch.world_size()
    gpus = cfg.resources.gpus
    if world == 1:
        if gpus > 1:
            raise ValueError(
                f"resources.gpus={gpus} trains with one process per GPU: start it with "
                f"`unisd train`, which launches them, or by hand: {launch.train_hint(gpus)}"
            )
        return Group(device=device)
    if world != gpus:
        raise ValueError(
            f"launched as {world} processes but resources.gpus is {gpus}: they must agree, "
            "because the global batch is split over the processes"
        )
    if device.type == "cuda":
        device = torch.device("cuda", launch.local_rank())
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if device.type == "cuda" else "gloo",
            timeout=COLLECTIVE_TIMEOUT,
            device_id=device if device.type == "cuda" else None,
        )
        atexit.register(_leave)
    return Group(rank=dist.get_rank(), world_size=dist.get_world_size(), device=device)


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def data_parallel(model: Any, group: Group) -> Any:
    """The module the student's training forwards go through: DDP across ranks, else the model."""
    if not group.is_distributed:
        return model
    return DistributedDataParallel(
        model,
        device_ids=[group.device] if group.device.type == "cuda" else None,
        find_unused_parameters=has_unused_parameters(model, group.device),
    )


def has_unused_parameters(model: Any, device: torch.device) -> bool:
    """Whether a forward leaves some trainable tensor out of the graph (a head or an adapter on a
    module a causal-LM forward never reaches, experts a short input is not routed to).

    DDP must then be told to look for them at every step, or its gradient reduction waits for
    them forever; looking costs a graph walk per step, so only models that need it pay. A
    two-token forward reaches at most what a real batch does, so it errs on the safe side.
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # dropout here must not shift the run's RNG
        out = model(input_ids=torch.tensor([[0, 1]], device=device), use_cache=False)
        out.logits.float().sum().backward()
    unused = any(p.grad is None for p in trainable)
    for p in trainable:
        p.grad = None
    return unused


def gradient_sync(model: Any, *, sync: bool) -> AbstractContextManager[Any]:
    """Context of one micro-batch's forward and backward: DDP reduces gradients only on the last
    micro-batch of a step (`sync`); the earlier ones accumulate locally."""
    if not sync and isinstance(model, DistributedDataParallel):
        return model.no_sync()
    return nullcontext()


__all__ = [
    "COLLECTIVE_TIMEOUT",
    "Group",
    "combine_metrics",
    "data_parallel",
    "gradient_sync",
    "has_unused_parameters",
    "join",
    "visible_gpus",
]
