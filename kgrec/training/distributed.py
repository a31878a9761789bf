"""Distributed data-parallel training launched by ``torchrun``: process group, rank helpers, DDP wrapper.

``torchrun --nproc_per_node=N -m kgrec train ...`` starts N processes with ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK`` (plus ``MASTER_ADDR``/``MASTER_PORT``) in their environment. :func:`init` reads them and
joins the process group: backend ``gloo`` on the CPU, ``nccl`` on CUDA with device ``cuda:LOCAL_RANK``.
Without those variables nothing happens (:func:`init` returns ``None``) and every helper below acts as
the single process it is: ``rank() == 0``, ``world_size() == 1``, reductions return their input.

The trainer (:func:`kgrec.training.trainer.fit_pairwise`) reads :func:`context` and, when a group is up:

* wraps the module in :class:`~torch.nn.parallel.DistributedDataParallel` through :class:`PairwiseLoss`,
  whose ``forward`` is the estimator's ``batch_loss``, so DDP's gradient hooks average gradients;
* draws the same permutation on every rank (same seed) and gives rank ``r`` the shard :func:`shard`
  (``DistributedSampler`` semantics: padded by repeating the start so every rank runs the same number
  of steps). ``batch_size`` is **per rank**: the global batch is ``world_size * batch_size``, and a
  step is the same as one process's step on that concatenated batch (DDP averages the gradients of
  per-rank mean losses). Keep ``lr`` when comparing with one process at ``world_size * batch_size``;
* seeds the negative sampler and torch's training RNG (dropout, CKE's KG triples) with
  ``seed + rank`` (rank 0 draws what a single process draws);
* validates on rank 0 and broadcasts the metrics, so every rank keeps the same best state and stops
  at the same epoch; only rank 0 logs and writes checkpoints.

Closed-form models (EASE, ItemKNN, MostPop) have no gradient steps to share: under ``torchrun`` the
command line lets rank 0 fit and write them alone and the other ranks exit at once with status 0.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterator

import torch
import torch.distributed as dist
from torch import Tensor, nn

from kgrec.errors import DistributedError

__all__ = ["DistContext", "launched", "launch_env", "init", "context", "shutdown", "session", "is_main", "rank",
           "world_size", "barrier", "all_reduce_sum", "broadcast_object", "shard", "PairwiseLoss", "wrap"]

BACKENDS = ("auto", "gloo", "nccl")
_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the group.

    Args:
        rank: global rank, ``0 <= rank < world``.
        world: number of processes.
        local_rank: rank on this node (the GPU index under NCCL).
        backend: ``"gloo"`` or ``"nccl"``.
        device: the device this rank trains on (``cpu`` or ``cuda:local_rank``).
    """

    rank: int
    world: int
    local_rank: int
    backend: str
    device: torch.device


_CTX: DistContext | None = None
_OWNED = False  # whether init() started the process group (shutdown() ends only that one)


def launched() -> bool:
    """True when the process was started by ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` set)."""
    return all(k in os.environ for k in _ENV)


def _env_int(name: str) -> int:
    raw = os.environ[name]
    try:
        return int(raw)
    except ValueError:
        raise DistributedError(f"environment variable {name} must be an integer (got {raw!r}); "
                               "start the processes with torchrun") from None


def launch_env() -> tuple[int, int, int]:
    """``(RANK, WORLD_SIZE, LOCAL_RANK)`` of a torchrun launch, checked; :class:`DistributedError` if malformed."""
    rank, world, local = (_env_int(k) for k in _ENV)
    if world < 1:
        raise DistributedError(f"WORLD_SIZE must be >= 1 (got {world})")
    if not 0 <= rank < world:
        raise DistributedError(f"RANK must be in [0, WORLD_SIZE={world}) (got {rank})")
    if local < 0:
        raise DistributedError(f"LOCAL_RANK must be >= 0 (got {local})")
    for k in ("MASTER_ADDR", "MASTER_PORT"):
        if k not in os.environ:
            raise DistributedError(f"environment variable {k} is not set: start the processes with torchrun "
                                   "(it sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT)")
    return rank, world, local


def _choose(backend: str, device: str, local: int) -> tuple[str, torch.device]:
    """The backend and this rank's device from the requested ones (see :func:`init`)."""
    if backend not in BACKENDS:
        raise DistributedError(f"'backend' must be one of {', '.join(BACKENDS)} (got {backend!r})")
    if device not in ("auto", "cpu") and not str(device).startswith("cuda"):
        raise DistributedError(f"'device' must be 'auto', 'cpu' or 'cuda' under torchrun (got {device!r})")
    cuda = torch.cuda.is_available()
    if backend == "auto":
        backend = "nccl" if (device != "cpu" and cuda) else "gloo"
    if backend == "gloo":
        if str(device).startswith("cuda"):
            raise DistributedError(f"'device' {device!r} with backend 'gloo': kgrec trains gloo groups on the "
                                   "CPU; use backend 'nccl' for GPUs")
        return backend, torch.device("cpu")
    if device == "cpu":
        raise DistributedError("backend 'nccl' needs CUDA tensors but 'device' is 'cpu': use backend 'gloo'")
    if not cuda:
        raise DistributedError("backend 'nccl' needs CUDA but torch.cuda.is_available() is False on this "
                               "machine: use backend 'gloo' (CPU) or a CUDA build of torch")
    if local >= torch.cuda.device_count():
        raise DistributedError(f"LOCAL_RANK {local} has no GPU: this node has {torch.cuda.device_count()}; "
                               "start at most that many processes per node (--nproc_per_node)")
    return backend, torch.device("cuda", local)


def init(backend: str = "auto", device: str = "auto", timeout_s: float = 1800.0) -> DistContext | None:
    """Join the ``torchrun`` process group; ``None`` (and nothing done) when not launched by torchrun.

    Args:
        backend: ``"auto"`` (``nccl`` when CUDA is available and ``device`` is not ``"cpu"``, else
            ``gloo``), ``"gloo"`` (CPU training) or ``"nccl"`` (GPU ``cuda:LOCAL_RANK``).
        device: the model's ``device`` setting (``"auto"``, ``"cpu"``, ``"cuda"``); under NCCL each rank
            takes ``cuda:LOCAL_RANK`` whatever index is given.
        timeout_s: how long a collective waits for the other ranks before failing.

    Raises:
        DistributedError: an unknown backend, NCCL without CUDA, more local ranks than GPUs, or a
            malformed torchrun environment.
    """
    global _CTX, _OWNED
    if not launched():
        return None
    if _CTX is not None:
        return _CTX
    rank_, world, local = launch_env()
    backend, dev = _choose(backend, device, local)
    if not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend, init_method="env://", rank=rank_, world_size=world,
                                timeout=timedelta(seconds=timeout_s),
                                device_id=dev if dev.type == "cuda" else None)
        _OWNED = True
    _CTX = DistContext(rank_, world, local, backend, dev)
    return _CTX


def context() -> DistContext | None:
    """The group this process is in (``None`` when single-process).

    A group started outside kgrec (``dist.init_process_group`` in the user's script) is used too:
    NCCL groups train on ``cuda:LOCAL_RANK``, others on the CPU.
    """
    if _CTX is not None:
        return _CTX
    if dist.is_available() and dist.is_initialized():
        backend = dist.get_backend()
        local = int(os.environ.get("LOCAL_RANK", 0))
        dev = torch.device("cuda", local) if backend == "nccl" else torch.device("cpu")
        return DistContext(dist.get_rank(), dist.get_world_size(), local, backend, dev)
    return None


def shutdown() -> None:
    """Leave the group :func:`init` started (a group the caller started is left to the caller)."""
    global _CTX, _OWNED
    if _OWNED and dist.is_initialized():
        dist.destroy_process_group()
    _CTX, _OWNED = None, False


@contextlib.contextmanager
def session(backend: str = "auto", device: str = "auto") -> Iterator[DistContext | None]:
    """Initialise the process group on entry (:func:`init`) and shut it down on exit, even on error:
    ``with session(...) as ctx:``.
    """
    try:
        yield init(backend, device)
    finally:
        shutdown()


def rank() -> int:
    ctx = context()
    return 0 if ctx is None else ctx.rank


def world_size() -> int:
    ctx = context()
    return 1 if ctx is None else ctx.world


def is_main() -> bool:
    """True on rank 0 and in a single process: the rank that logs and writes files."""
    return rank() == 0


def barrier() -> None:
    if context() is not None:
        dist.barrier()


def all_reduce_sum(value: float) -> float:
    """The sum of ``value`` over all ranks (``value`` itself in a single process)."""
    ctx = context()
    if ctx is None:
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item())


def broadcast_object(obj=None, src: int = 0):
    """Rank ``src``'s ``obj`` (any picklable value) on every rank; ``obj`` itself in a single process."""
    ctx = context()
    if ctx is None:
        return obj
    box = [obj if ctx.rank == src else None]
    dist.broadcast_object_list(box, src=src, device=ctx.device if ctx.device.type == "cuda" else None)
    return box[0]


def shard(perm: Tensor, rank_: int, world: int) -> Tensor:
    """Rank ``rank_``'s share of a permutation, as ``torch.utils.data.DistributedSampler`` cuts it.

    The permutation is padded by repeating its start to ``ceil(n / world) * world`` entries and
    rank ``r`` takes entries ``r, r + world, ...``; so step ``k`` of all ranks together covers
    ``perm[k * world * b:(k + 1) * world * b]``, one process's step ``k`` at batch ``world * b``.

    Shapes: perm ``[n]`` -> ``[ceil(n / world)]``.
    """
    if world < 1 or not 0 <= rank_ < world:
        raise DistributedError(f"'rank' must be in [0, world={world}) (got {rank_})")
    n = perm.numel()
    if n == 0:
        return perm
    total = math.ceil(n / world) * world
    if total > n:
        reps = math.ceil((total - n) / n)
        perm = torch.cat([perm, perm.repeat(reps)[: total - n]])
    return perm[rank_::world]


class PairwiseLoss(nn.Module):
    """A pairwise estimator's ``batch_loss`` as a module, so DDP sees its forward and its parameters.

    Args:
        est: a built :class:`~kgrec.models.base.PairwiseEstimator`; its ``module`` becomes the
            submodule ``model`` (parameters shared, not copied).

    Shapes: users ``[B]``, pos ``[B]``, neg ``[B]`` or ``[B, n]`` -> scalar loss.
    """

    def __init__(self, est):
        super().__init__()
        self.model = est.module
        self._est = (est,)  # a tuple: not registered as a submodule

    def forward(self, users: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        return self._est[0].batch_loss(users, pos, neg)


def unused_parameters(est, users: Tensor, pos: Tensor) -> list[str]:
    """Names of trainable parameters a loss step leaves without a gradient (one probe step).

    The probe uses the positives as negatives (no sampler draw) under a forked RNG, then clears
    the gradients, so training continues exactly as without it.
    """
    module = est.module
    devices = [users.device.index or 0] if users.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        est.batch_loss(users, pos, pos).backward()
    names = [n for n, p in module.named_parameters() if p.requires_grad and p.grad is None]
    module.zero_grad(set_to_none=True)
    return names


def wrap(est, ctx: DistContext, users: Tensor, pos: Tensor) -> nn.Module:
    """``DistributedDataParallel(PairwiseLoss(est))``; the call ``ddp(u, p, neg)`` is one rank's loss.

    ``find_unused_parameters`` (a graph walk every step) is switched on only when a probe step on
    ``users``/``pos`` (a few training pairs, on ``ctx.device``) leaves a trainable parameter
    unused, or when the estimator fine-tunes a text encoder (users without text skip it). The
    constructor broadcasts rank 0's weights, so every rank starts from the same state.
    """
    find_unused = bool(getattr(est, "tunes_text", False)) or bool(unused_parameters(est, users, pos))
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(PairwiseLoss(est), device_ids=ids, find_unused_parameters=find_unused)
