"""Data-parallel training under ``torchrun``: process group, sharding, reductions.

``torchrun --nproc-per-node K -m bkdsl train SPEC`` starts K processes with ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK`` set; :func:`setup` joins the process group (NCCL on GPUs, gloo on CPU) and pins each rank
to ``cuda:LOCAL_RANK``. The model is wrapped in ``DistributedDataParallel``; every rank computes the
same epoch permutation from the seed and takes its share ``order[b·B:(b+1)·B][rank::K]`` of each global
batch of B samples, so the global batch and the data order do not depend on K. Evaluations reduce
(sum, count) pairs across ranks; only rank 0 writes files (metrics, checkpoints, plots, logs). All ranks
read the same checkpoint on ``--resume``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def env_world() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def setup(device: torch.device) -> DistInfo:
    world = env_world()
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    here = False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend)
        here = True
    return DistInfo(rank, world, local, here)


def teardown(info: DistInfo) -> None:
    if info.initialized_here and dist.is_initialized():
        dist.destroy_process_group()


def shard(idx: torch.Tensor, info: DistInfo) -> torch.Tensor:
    return idx[info.rank::info.world] if info.enabled else idx


def all_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_max(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def any_flag(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank when it is true on any rank (a non-finite loss stops all ranks together)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)
