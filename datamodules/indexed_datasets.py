"""The datasets the image datamodules serve: (image, target, index) triples from tensors,
normalised on access, and the same read from image files, with each sample's file."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from window_cascades.datamodules.contract import UNREADABLE


class IndexedImages(Dataset):
    """(image, target, index) triples from tensors; images normalised on access.

    Args:
        images: Images in [0, 1], shape (N, C, H, W).
        targets: Labels, shape (N,) (-1 where unlabelled).
        mean: The normalisation's mean (one value for every channel).
        std: The normalisation's standard deviation.
    """

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, mean: float, std: float):
        self.images, self.targets, self.mean, self.std = images, targets, mean, std

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int):
        return (self.images[i] - self.mean) / self.std, self.targets[i], i


class IndexedFiles(IndexedImages):
    """[`IndexedImages`][] read from image files, with each sample's file (``path(i)``), so
    a prediction can be matched to its file.

    ``unreadable``: sample -> the error of a file that could not be decoded (read for
    ``predict`` only; a blank image stands in for it). Accessing such a sample raises that
    error, or, with ``skip_unreadable`` (set by the predictions writer unless strict), gives
    the blank image with target [`UNREADABLE`][window_cascades.datamodules.contract.UNREADABLE].

    Args:
        images: Images in [0, 1], shape (N, C, H, W).
        targets: Labels, shape (N,) (-1 where unlabelled).
        mean: The normalisation's mean.
        std: The normalisation's standard deviation.
        paths: Each sample's image file, in order.
        unreadable: Sample index -> the error of its file, for files that could not be decoded.
    """

    def __init__(self, images, targets, mean, std, paths: list, unreadable: dict | None = None):
        super().__init__(images, targets, mean, std)
        self.paths = [str(p) for p in paths]
        self.unreadable = dict(unreadable or {})
        self.skip_unreadable = False

    def path(self, i: int) -> str:
        """The image file of sample ``i``.

        Args:
            i: The sample's index.
        """
        return self.paths[i]

    def __getitem__(self, i: int):
        if i in self.unreadable:
            if not self.skip_unreadable:
                raise self.unreadable[i]
            target = torch.tensor(UNREADABLE, dtype=self.targets.dtype)  # collated as a tensor
            return (self.images[i] - self.mean) / self.std, target, i
        return super().__getitem__(i)
