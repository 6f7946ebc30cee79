"""A distributed sampler for evaluation that never pads with duplicates."""

from __future__ import annotations

import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler


class UnpaddedDistributedSampler(DistributedSampler):
    """Rank r gets samples r, r + W, r + 2W, ... (W = world size), with no padding.

    ``torch.utils.data.DistributedSampler`` repeats samples so that every rank gets the same
    count, which would count those samples twice in evaluation metrics. Subclassing it keeps
    Lightning from replacing this sampler with its own.

    Args:
        dataset: The evaluation set.
        num_replicas: The world size W; None takes the process group's.
        rank: This process's rank r; None takes the process group's.
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


def evaluation_loader(dataset: Dataset, batch_size: int, num_workers: int) -> DataLoader:
    """The loader of an evaluation set: in order, and split over the processes without padding
    when several run ([`UnpaddedDistributedSampler`][]).

    Args:
        dataset: The evaluation set.
        batch_size: Samples per batch.
        num_workers: The loader's worker processes.

    Returns:
        The loader.
    """
    sampler = UnpaddedDistributedSampler(dataset) if distributed() else None
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=False, sampler=sampler, num_workers=num_workers
    )


class ResumableShuffleSampler(DistributedSampler):
    """Training order that is a pure function of (seed, epoch, rank) and can resume mid-epoch.

    The permutation of epoch e is ``torch.randperm`` under seed ``seed + e`` (as in
    ``DistributedSampler``), sharded over ranks, so a restarted job sees exactly the order the
    interrupted one would have seen. [`resume_at`][] skips the samples this rank already
    consumed in that epoch; it applies to one pass only. Being a ``DistributedSampler``, Lightning
    keeps it under DDP instead of wrapping it.

    Args:
        dataset: The training set.
        seed: The seed of every epoch's permutation (epoch e uses ``seed + e``).
        num_replicas: The world size.
        rank: This process's rank.
    """

    def __init__(self, dataset: Dataset, seed: int, num_replicas: int = 1, rank: int = 0):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Lightning calls this each epoch; datasets with per-epoch augmentation follow it.

        Args:
            epoch: The epoch starting.
        """
        super().set_epoch(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def resume_at(self, epoch: int, samples_done: int) -> None:
        """Skip this rank's first ``samples_done`` samples when epoch ``epoch`` runs.

        Args:
            epoch: The epoch to resume.
            samples_done: The samples this rank had consumed in that epoch.
        """
        self._resume = (epoch, samples_done)

    def __iter__(self):
        indices = list(super().__iter__())
        if self._resume is not None and self._resume[0] == self.epoch:
            indices = indices[self._resume[1] :]
            self._resume = None
        return iter(indices)
