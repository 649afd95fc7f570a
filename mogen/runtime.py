"""Where and how code runs: device choice, CPU threads, the torchrun process group.

Below both training and sampling, so neither has to import the other for these.

Examples
--------
>>> pick_device("cpu").type
'cpu'
>>> setup_distributed(pick_device("cpu")) if "RANK" not in os.environ else (0, 1)
(0, 1)
"""

from __future__ import annotations

import os

import torch

from mogen.errors import UsageError

DEVICES = ("auto", "cpu", "cuda", "mps")


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: the local CUDA device (per torchrun rank), else Apple MPS, else CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}; use one of {', '.join(DEVICES)} (or e.g. cuda:1)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {name!r} asked for, but this torch build sees no CUDA GPU; use --device cpu")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UsageError(f"device {name!r} asked for, but MPS is not available here; use --device cpu")
    return device


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def set_threads(threads: int) -> None:
    """Torch CPU threads (0: leave torch's default)."""
    if threads < 0:
        raise UsageError(f"threads must be >= 0 (0: torch's default), got {threads}")
    if threads:
        torch.set_num_threads(threads)


def setup_distributed(device: torch.device) -> tuple[int, int]:
    """Join the process group when launched by torchrun; returns ``(rank, world_size)``.

    NCCL on GPUs, gloo on CPUs (so multi-process training can be tested without a GPU).
    """
    import torch.distributed as dist

    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()
