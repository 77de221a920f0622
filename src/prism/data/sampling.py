"""Epoch ordering that can resume mid-epoch exactly and shards across processes."""
from __future__ import annotations

import torch
from torch.utils.data import Sampler


def sample_seed(run_seed: int, epoch: int, index: int) -> int:
    return (run_seed * 1_000_003 + epoch * 100_003 + index * 7919) % (2**62)


class ResumableSampler(Sampler):
    """Yields (index, augmentation seed) for this rank's share of the epoch, from `start`.

    The order is a pure function of (seed, epoch), so a resumed run skips the samples it has
    already seen without loading them. `length` != dataset size over- or under-samples (the
    permutation is repeated or truncated), which unpaired tasks use to balance two domains.
    """

    def __init__(self, dataset_size: int, seed: int = 0, shuffle: bool = True, rank: int = 0,
                 world_size: int = 1, length: int | None = None):
        if dataset_size <= 0:
            raise ValueError("cannot sample from an empty dataset")
        self.n, self.seed, self.shuffle = dataset_size, seed, shuffle
        self.rank, self.world = rank, world_size
        self.length = length or dataset_size
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def order(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 7 + self.epoch)
        reps = -(-self.length // self.n)
        parts = [torch.randperm(self.n, generator=g) if self.shuffle else torch.arange(self.n) for _ in range(reps)]
        full = torch.cat(parts)[: self.length]
        full = torch.cat([full, full[: (-len(full)) % self.world]])  # equal share per rank
        return full[self.rank::self.world].tolist()

    def __len__(self) -> int:
        return -(-self.length // self.world)

    def __iter__(self):
        for index in self.order()[self.start:]:
            yield index, sample_seed(self.seed, self.epoch, index)
