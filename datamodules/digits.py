"""The embedded default: scikit-learn's handwritten digits, upsampled for timm models.

scikit-learn ships 1,797 real 8x8 grey-scale digit images (values 0-16) inside the package, so
the quick start needs no download. They are scaled to [0, 1], upsampled bilinearly to
``image_size``, and split, stratified and seeded, into test / held-out / train; the held-out
split (what calibration fits the cascade on) is carved from the training data.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from window_cascades.datamodules.image_sets import ImageSetsDataModule
from window_cascades.datamodules.splits import stratified_split

DEFAULT_DATASETS = [
    {"name": "digits_heldout", "role": "heldout", "source": "heldout"},
    {"name": "digits_test", "role": "id", "source": "test"},
    {"name": "digits_noise", "role": "shift", "source": "test", "corruption": "gaussian_noise"},
    {"name": "digits_blur", "role": "shift", "source": "test", "corruption": "gaussian_blur"},
    {"name": "photo_patches", "role": "ood", "source": "photo_patches"},
]


def load_digits_images(image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 digits as (N, 1, image_size, image_size) floats in [0, 1] and int64 labels.

    Args:
        image_size: The side of the upsampled square images, in pixels.

    Returns:
        (the images, the labels 0-9).
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images).float().div(16).unsqueeze(1)
    images = F.interpolate(images, size=(image_size, image_size), mode="bilinear")
    return images.clamp(0, 1), torch.from_numpy(digits.target).long()


class DigitsDataModule(ImageSetsDataModule):
    """scikit-learn digits with a seeded held-out split, corrupted copies and OOD sets.

    Args:
        datasets: evaluation datasets (see [`ImageSetsDataModule`][]); default: held-out,
            test, two corrupted test copies and ``photo_patches``.
        image_size: side of the upsampled square images, in pixels.
        test_fraction: fraction of all images in the ID test split.
        heldout_fraction: fraction of the remaining (training) images held out for calibration.
        split_seed: see [`ImageSetsDataModule`][].
        batch_size: see [`ImageSetsDataModule`][].
        num_workers: see [`ImageSetsDataModule`][].
        train_limit: see [`ImageSetsDataModule`][].
        augment: see [`ImageSetsDataModule`][].
    """

    def __init__(
        self,
        datasets: list[dict] | None = None,
        image_size: int = 32,
        test_fraction: float = 0.25,
        heldout_fraction: float = 0.2,
        split_seed: int = 0,
        batch_size: int = 64,
        num_workers: int = 0,
        train_limit: int | None = None,
        augment: str = "none",
    ):
        super().__init__(
            DEFAULT_DATASETS if datasets is None else datasets,
            image_size,
            split_seed,
            batch_size,
            num_workers,
            train_limit,
            augment,
        )
        self.save_hyperparameters()
        for name, frac in (
            ("test_fraction", test_fraction),
            ("heldout_fraction", heldout_fraction),
        ):
            if not 0 < frac < 1:
                raise ValueError(f"{name} must be in (0, 1), got {frac}")
        self.test_fraction, self.heldout_fraction = test_fraction, heldout_fraction

    def _split_description(self) -> str:
        return f"test_fraction={self.test_fraction}, heldout_fraction={self.heldout_fraction}"

    def load_splits(self):
        """The digits, split stratified and seeded into test, then train and held-out.

        Returns:
            (images in [0, 1] as N x 1 x S x S, int64 labels, {train, heldout, test: indices}).
        """
        images, labels = load_digits_images(self.image_size)
        test_idx, rest_idx = stratified_split(
            labels, [self.test_fraction, 1 - self.test_fraction], self.split_seed
        )
        held_rel, train_rel = stratified_split(
            labels[rest_idx],
            [self.heldout_fraction, 1 - self.heldout_fraction],
            self.split_seed + 1,
        )
        splits = {"test": test_idx, "heldout": rest_idx[held_rel], "train": rest_idx[train_rel]}
        return images, labels, splits
