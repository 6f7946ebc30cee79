"""Out-of-distribution image sets that need no download.

- ``photo_patches``: grey-scale crops of the two photographs that ship with scikit-learn
  (``load_sample_images``: a temple in China and a flower), real natural-image content.
- ``uniform_noise``: smoothed uniform noise.
- ``digits``: scikit-learn's 1,797 handwritten digits, scaled to [0, 1] and resized (an OOD
  set for letter datasets such as notMNIST); ``num`` is capped at 1,797.

Both return float tensors in [0, 1] of shape (N, 1, size, size), deterministic in ``seed``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def photo_patches(num: int, size: int, seed: int) -> torch.Tensor:
    """``num`` random square crops (side 48-128 px) of scikit-learn's sample photos.

    Args:
        num: How many images.
        size: The images' side, in pixels.
        seed: The seed of the draw.

    Returns:
        Greyscale images in [0, 1], shape (num, 1, size, size).
    """
    from sklearn.datasets import load_sample_images

    photos = [
        torch.tensor(img, dtype=torch.float32).mean(dim=-1) / 255
        for img in load_sample_images().images
    ]
    gen = torch.Generator().manual_seed(seed)
    out = torch.empty(num, 1, size, size)
    for i in range(num):
        photo = photos[int(torch.randint(len(photos), (1,), generator=gen))]
        side = int(torch.randint(48, 129, (1,), generator=gen))
        top = int(torch.randint(photo.shape[0] - side + 1, (1,), generator=gen))
        left = int(torch.randint(photo.shape[1] - side + 1, (1,), generator=gen))
        crop = photo[top : top + side, left : left + side][None, None]
        out[i] = F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True)[0]
    return out.clamp(0, 1)


def uniform_noise(num: int, size: int, seed: int) -> torch.Tensor:
    """Uniform noise on a coarse 8x8 grid, upsampled bilinearly (blob-like images).

    Args:
        num: How many images.
        size: The images' side, in pixels.
        seed: The seed of the draw.

    Returns:
        Greyscale images in [0, 1], shape (num, 1, size, size).
    """
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(num, 1, 8, 8, generator=gen)
    return F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def digits(num: int, size: int, seed: int) -> torch.Tensor:
    """The first ``num`` of scikit-learn's digits (all 1,797 at most), resized to ``size``.

    Args:
        num: How many images (at most 1,797).
        size: The images' side, in pixels.
        seed: Unused: the digits are taken in their order (kept for the common signature).

    Returns:
        Greyscale images in [0, 1], shape (min(num, 1797), 1, size, size).
    """
    from sklearn.datasets import load_digits

    images = torch.from_numpy(load_digits().images[:num]).float().div(16).unsqueeze(1)
    return F.interpolate(images, size=(size, size), mode="bilinear").clamp(0, 1)


OOD_SOURCES = {"photo_patches": photo_patches, "uniform_noise": uniform_noise, "digits": digits}
"""The generated OOD sets by name, as a config's ``source`` names them."""
