"""The embedded default: scikit-learn's handwritten digits, upsampled for timm models.

scikit-learn ships 1,797 real 8x8 grey-scale digit images (values 0-16) inside the package, so
the quick start needs no download. They are scaled to [0, 1], upsampled bilinearly to
``image_size``, and split, stratified and seeded, into test / held-out / train; the held-out
calibration split is carved from the training data. Evaluation sets (held-out, ID test,
corrupted test copies, OOD sets) are named, with roles, in the config.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from datamodules.corruptions import corrupt
from datamodules.ood import OOD_SOURCES
from datamodules.samplers import UnpaddedDistributedSampler, distributed
from datamodules.specs import DatasetSpec, parse_dataset_specs
from datamodules.splits import stratified_split

DEFAULT_DATASETS = [
    {"name": "digits_heldout", "role": "heldout", "source": "heldout"},
    {"name": "digits_test", "role": "id", "source": "test"},
    {"name": "digits_noise", "role": "shift", "source": "test", "corruption": "gaussian_noise"},
    {"name": "digits_blur", "role": "shift", "source": "test", "corruption": "gaussian_blur"},
    {"name": "photo_patches", "role": "ood", "source": "photo_patches"},
]


class IndexedImages(Dataset):
    """(image, target, index) triples from tensors; images normalised on access."""

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, mean: float, std: float):
        self.images, self.targets, self.mean, self.std = images, targets, mean, std

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int):
        return (self.images[i] - self.mean) / self.std, self.targets[i], i


def load_digits_images(image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 digits as (N, 1, image_size, image_size) floats in [0, 1] and int64 labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images).float().div(16).unsqueeze(1)
    images = F.interpolate(images, size=(image_size, image_size), mode="bilinear")
    return images.clamp(0, 1), torch.from_numpy(digits.target).long()


class DigitsDataModule(LightningDataModule):
    """scikit-learn digits with a seeded held-out split, corrupted copies and OOD sets.

    Args:
        datasets: evaluation datasets, each a mapping with ``name``, ``role``
            (heldout/id/shift/ood), ``source`` (heldout/test/photo_patches/uniform_noise) and
            optionally ``corruption``, ``severity`` (1-5) and ``size`` (OOD images).
        image_size: side of the upsampled square images, in pixels.
        test_fraction: fraction of all images in the ID test split.
        heldout_fraction: fraction of the remaining (training) images held out for calibration.
        split_seed: seed of the stratified splits, corruptions and OOD generators.
        batch_size: batch size of every dataloader.
        num_workers: dataloader worker processes.
        train_limit: optional cap on the number of training images (for quick tests).
    """

    num_classes = 10
    in_chans = 1
    mean, std = 0.5, 0.5

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
    ):
        super().__init__()
        self.save_hyperparameters()
        self.specs: list[DatasetSpec] = parse_dataset_specs(
            DEFAULT_DATASETS if datasets is None else datasets
        )
        for name, frac in (
            ("test_fraction", test_fraction),
            ("heldout_fraction", heldout_fraction),
        ):
            if not 0 < frac < 1:
                raise ValueError(f"{name} must be in (0, 1), got {frac}")
        self.eval_sets: dict[str, Dataset] = {}
        self.train_set: Dataset | None = None

    @property
    def roles(self) -> dict[str, str]:
        """Dataset name -> role, in config order."""
        return {s.name: s.role for s in self.specs}

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        hp = self.hparams
        images, labels = load_digits_images(hp.image_size)
        test_idx, rest_idx = stratified_split(
            labels, [hp.test_fraction, 1 - hp.test_fraction], hp.split_seed
        )
        held_rel, train_rel = stratified_split(
            labels[rest_idx], [hp.heldout_fraction, 1 - hp.heldout_fraction], hp.split_seed + 1
        )
        splits = {"test": test_idx, "heldout": rest_idx[held_rel], "train": rest_idx[train_rel]}
        for split, idx in splits.items():
            if idx.numel() == 0:
                raise ValueError(
                    f"the {split} split is empty (test_fraction={hp.test_fraction}, "
                    f"heldout_fraction={hp.heldout_fraction} of {labels.numel()} images); "
                    "choose fractions that leave samples in every split"
                )
        train_idx = splits["train"][: hp.train_limit] if hp.train_limit else splits["train"]
        self.train_set = self._wrap(images[train_idx], labels[train_idx])
        for spec in self.specs:
            if spec.source in OOD_SOURCES:
                x = OOD_SOURCES[spec.source](spec.size, hp.image_size, hp.split_seed + 7)
                y = torch.full((x.shape[0],), -1, dtype=torch.long)
            else:
                x, y = images[splits[spec.source]], labels[splits[spec.source]]
            if spec.corruption is not None:
                x = corrupt(x, spec.corruption, int(spec.severity), hp.split_seed)
            self.eval_sets[spec.name] = self._wrap(x, y)

    def _wrap(self, x: torch.Tensor, y: torch.Tensor) -> IndexedImages:
        return IndexedImages(x, y, self.mean, self.std)

    def _eval_loader(self, dataset: Dataset) -> DataLoader:
        sampler = UnpaddedDistributedSampler(dataset) if distributed() else None
        return DataLoader(
            dataset,
            batch_size=self.hparams.batch_size,
            shuffle=False,
            sampler=sampler,
            num_workers=self.hparams.num_workers,
        )

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_set,
            batch_size=self.hparams.batch_size,
            shuffle=True,
            drop_last=len(self.train_set) > self.hparams.batch_size,
            num_workers=self.hparams.num_workers,
        )

    def val_dataloader(self) -> DataLoader:
        """The held-out split, used for validation (checkpoint selection) during fit."""
        return self.dataloader(self.heldout_name)

    def dataloader(self, name: str) -> DataLoader:
        """Unpadded evaluation dataloader of the dataset called ``name``."""
        if name not in self.eval_sets:
            raise KeyError(f"no dataset named {name!r}; configured: {list(self.roles)}")
        return self._eval_loader(self.eval_sets[name])

    @property
    def heldout_name(self) -> str:
        """Name of the dataset with role ``heldout``."""
        return next(s.name for s in self.specs if s.role == "heldout")

    @property
    def eval_names(self) -> list[str]:
        """Names of all evaluation datasets, in config order."""
        return [s.name for s in self.specs]

    def test_dataloader(self) -> list[DataLoader]:
        """One dataloader per configured dataset, in config order (held-out included)."""
        return [self.dataloader(n) for n in self.eval_names]

    def predict_dataloader(self) -> list[DataLoader]:
        return self.test_dataloader()
