"""Data-parallel training: what the N processes of a multi-GPU run share, and how.

A run with `resources.gpus = N > 1` is N copies of the same trainer, one per GPU, started by
`accelerate launch` (see `unisd_core.launch`). Each process calls `join` and trains through the
`Group` it gets back:

* the data: `train.batch_size` is the global batch (prompts per optimizer step over all GPUs);
  rank r takes the r-th contiguous slice of each step's prompts and cuts it into
  `train.grad_accum` micro-batches of its own;
* the model (`parallelize`): the student is wrapped in DistributedDataParallel, which averages
  gradients across ranks in backward, so clipping, the optimizer, the scheduler and the EMA
  teacher (a function of the student's weights) move identically everywhere. Rollouts, teacher
  scoring and EMA updates use the unwrapped model, which is the same module: no wrapper is in
  their way. With `resources.fsdp` the weights, gradients and optimizer state are sharded
  instead (FSDP2 `fully_shard`, per decoder layer); see `Parallel`;
* the reporting: metrics are combined across ranks (`combine_metrics`) and only rank 0 reports
  them, writes samples and checkpoints, and evaluates.

A process started without a launcher is a group of one whose collectives are identities, so the
single-process path runs the very same code. On CPU the group uses gloo, which is how the tests
run two processes on a machine without GPUs.
"""

from __future__ import annotations

import atexit
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor
from torch.distributed.fsdp import FSDPModule, fully_shard
from torch.distributed.tensor import DTensor, distribute_tensor
from torch.nn.parallel import DistributedDataParallel

from unisd_core import launch
from unisd_core.config import RunConfig
from unisd_core.teachers.ema import matched_pairs

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
    """Leave the group at exit, while the interpreter is still whole.

    NCCL's shutdown joins its threads here. Gloo has no shutdown, and DDP and FSDP keep its
    process group alive past `destroy_process_group`: its worker threads outlive this call and
    drop each finished collective a moment after handing back the result. When the last
    reference to a tensor with a Python object goes with it, that drop takes the GIL, and once
    the interpreter is finalizing, taking the GIL ends the thread, which C++ turns into an abort
    (SIGABRT after a successful run, seen on a loaded 2-core machine). So we wait for the
    workers to be idle first.
    """
    if not dist.is_initialized():
        return
    gloo = dist.get_backend() == "gloo"
    dist.destroy_process_group()
    if gloo:
        _wait_until_idle(GLOO_WORKER_THREAD)


#: The name torch gives gloo's worker threads (what /proc/self/task/*/comm shows).
GLOO_WORKER_THREAD = "pt_gloo_runloop"


def _wait_until_idle(thread_name: str, *, timeout_s: float = 5.0, poll_s: float = 0.002) -> bool:
    """Wait until every thread of this process called `thread_name` is asleep at two polls in a
    row; False at the timeout, or where /proc cannot tell (not Linux).

    Sleeping between polls releases the GIL, so a worker waiting for it to drop a tensor gets
    it, runs and goes back to waiting for work; asleep twice means it is parked there.
    """
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():
        return False
    deadline = time.monotonic() + timeout_s
    asleep_before = False
    while time.monotonic() < deadline:
        time.sleep(poll_s)
        asleep = all(state == "S" for state in _thread_states(tasks, thread_name))
        if asleep and asleep_before:
            return True
        asleep_before = asleep
    return False


def _thread_states(tasks: Path, thread_name: str) -> list[str]:
    """The scheduler states (R, S, D...) of this process's threads called `thread_name`."""
    states = []
    for task in tasks.iterdir():
        try:
            if (task / "comm").read_text().strip() != thread_name:
                continue
            # /proc/PID/stat: "pid (comm) STATE ...": the state follows the closing parenthesis.
            states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
        except OSError:  # the thread ended between listing and reading
            continue
    return states


@dataclass
class Parallel:
    """How the student is spread over the run's processes: alone (a group of one), replicated
    (DDP) or sharded (FSDP, `resources.fsdp`), and the few operations that differ between them.

    Under FSDP every parameter is a DTensor holding this rank's shard. Training forwards gather
    layer by layer and free the rest again; everything else that runs the model (rollouts,
    teacher passes, model-written texts) runs inside `gathered`, where the full weights stay in
    place, because those passes differ in number and length between ranks and a layer-by-layer
    gather would need every rank to run the same forwards.
    """

    group: Group
    #: What the student's training forwards go through (the DDP wrapper, else the student).
    train_model: Any
    #: FSDP only: the sharded models (student, then a full fine-tuning teacher), and every
    #: module that holds its own shards (their decoder layers and the models themselves).
    roots: list[Any] = field(default_factory=list)
    units: list[Any] = field(default_factory=list)
    _gathering: int = field(default=0, init=False, repr=False)  # depth of `gathered` blocks

    @property
    def sharded(self) -> bool:
        return bool(self.roots)

    def gradient_sync(self, *, sync: bool) -> AbstractContextManager[Any]:
        """Context of one micro-batch's forward and backward: gradients are reduced across ranks
        only on the last micro-batch of a step (`sync`); the earlier ones accumulate locally."""
        if self.sharded:
            self.roots[0].set_requires_gradient_sync(sync)
            return nullcontext()
        if not sync and isinstance(self.train_model, DistributedDataParallel):
            return self.train_model.no_sync()
        return nullcontext()

    @contextmanager
    def gathered(self) -> Iterator[None]:
        """The full weights in place on every rank for the block (FSDP; a no-op otherwise).

        A collective: every rank enters it at the same point. Nested blocks gather once.
        """
        if not self.sharded or self._gathering:
            self._gathering += 1
            try:
                yield
            finally:
                self._gathering -= 1
            return
        for root in self.roots:
            root.set_reshard_after_forward(False)
        for unit in self.units:
            unit.unshard()
        self._gathering = 1
        try:
            yield
        finally:
            self._gathering = 0
            for unit in self.units:
                unit.reshard()
            for root in self.roots:  # layers free their weights after forward, roots keep them
                root.set_reshard_after_forward(True)
                root.set_reshard_after_forward(False, recurse=False)

    def grad_norm(self, norm: Tensor) -> float:
        return float(norm.full_tensor() if isinstance(norm, DTensor) else norm)

    def ema_drift(self, nets: Any) -> float:
        """`nets.ema_drift()`, with sharded tensors summed over ranks."""
        if not self.sharded:
            return float(nets.ema_drift())
        if not nets.ema_moves and nets.lora:
            return 0.0
        sums = torch.zeros(2, dtype=torch.float64, device=self.group.device)
        for teacher, student in matched_pairs(*nets.ema_pairs()):
            t, s = _local(teacher).double(), _local(student).double()
            sums[0] += torch.sum((t - s) ** 2)
            sums[1] += torch.sum(s**2)
        dist.all_reduce(sums)
        return float(sums[0].sqrt() / sums[1].sqrt().clamp(min=1e-12))

    # --- checkpoints: full tensors on disk, shards in memory ----------------------------------

    def full_weights(self, nets: Any) -> dict[str, Tensor] | None:
        """FSDP: `nets.changing_state()` as full tensors on rank 0 (a collective; None on the
        other ranks). None when not sharded: the checkpoint reads the networks itself."""
        if not self.sharded:
            return None
        full: dict[str, Tensor] = {}
        for name, tensor in nets.changing_state().items():
            whole = tensor.full_tensor() if isinstance(tensor, DTensor) else tensor
            if self.group.is_main:
                full[name] = whole.cpu()
        return full if self.group.is_main else None

    def full_optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any] | None:
        """FSDP: the optimizer's state dict with full tensors on rank 0 (a collective), in the
        usual layout, so a checkpoint reads like a single process's."""
        if not self.sharded:
            return None
        state = optimizer.state_dict()
        packed: dict[Any, dict[str, Any]] = {}
        for index in sorted(state["state"]):  # the same order on every rank
            packed[index] = {
                key: value.full_tensor().cpu() if isinstance(value, DTensor) else value
                for key, value in state["state"][index].items()
            }
        return {**state, "state": packed} if self.group.is_main else None

    def weights_to_shards(self, nets: Any) -> Callable[[dict[str, Tensor]], dict[str, Tensor]]:
        """For loading a checkpoint: full tensors -> this rank's shards, where the model has
        shards (every rank reads the whole checkpoint)."""
        like = nets.changing_state() if self.sharded else {}

        def to_shards(state: dict[str, Tensor]) -> dict[str, Tensor]:
            return {name: _shard_like(value, like.get(name)) for name, value in state.items()}

        return to_shards

    def shard_optimizer_state(self, optimizer: torch.optim.Optimizer) -> None:
        """After loading a full optimizer state: each sharded parameter's state as shards."""
        if not self.sharded:
            return
        for param, per_param in optimizer.state.items():
            for key, value in list(per_param.items()):
                if isinstance(value, Tensor) and value.shape == param.shape:
                    per_param[key] = _shard_like(value, param)


def _local(tensor: Tensor) -> Tensor:
    return tensor.to_local() if isinstance(tensor, DTensor) else tensor


def _shard_like(value: Tensor, like: Tensor | None) -> Tensor:
    if not isinstance(like, DTensor) or isinstance(value, DTensor):
        return value
    # Every rank holds the full tensor: each keeps its own shard, nothing is sent.
    full = value.to(device=like.to_local().device, dtype=like.dtype)
    return distribute_tensor(full, like.device_mesh, like.placements, src_data_rank=None)


def parallelize(nets: Any, group: Group, *, fsdp: bool) -> Parallel:
    """Spread `nets` over the run: nothing in a group of one, DDP, or FSDP when `fsdp`."""
    if not group.is_distributed:
        return Parallel(group, nets.student)
    if not fsdp:
        wrapped = DistributedDataParallel(
            nets.student,
            device_ids=[group.device] if group.device.type == "cuda" else None,
            find_unused_parameters=has_unused_parameters(nets.student, group.device),
        )
        return Parallel(group, wrapped)
    roots = [_fully_shard(nets.student)]
    if nets.frozen_teacher is not None:  # sharded alike, so EMA pairs up shard with shard
        roots.append(_fully_shard(nets.frozen_teacher))
    units = [m for root in roots for m in root.modules() if isinstance(m, FSDPModule)]
    return Parallel(group, nets.student, roots, units)


def _fully_shard(model: Any) -> Any:
    """Shard each decoder layer (the transformers model's `_no_split_modules`), then the rest;
    returns the sharded transformers model (under LoRA, the one inside the peft wrapper)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    layer_classes = set(getattr(inner, "_no_split_modules", None) or ())
    for module in inner.modules():
        if type(module).__name__ in layer_classes:
            fully_shard(module, reshard_after_forward=True)
    fully_shard(inner, reshard_after_forward=False)  # needed again right away by backward
    return inner


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


__all__ = [
    "COLLECTIVE_TIMEOUT",
    "Group",
    "Parallel",
    "combine_metrics",
    "has_unused_parameters",
    "join",
    "parallelize",
    "visible_gpus",
]
