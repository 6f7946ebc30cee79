"""Image datasets on disk (ImageNet, CIFAR, image folders, HF datasets, IDX) for timm models.

Preprocessing (``window_cascades.datamodules.prepared_images``) follows the model's timm data config
(input size, crop fraction, interpolation, mean/std; each overridable): training uses
RandomResizedCrop + horizontal flip (the paper's recipe), evaluation resizes to
``size / crop_pct`` and centre-crops ``size``. Corruptions are applied after cropping, before
normalisation, deterministically per sample. Training augmentation is seeded per (member seed,
epoch, sample), so a resumed job sees the very same crops. The held-out split is
carved from the training source by a fixed seeded permutation (``heldout_size`` images, e.g.
50,000 for ImageNet).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from torchvision import transforms as T

from window_cascades.datamodules.corruptions import corrupt
from window_cascades.datamodules.image_sets import ImageSetsDataModule
from window_cascades.datamodules.image_sources import LabelledImages, open_source
from window_cascades.datamodules.ood_sets import OOD_SOURCES
from window_cascades.datamodules.prepared_images import (
    INTERPOLATIONS,
    GeneratedImages,
    TransformedImages,
    eval_transform,
    timm_data_config,
)


def same_source(a: dict, a_split: str, b: dict, b_split: str) -> bool:
    """Whether two source entries read the same images (format, path and, where the format has
    splits, split; ``*_split`` are the defaults each entry is opened with).

    Args:
        a: A source entry, ``{format, path, split?, ...}``.
        a_split: The split ``a`` is opened with when it names none.
        b: Another source entry.
        b_split: The split ``b`` is opened with when it names none.

    Returns:
        True when both read the same images.
    """
    if not (isinstance(a, dict) and isinstance(b, dict)) or a.get("format") != b.get("format"):
        return False
    if Path(str(a.get("path"))).resolve() != Path(str(b.get("path"))).resolve():
        return False
    return a.get("format") in ("image_folder", "idx") or a.get("split", a_split) == b.get(
        "split", b_split
    )


def check_heldout_size(heldout_size: float) -> float:
    """The images held out of ``train``: a fraction in (0, 1) or a whole number of images (a
    clear error naming the value otherwise).

    Args:
        heldout_size: A fraction in (0, 1) or a whole number of images >= 1.

    Returns:
        ``heldout_size`` as given.

    Raises:
        ValueError: Neither a fraction in (0, 1) nor a whole number >= 1.
    """
    if (
        isinstance(heldout_size, bool)
        or not isinstance(heldout_size, (int, float))
        or not math.isfinite(heldout_size)
        or heldout_size <= 0
        or (heldout_size >= 1 and heldout_size != int(heldout_size))
    ):
        raise ValueError(
            "heldout_size must be a fraction in (0, 1) or a whole number of images, got "
            f"{heldout_size!r}"
        )
    return heldout_size


class ImageFilesDataModule(ImageSetsDataModule):
    """Train / held-out / test splits and evaluation sets read from files, for timm models.

    Args:
        train: the training source, ``{format, path, split?, ...}`` (see ``image_sources``).
        test: the ID test source (e.g. ImageNet ``val``).
        datasets: evaluation sets (see ``ImageSetsDataModule``); ``source: path`` reads
            ``format``/``path``/``split`` (ImageNet-C/-R, OpenImage-O, iNaturalist, Textures...).
        num_classes: number of classes; the training source must have as many.
        preprocess_as: timm model whose data config sets the preprocessing (None: 224 px,
            crop 0.875, bicubic, ImageNet mean/std).
        input_size: override of that config's input size.
        crop_pct: override of its crop fraction.
        interpolation: override of its interpolation.
        mean: override of its mean.
        std: override of its standard deviation.
        in_chans: 3 (RGB) or 1 (grey).
        heldout_size: images held out of ``train`` for calibration: a count, or a fraction < 1.
        augment: ``rrc_flip`` (RandomResizedCrop + flip) or ``none`` (evaluation transform).
        split_seed: see ``ImageSetsDataModule``.
        batch_size: see ``ImageSetsDataModule``.
        num_workers: see ``ImageSetsDataModule``.
        train_limit: see ``ImageSetsDataModule``.
    """

    def __init__(
        self,
        train: dict,
        test: dict,
        datasets: list[dict],
        num_classes: int,
        preprocess_as: str | None = None,
        input_size: int | None = None,
        crop_pct: float | None = None,
        interpolation: str | None = None,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        in_chans: int = 3,
        heldout_size: float = 0.1,
        augment: str = "rrc_flip",
        split_seed: int = 0,
        batch_size: int = 64,
        num_workers: int = 4,
        train_limit: int | None = None,
    ):
        cfg = timm_data_config(preprocess_as)
        size = input_size or cfg["input_size"][-1]
        super().__init__(datasets, size, split_seed, batch_size, num_workers, train_limit)
        self.save_hyperparameters()
        if augment not in ("rrc_flip", "none"):
            raise ValueError(f"augment must be 'rrc_flip' or 'none', got {augment!r}")
        interp = interpolation or cfg["interpolation"]
        if interp not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {list(INTERPOLATIONS)}, got {interp!r}")
        if in_chans not in (1, 3):
            raise ValueError(f"in_chans must be 1 or 3, got {in_chans}")
        self.num_classes, self.in_chans = num_classes, in_chans
        if same_source(
            train, "train", test, "val" if train.get("format") == "imagenet" else "test"
        ):
            raise ValueError(
                f"train and test read the same images ({test}): the test split would measure "
                "the training data; point test at held-back images (e.g. ImageNet val)"
            )
        self.train_source, self.test_source = train, test
        self.heldout_size, self.augment = check_heldout_size(heldout_size), augment
        self.crop_pct = crop_pct or cfg["crop_pct"]
        self.norm_mean = list(mean or (cfg["mean"] if in_chans == 3 else [0.5]))
        self.norm_std = list(std or (cfg["std"] if in_chans == 3 else [0.5]))
        for name, values in (("mean", self.norm_mean), ("std", self.norm_std)):
            if len(values) != in_chans:
                raise ValueError(f"{name} must have {in_chans} value(s) (in_chans), got {values}")
        if min(self.norm_std) <= 0:
            raise ValueError(f"std must be positive, got {self.norm_std}")
        self.interpolation, mode = interp, INTERPOLATIONS[interp]
        self.eval_transform = eval_transform(size, self.crop_pct, interp)
        augmented = [T.RandomResizedCrop(size, interpolation=mode), T.RandomHorizontalFlip()]
        self.train_transform = (
            T.Compose([*augmented, T.ToTensor()]) if augment == "rrc_flip" else self.eval_transform
        )

    @property
    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) per channel of the served images (the timm data config's or given)."""
        return tuple(map(float, self.norm_mean)), tuple(map(float, self.norm_std))

    def _split_train(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        held = (
            int(round(self.heldout_size * n)) if self.heldout_size < 1 else int(self.heldout_size)
        )
        if not 0 < held < n:
            raise ValueError(
                f"heldout_size={self.heldout_size} leaves no held-out or no training images "
                f"out of the {n} in {self.train_source.get('path')}"
            )
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.split_seed))
        return order[held:].sort().values, order[:held].sort().values

    def _labels_for(self, source: LabelledImages, classes: list[str], role: str) -> list[int]:
        if role in ("ood", "ood_val"):
            return [-1] * len(source)
        if not source.classes or source.classes == classes:
            return list(source.labels)
        index = {c: k for k, c in enumerate(classes)}
        unknown = sorted(set(source.classes) - set(index))
        if unknown:
            raise ValueError(f"{source.where}: classes {unknown[:5]} are not training classes")
        return [index[source.classes[y]] if y >= 0 else -1 for y in source.labels]

    def setup(self, stage: str | None = None) -> None:
        """Open the sources, split the held-out images off ``train`` and build every set (once).

        Args:
            stage: Lightning's stage (``"fit"``, ``"test"``, ``"predict"``, ...).
        """
        if self.train_set is not None:
            return
        train = open_source(self.train_source, "train")
        if train.classes and len(train.classes) != self.num_classes:
            raise ValueError(
                f"{train.where}: {len(train.classes)} classes, but num_classes={self.num_classes}"
            )
        test = open_source(
            self.test_source, "val" if self.train_source["format"] == "imagenet" else "test"
        )
        train_idx, held_idx = self._split_train(len(train))
        if self.train_limit:
            train_idx = train_idx[: self.train_limit]
        common = (self.norm_mean, self.norm_std, "RGB" if self.in_chans == 3 else "L")
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
        self.train_set = TransformedImages(
            train,
            train_idx.tolist(),
            self.train_transform,
            *common,
            augment_seed=seed if self.augment != "none" else None,
        )
        splits = {
            "heldout": (train, held_idx.tolist()),
            "test": (test, list(range(len(test)))),
            "train": (train, train_idx.tolist()),  # the training images, unaugmented
        }
        for spec in self.specs:
            if spec.source in OOD_SOURCES:
                x = OOD_SOURCES[spec.source](spec.size, self.image_size, self.split_seed + 7)
                if spec.corruption is not None:
                    x = corrupt(x, spec.corruption, int(spec.severity), self.split_seed)
                self.eval_sets[spec.name] = GeneratedImages(x, self.in_chans, *common[:2])
                continue
            if spec.source == "path":
                entry = {"format": spec.format, "path": spec.path, "labels": spec.labels}
                if spec.split:
                    entry["split"] = spec.split
                source = open_source(entry, "test")
                indices = list(range(len(source)))
            else:
                source, indices = splits[spec.source]
            labels = self._labels_for(source, train.classes, spec.role)
            self.eval_sets[spec.name] = TransformedImages(
                source,
                indices,
                self.eval_transform,
                *common,
                corruption=spec.corruption,
                severity=int(spec.severity),
                seed=self.split_seed,
                labels=[labels[j] for j in indices],
            )
