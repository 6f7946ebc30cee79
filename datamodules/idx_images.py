"""Labelled images in MNIST-format IDX files (for example notMNIST), split three ways."""

from __future__ import annotations

from pathlib import Path

import torch.nn.functional as F

from window_cascades.datamodules.idx import read_idx_images_labels
from window_cascades.datamodules.image_sets import ImageSetsDataModule
from window_cascades.datamodules.splits import stratified_split


class IDXDataModule(ImageSetsDataModule):
    """Grey-scale images and labels from two IDX files, split stratified and seeded.

    Images (uint8, 0-255) are scaled to [0, 1] and resized bilinearly to ``image_size``. The
    samples are split per class into train / held-out / test by ``train_fraction`` and
    ``heldout_fraction`` (the test split takes the rest).

    Args:
        images: path of the images file (``*-images-idx3-ubyte[.gz]``).
        labels: path of the labels file (``*-labels-idx1-ubyte[.gz]``).
        datasets: evaluation datasets (see [`ImageSetsDataModule`][]).
        num_classes: number of classes; every label must be below it.
        train_fraction: fraction of each class used for training.
        heldout_fraction: fraction of each class held out for calibration.
        image_size: see the base class.
        split_seed: see the base class.
        batch_size: see the base class.
        num_workers: see the base class.
        train_limit: see the base class.
        augment: see the base class.
    """

    def __init__(
        self,
        images: str,
        labels: str,
        datasets: list[dict],
        num_classes: int = 10,
        image_size: int = 32,
        train_fraction: float = 0.5,
        heldout_fraction: float = 0.2,
        split_seed: int = 0,
        batch_size: int = 64,
        num_workers: int = 0,
        train_limit: int | None = None,
        augment: str = "none",
    ):
        super().__init__(
            datasets, image_size, split_seed, batch_size, num_workers, train_limit, augment
        )
        self.save_hyperparameters()
        for path in (images, labels):
            if not Path(path).is_file():
                raise FileNotFoundError(
                    f"IDX file not found: {path} (expected MNIST-format files such as "
                    "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz)"
                )
        if not (
            0 < train_fraction and 0 < heldout_fraction and train_fraction + heldout_fraction < 1
        ):
            raise ValueError(
                f"train_fraction={train_fraction} and heldout_fraction={heldout_fraction} must "
                "be positive and leave a test split (sum < 1)"
            )
        self.num_classes = num_classes
        self.images_path, self.labels_path = Path(images), Path(labels)
        self.train_fraction, self.heldout_fraction = train_fraction, heldout_fraction

    def _split_description(self) -> str:
        return f"train_fraction={self.train_fraction}, heldout_fraction={self.heldout_fraction}"

    def load_splits(self):
        """The IDX files' images, scaled, resized and split stratified and seeded.

        Returns:
            (images in [0, 1] as N x 1 x S x S, int64 labels, {train, heldout, test: indices}).

        Raises:
            ValueError: A label is negative or not below ``num_classes``.
        """
        raw, labels = read_idx_images_labels(self.images_path, self.labels_path)
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(
                f"{self.labels_path}: labels must be in [0, {self.num_classes - 1}] "
                f"(num_classes={self.num_classes}), found up to {int(labels.max())}"
            )
        images = raw.float().div(255).unsqueeze(1)
        if images.shape[-1] != self.image_size or images.shape[-2] != self.image_size:
            size = (self.image_size, self.image_size)
            images = F.interpolate(images, size=size, mode="bilinear").clamp(0, 1)
        test_fraction = 1 - self.train_fraction - self.heldout_fraction
        train, held, test = stratified_split(
            labels, [self.train_fraction, self.heldout_fraction, test_fraction], self.split_seed
        )
        return images, labels, {"train": train, "heldout": held, "test": test}
