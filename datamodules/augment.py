"""Seeded training augmentation for in-memory image sets: a small random affine warp.

Glyphs and digits differ in position, slant and size from one writer or font to the next; a
random rotation, shift and scaling of each training image teaches that invariance and keeps
larger networks from memorising 5,000 images in a few epochs. Each sample's warp is a pure
function of (member seed, epoch, sample index), so a resumed job sees the very same images,
whatever the dataloader worker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

AUGMENTATIONS = ("none", "affine")


@dataclass(frozen=True)
class AffineRange:
    """The range each random warp is drawn from, uniformly.

    Attributes:
        degrees: largest rotation, in degrees, either way.
        translate: largest shift along each axis, as a fraction of the image side.
        scale: (smallest, largest) zoom factor; > 1 enlarges the content.
    """

    degrees: float = 10.0
    translate: float = 0.08
    scale: tuple[float, float] = (0.9, 1.1)


def random_affine(
    images: torch.Tensor, generator: torch.Generator, bounds: AffineRange = AffineRange()
) -> torch.Tensor:
    """Warp each image of an (N, C, H, W) batch by its own random affine transform.

    Rotation, shift and zoom are drawn uniformly from ``bounds``; sampling is bilinear, and
    pixels from outside the image are 0 (the background of glyph images in [0, 1]).

    Args:
        images: Images in [0, 1], shape (N, C, H, W).
        generator: The random generator the warps are drawn with.
        bounds: The range of rotation, shift and zoom.

    Returns:
        The warped images, same shape.
    """
    n = images.shape[0]
    u = torch.rand(n, 4, generator=generator) * 2 - 1  # each in [-1, 1)
    angle = u[:, 0] * math.radians(bounds.degrees)
    lo, hi = bounds.scale
    zoom = lo + (u[:, 1] + 1) / 2 * (hi - lo)
    shift = u[:, 2:] * 2 * bounds.translate  # affine_grid coordinates span 2 per side
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [torch.stack([cos, -sin, -shift[:, 0]], 1), torch.stack([sin, cos, -shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class AugmentedImages(Dataset):
    """(warped and normalised image, target, index) triples; warp seeded by (seed, epoch, index).

    Args:
        images: (N, C, H, W) float images in [0, 1].
        targets: (N,) int64 labels.
        mean: normalisation mean, applied after the warp.
        std: normalisation standard deviation, applied after the warp.
        seed: the member's seed.
        bounds: the range of the warps.
    """

    def __init__(self, images, targets, mean: float, std: float, seed: int, bounds=AffineRange()):
        self.images, self.targets, self.mean, self.std = images, targets, mean, std
        self.seed, self.bounds, self.epoch = seed, bounds, 0

    def __len__(self) -> int:
        return self.images.shape[0]

    def set_epoch(self, epoch: int) -> None:
        """Called by the training sampler at the start of every epoch.

        Args:
            epoch: The epoch starting (the warps of each epoch differ).
        """
        self.epoch = epoch

    def __getitem__(self, i: int):
        generator = torch.Generator().manual_seed(hash((self.seed, self.epoch, int(i))) % 2**63)
        x = random_affine(self.images[i : i + 1], generator, self.bounds)[0]
        return (x - self.mean) / self.std, self.targets[i], i
