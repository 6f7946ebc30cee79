"""A distributed sampler for evaluation that never pads with duplicates."""

from __future__ import annotations

import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler


class UnpaddedDistributedSampler(DistributedSampler):
    """Rank r gets samples r, r + W, r + 2W, ... (W = world size), with no padding.

    ``torch.utils.data.DistributedSampler`` repeats samples so that every rank gets the same
    count, which would count those samples twice in evaluation metrics. Subclassing it keeps
    Lightning from replacing this sampler with its own.
    """

    def __init__(self, dataset: Dataset, num_replicas: int | None = None, rank: int | None = None):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)
        self.num_samples = len(range(self.rank, len(dataset), self.num_replicas))
        self.total_size = len(dataset)

    def __iter__(self):
        return iter(range(self.rank, self.total_size, self.num_replicas))

    def __len__(self) -> int:
        return self.num_samples


def distributed() -> bool:
    """True when a torch.distributed process group with more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
