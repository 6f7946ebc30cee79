"""Synthetic corruptions for distribution shift, deterministic per sample.

Images are float tensors in [0, 1] of shape (N, C, H, W). Sample i of a corrupted set is
always the same for the same seed: its random numbers come from a generator seeded with
(seed, i). Severities run 1 (mild) to 5 (strong).
"""

from __future__ import annotations

import math

import torch
import torchvision.transforms.functional as TF

NOISE_SIGMA = (0.08, 0.12, 0.18, 0.26, 0.38)
BLUR_SIGMA = (0.5, 0.75, 1.0, 1.5, 2.0)  # in pixels at 32 px, scaled with the image size
CONTRAST = (0.85, 0.7, 0.55, 0.4, 0.25)


def gaussian_noise(images: torch.Tensor, severity: int, seed: int) -> torch.Tensor:
    """Add N(0, sigma^2) pixel noise, sigma from :data:`NOISE_SIGMA`, and clip to [0, 1]."""
    sigma = NOISE_SIGMA[severity - 1]
    out = torch.empty_like(images)
    for i, img in enumerate(images):
        gen = torch.Generator().manual_seed(seed * 1_000_003 + i)
        out[i] = img + sigma * torch.randn(img.shape, generator=gen)
    return out.clamp(0, 1)


def gaussian_blur(images: torch.Tensor, severity: int, seed: int) -> torch.Tensor:
    """Gaussian blur with sigma from :data:`BLUR_SIGMA` (deterministic; ``seed`` unused)."""
    sigma = BLUR_SIGMA[severity - 1] * images.shape[-1] / 32
    k = 2 * math.ceil(3 * sigma) + 1
    return TF.gaussian_blur(images, kernel_size=[k, k], sigma=[sigma, sigma])


def contrast(images: torch.Tensor, severity: int, seed: int) -> torch.Tensor:
    """Shrink each image towards its mean by the factor in :data:`CONTRAST`."""
    c = CONTRAST[severity - 1]
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return ((images - mean) * c + mean).clamp(0, 1)


CORRUPTIONS = {
    "gaussian_noise": gaussian_noise,
    "gaussian_blur": gaussian_blur,
    "contrast": contrast,
}


def corrupt(images: torch.Tensor, name: str, severity: int, seed: int) -> torch.Tensor:
    """Apply corruption ``name`` at ``severity`` (1-5) to images in [0, 1]."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; expected one of {sorted(CORRUPTIONS)}")
    if not 1 <= severity <= 5:
        raise ValueError(f"corruption severity must be 1-5, got {severity}")
    return CORRUPTIONS[name](images, severity, seed)
