"""Synthetic corruptions for distribution shift, deterministic per sample.

Images are float tensors in [0, 1] of shape (N, C, H, W). Sample i of a corrupted set is
always the same for the same seed: its random numbers come from a generator seeded with
(seed, i), where i = ``first_index`` + position in the batch (datasets that corrupt one image
at a time pass the sample's index). Severities run 1 (mild) to 5 (strong); the noise, JPEG
and pixelation levels follow ImageNet-C (Hendrycks & Dietterich, 2019).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF

NOISE_SIGMA = (0.08, 0.12, 0.18, 0.26, 0.38)
"""Gaussian noise's standard deviation per severity 1-5 (pixel values in [0, 1])."""
BLUR_SIGMA = (0.5, 0.75, 1.0, 1.5, 2.0)
"""Gaussian blur's sigma per severity 1-5, in pixels at 32 px (scaled with the image size)."""
CONTRAST = (0.85, 0.7, 0.55, 0.4, 0.25)
"""The contrast kept per severity 1-5 (1 leaves an image as it is)."""
SHOT_PHOTONS = (60.0, 25.0, 12.0, 5.0, 3.0)
"""Shot noise's photons per unit of intensity per severity 1-5 (fewer: noisier)."""
JPEG_QUALITY = (25, 18, 15, 10, 7)
"""JPEG quality per severity 1-5."""
PIXELATE = (0.6, 0.5, 0.4, 0.3, 0.25)
"""The size kept before scaling back, per severity 1-5 (a fraction of the side)."""


def _generator(seed: int, index: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + index)


def gaussian_noise(
    images: torch.Tensor, severity: int, seed: int, first_index: int = 0
) -> torch.Tensor:
    """Add N(0, sigma^2) pixel noise, sigma from [`NOISE_SIGMA`][], and clip to [0, 1].

    Args:
        images: Images in [0, 1], shape (N, C, H, W).
        severity: The corruption's strength, 1 (mild) to 5 (strong).
        seed: The corrupted set's seed; sample i draws its random numbers from (seed, i).
        first_index: The index of the first image in the set (i = first_index + position).

    Returns:
        The corrupted images, same shape and dtype, in [0, 1].
    """
    sigma = NOISE_SIGMA[severity - 1]
    out = torch.empty_like(images)
    for i, img in enumerate(images):
        gen = _generator(seed, first_index + i)
        out[i] = img + sigma * torch.randn(img.shape, generator=gen)
    return out.clamp(0, 1)


def shot_noise(
    images: torch.Tensor, severity: int, seed: int, first_index: int = 0
) -> torch.Tensor:
    """Poisson photon noise: Poisson(x * lambda) / lambda, lambda from [`SHOT_PHOTONS`][].

    Args:
        images: Images in [0, 1], shape (N, C, H, W).
        severity: The corruption's strength, 1 (mild) to 5 (strong).
        seed: The corrupted set's seed; sample i draws its random numbers from (seed, i).
        first_index: The index of the first image in the set (i = first_index + position).

    Returns:
        The corrupted images, same shape and dtype, in [0, 1].
    """
    lam = SHOT_PHOTONS[severity - 1]
    out = torch.empty_like(images)
    for i, img in enumerate(images):
        out[i] = torch.poisson(img * lam, generator=_generator(seed, first_index + i)) / lam
    return out.clamp(0, 1)


def jpeg(images: torch.Tensor, severity: int, seed: int, first_index: int = 0) -> torch.Tensor:
    """JPEG compression at the quality in [`JPEG_QUALITY`][] (deterministic).

    Args:
        images: Images in [0, 1], shape (N, C, H, W).
        severity: The corruption's strength, 1 (mild) to 5 (strong).
        seed: The corrupted set's seed; sample i draws its random numbers from (seed, i).
        first_index: The index of the first image in the set (i = first_index + position).

    Returns:
        The corrupted images, same shape and dtype, in [0, 1].
    """
    from torchvision.io import decode_jpeg, encode_jpeg

    quality = JPEG_QUALITY[severity - 1]
    out = torch.empty_like(images)
    for i, img in enumerate(images):
        data = encode_jpeg(img.mul(255).round().to(torch.uint8), quality=quality)
        out[i] = decode_jpeg(data).float().div(255)
    return out


def pixelate(images: torch.Tensor, severity: int, seed: int, first_index: int = 0) -> torch.Tensor:
    """Box-downsample by the factor in [`PIXELATE`][], then upsample with nearest neighbours.

    Args:
        images: Images in [0, 1], shape (N, C, H, W).
        severity: The corruption's strength, 1 (mild) to 5 (strong).
        seed: The corrupted set's seed; sample i draws its random numbers from (seed, i).
        first_index: The index of the first image in the set (i = first_index + position).

    Returns:
        The corrupted images, same shape and dtype, in [0, 1].
    """
    h, w = images.shape[-2:]
    f = PIXELATE[severity - 1]
    small = F.interpolate(images, size=(max(int(h * f), 1), max(int(w * f), 1)), mode="area")
    return F.interpolate(small, size=(h, w), mode="nearest")


def gaussian_blur(
    images: torch.Tensor, severity: int, seed: int, first_index: int = 0
) -> torch.Tensor:
    """Gaussian blur with sigma from [`BLUR_SIGMA`][] (deterministic; ``seed`` unused).

    Args:
        images: Images in [0, 1], shape (N, C, H, W).
        severity: The corruption's strength, 1 (mild) to 5 (strong).
        seed: The corrupted set's seed; sample i draws its random numbers from (seed, i).
        first_index: The index of the first image in the set (i = first_index + position).

    Returns:
        The corrupted images, same shape and dtype, in [0, 1].
    """
    sigma = BLUR_SIGMA[severity - 1] * images.shape[-1] / 32
    k = 2 * math.ceil(3 * sigma) + 1
    return TF.gaussian_blur(images, kernel_size=[k, k], sigma=[sigma, sigma])


def contrast(images: torch.Tensor, severity: int, seed: int, first_index: int = 0) -> torch.Tensor:
    """Shrink each image towards its mean by the factor in [`CONTRAST`][].

    Args:
        images: Images in [0, 1], shape (N, C, H, W).
        severity: The corruption's strength, 1 (mild) to 5 (strong).
        seed: The corrupted set's seed; sample i draws its random numbers from (seed, i).
        first_index: The index of the first image in the set (i = first_index + position).

    Returns:
        The corrupted images, same shape and dtype, in [0, 1].
    """
    c = CONTRAST[severity - 1]
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return ((images - mean) * c + mean).clamp(0, 1)


CORRUPTIONS = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "gaussian_blur": gaussian_blur,
    "contrast": contrast,
    "jpeg": jpeg,
    "pixelate": pixelate,
}
"""The corruptions by name, as the datamodules' shifted sets name them."""


def corrupt(
    images: torch.Tensor, name: str, severity: int, seed: int, first_index: int = 0
) -> torch.Tensor:
    """Apply corruption ``name`` at ``severity`` (1-5) to images in [0, 1], (N, C, H, W).

    Args:
        images: Images in [0, 1], shape (N, C, H, W).
        name: A key of [`CORRUPTIONS`][] (e.g. ``"gaussian_noise"``).
        severity: The corruption's strength, 1 (mild) to 5 (strong).
        seed: The corrupted set's seed; sample i draws its random numbers from (seed, i).
        first_index: The index of the first image in the set (i = first_index + position).

    Returns:
        The corrupted images, same shape and dtype, in [0, 1].

    Raises:
        ValueError: ``name`` is not a known corruption or ``severity`` is not 1-5.
    """
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; expected one of {sorted(CORRUPTIONS)}")
    if not 1 <= severity <= 5:
        raise ValueError(f"corruption severity must be 1-5, got {severity}")
    return CORRUPTIONS[name](images, severity, seed, first_index)
