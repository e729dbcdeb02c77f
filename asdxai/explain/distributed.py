"""Sharding RISE over processes with ``torch.distributed`` (``torchrun``).

Two ways to spread work over ranks:

* **one clip**: the mask blocks are dealt out in rounds; in each round rank r
  computes the per-block sums of its blocks, all ranks ``all_gather`` them and
  add them *in block order* into float64 accumulators. Every rank ends with the
  same state, which is the state a single process reaches (same per-block sums,
  same summation order), so the map is the single-process map.
* **many clips**: clip i goes to rank ``i % world_size`` (:func:`shard`); each
  rank runs plain single-process RISE on its clips.

Backends: NCCL when the device is CUDA, gloo otherwise. ``torchrun`` sets
``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`init_from_env` reads them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

from ..errors import ConfigError

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class DistContext:
    """Rank, world size and backend of an initialised default process group."""

    rank: int
    world_size: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Gather equally shaped tensors from every rank (rank order)."""
        out = [torch.empty_like(tensor) for _ in range(self.world_size)]
        dist.all_gather(out, tensor.contiguous())
        return out

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over ranks in place and return it."""
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def min_int(self, value: int, *, device: torch.device | str = "cpu") -> int:
        """The minimum of an integer over all ranks."""
        buf = torch.tensor([int(value)], dtype=torch.int64, device=device)
        dist.all_reduce(buf, op=dist.ReduceOp.MIN)
        return int(buf.item())

    def broadcast(self, tensor: torch.Tensor, *, src: int = 0) -> torch.Tensor:
        dist.broadcast(tensor, src=src)
        return tensor

    def barrier(self) -> None:
        dist.barrier()


def backend_for(device: torch.device) -> str:
    """NCCL for CUDA devices, gloo otherwise."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def current() -> DistContext | None:
    """The context of an already initialised default group with > 1 rank, else None."""
    if not (dist.is_available() and dist.is_initialized()):
        return None
    world = dist.get_world_size()
    if world <= 1:
        return None
    return DistContext(dist.get_rank(), world, dist.get_backend())


def init_from_env(*, device: torch.device | str = "cpu") -> DistContext | None:
    """Initialise the default process group from ``torchrun``'s environment.

    Returns None when ``WORLD_SIZE`` is unset or 1 (single process). With CUDA,
    each process uses ``cuda:LOCAL_RANK``; pass the device that resolves to.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    ctx = current()
    if ctx is not None:
        return ctx
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    device = torch.device(device)
    backend = backend_for(device)
    if backend == "nccl":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)
    ctx = DistContext(dist.get_rank(), dist.get_world_size(), backend)
    log.info("rank %d of %d (%s)", ctx.rank, ctx.world_size, backend)
    return ctx


def local_device(device: torch.device | str) -> torch.device:
    """Under torchrun, map a bare ``cuda`` device to ``cuda:LOCAL_RANK``."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def env_rank() -> tuple[int, int]:
    """(rank, world size) ``torchrun`` gives this process, before any group exists ((0, 1)
    outside ``torchrun``)."""
    return int(os.environ.get("RANK", "0")), max(int(os.environ.get("WORLD_SIZE", "1")), 1)


def shard(items: Sequence[T], ctx: DistContext | None) -> list[T]:
    """The items of this rank: ``items[rank::world_size]`` (all of them without a context)."""
    if ctx is None:
        return list(items)
    return list(items[ctx.rank :: ctx.world_size])


def shutdown(ctx: DistContext | None) -> None:
    """Destroy the default group if this module created one."""
    if ctx is not None and dist.is_initialized():
        dist.destroy_process_group()
