"""Process-group set-up for torchrun and a sampler that can resume mid-epoch."""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler


@dataclass
class DistInfo:
    """Rank, world size and device of this process (world_size 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup_distributed(device_name: str) -> DistInfo:
    """Join the torchrun process group (WORLD_SIZE > 1) and pick this process's device.

    Backend: NCCL on CUDA devices, gloo on the CPU. With "cuda", each process takes the
    GPU of its LOCAL_RANK.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))

    if device_name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"train.device={device_name!r} but CUDA is not available: "
                               "use train.device=cpu")
        index = local_rank if device_name == "cuda" else int(device_name.split(":")[1])
        device = torch.device("cuda", index)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")

    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistInfo(rank, world_size, local_rank, device)


def cleanup_distributed():
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo):
    if info.distributed:
        dist.barrier()


def all_ranks_agree(flag: bool, info: DistInfo) -> bool:
    """Return True only when flag is True on every rank."""
    if not info.distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item() > 0.5)


class ResumableSampler(DistributedSampler):
    """DistributedSampler whose epoch order can start at a given position (for --resume).

    The order of an epoch depends only on (seed, epoch), as in DistributedSampler.
    """

    def __init__(self, dataset, num_replicas: int, rank: int, seed: int, shuffle: bool = True):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle,
                         seed=seed, drop_last=True)
        self.start_index = 0

    def set_start(self, index: int):
        """Skip the first index samples of this rank in the current epoch (once)."""
        self.start_index = index

    def __iter__(self):
        indices = list(super().__iter__())
        start, self.start_index = self.start_index, 0
        return iter(indices[start:])
