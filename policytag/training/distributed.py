"""Multi-process training (``torchrun --nproc-per-node N`` / ``accelerate launch``).

``policytag train`` runs unchanged under both launchers: the Hugging Face ``Trainer`` in
:mod:`policytag.training.trainer` wraps the model in DDP (gloo on CPU, NCCL on GPU), every
process sees the same seed, each rank trains on its share of every batch and only rank 0
writes the model directory. The helpers here are what the command needs around that:
the launcher's rank variables, one GPU per process, one output directory for all ranks,
and output printed once.
"""

from __future__ import annotations

import os
from typing import Any


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def rank() -> int:
    return int(os.environ.get("RANK", "0") or 0)


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0") or 0)


def is_distributed() -> bool:
    """True inside a process started by ``torchrun`` / ``accelerate launch`` with more than one process."""
    return world_size() > 1


def is_main_process() -> bool:
    return rank() == 0


def rank_device(device: str) -> str:
    """``cuda`` becomes this process's own GPU (``cuda:LOCAL_RANK``) under a multi-process launch.

    Without it every rank would put its frozen-layer pass and its post-training predictions
    on GPU 0. Other values are returned unchanged.
    """
    if device == "cuda" and is_distributed():
        try:
            import torch

            n = torch.cuda.device_count()
        except ImportError:  # pragma: no cover - torch is a dependency
            n = 0
        if n > 0:
            dev = f"cuda:{local_rank() % n}"
            torch.cuda.set_device(dev)
            return dev
    return device


#: seconds a rank waits for the others; set from ``training.ddp_timeout`` by the trainer
DDP_TIMEOUT_S = 1800


def set_timeout(seconds: float | None) -> None:
    global DDP_TIMEOUT_S
    if seconds:
        DDP_TIMEOUT_S = int(seconds)


def _ensure_process_group() -> bool:
    """Join the launcher's process group (the same one the Trainer uses) if not joined yet.

    The timeout is explicit (``training.ddp_timeout``): on a loaded machine one rank can be
    minutes behind the other (importing torch, building the base-model cache)."""
    import datetime

    import torch.distributed as dist

    if not dist.is_available():
        return False
    if not dist.is_initialized():
        from accelerate import PartialState

        # reads the launcher's env: gloo on CPU, nccl on GPU
        PartialState(timeout=datetime.timedelta(seconds=DDP_TIMEOUT_S))
    return dist.is_initialized()


def shutdown() -> None:
    """End a multi-process run cleanly: wait for every rank, then destroy the process group.

    Without it the ranks exit whenever they are done and tear the group down implicitly at
    interpreter exit; a rank that is still in (or starts) a collective when its peer has
    gone fails with gloo's "connection closed by peer". Leaving together removes that
    timing dependence (a suspect for the two-process test's one SIGABRT on a loaded machine,
    not a proven cause). A no-op otherwise."""
    if not is_distributed():
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def same_on_all_ranks(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (e.g. an output directory named after the time).

    A no-op in a single process.
    """
    if not is_distributed() or not _ensure_process_group():
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if is_distributed() and _ensure_process_group():
        import torch.distributed as dist

        dist.barrier()


class main_process_first:  # noqa: N801 - used as a context manager
    """Rank 0 runs the block first (e.g. writes a base model into the cache), the others after it.

    Without it every rank of a fresh machine would build the same cached base model at
    once. A no-op in a single process.
    """

    def __enter__(self):
        if is_distributed() and not is_main_process():
            barrier()
        return self

    def __exit__(self, *exc):
        if is_distributed() and is_main_process():
            barrier()
        return False
