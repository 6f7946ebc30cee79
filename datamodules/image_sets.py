"""The shared part of the image datamodules: splits, named evaluation sets, dataloaders.

A subclass says how to load its labelled images and split them (train / held-out / test);
this class builds the configured evaluation datasets from them (the held-out and test splits,
corrupted copies of them, generated OOD sets), normalises images on access, and serves
unpadded evaluation dataloaders. Images are kept as float tensors in [0, 1], (N, 1, S, S).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.functional import pil_to_tensor

from window_cascades.datamodules.augment import AUGMENTATIONS, AugmentedImages
from window_cascades.datamodules.corruptions import corrupt
from window_cascades.datamodules.image_decoding import (
    ImageTooLargeError,
    UnreadableImageError,
    to_mode,
)
from window_cascades.datamodules.image_sources import open_source
from window_cascades.datamodules.indexed_datasets import IndexedFiles, IndexedImages
from window_cascades.datamodules.ood_sets import OOD_SOURCES
from window_cascades.datamodules.samplers import (
    ResumableShuffleSampler,
    evaluation_loader,
)
from window_cascades.datamodules.specs import DatasetSpec, parse_dataset_specs
from window_cascades.vocabulary.roles import DatasetRoles


class ImageSetsDataModule(LightningDataModule):
    """Base class: subclasses implement [`load_splits`][]. Implements the data contract
    (``window_cascades.datamodules.contract.CascadeDataModule``).

    Args:
        datasets: evaluation datasets, each a mapping with ``name``, ``role``
            (heldout/id/shift/ood), ``source`` (heldout/test, an OOD generator, or ``path``:
            files on disk in any ``image_sources`` format, read into this module's tensors) and
            optionally ``corruption``, ``severity`` (1-5) and ``size`` (OOD images).
        image_size: side of the square images given to the models, in pixels.
        split_seed: seed of the stratified splits, corruptions and OOD generators.
        batch_size: batch size of every dataloader.
        num_workers: dataloader worker processes.
        train_limit: optional cap on the number of training images (for quick tests).
        augment: training augmentation: ``none``, or ``affine`` (a random rotation, shift and
            zoom per image, seeded by member seed, epoch and sample; see
            ``window_cascades.datamodules.augment``).
    """

    num_classes = 10
    in_chans = 1
    mean, std = 0.5, 0.5
    crop_pct = 1.0  # the fraction of each source image an evaluation image shows: all of it
    interpolation = "bilinear"  # how images are resized to image_size

    def __init__(
        self,
        datasets: list[dict],
        image_size: int = 32,
        split_seed: int = 0,
        batch_size: int = 64,
        num_workers: int = 0,
        train_limit: int | None = None,
        augment: str = "none",
    ):
        super().__init__()
        if augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {list(AUGMENTATIONS)}, got {augment!r}")
        self.augment = augment
        self.specs: list[DatasetSpec] = parse_dataset_specs(datasets)
        self.image_size, self.split_seed = image_size, split_seed
        self.batch_size, self.num_workers, self.train_limit = batch_size, num_workers, train_limit
        self.eval_sets: dict[str, Dataset] = {}
        self.train_set: Dataset | None = None
        self.predict_names: list[str] | None = None  # predict: these sets only (None: all)
        self._source_paths: dict[str, list] = {}  # dataset name -> its files (path sources)
        # dataset name -> {sample: error} of files that could not be decoded (predict only)
        self._source_unreadable: dict[str, dict[int, ValueError]] = {}
        self._stage: str | None = None
        self._train_position: dict | None = None

    def load_splits(self) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """(images in [0, 1] as N x 1 x S x S, int64 labels, {train, heldout, test: indices})."""
        raise NotImplementedError

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one model input."""
        return (self.in_chans, self.image_size, self.image_size)

    @property
    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) per channel the served images are normalised with: (pixel - mean) /
        std, pixels in [0, 1]. Members that expect another normalisation convert from it."""
        return (float(self.mean),) * self.in_chans, (float(self.std),) * self.in_chans

    @property
    def roles(self) -> DatasetRoles:
        """Dataset name -> role, in config order (the data contract's roles)."""
        return DatasetRoles({s.name: s.role for s in self.specs})

    def setup(self, stage: str | None = None) -> None:
        """Load the splits and build the training set and every evaluation set (once).

        Args:
            stage: Lightning's stage (``"fit"``, ``"test"``, ``"predict"``, ...).

        Raises:
            ValueError: A split is empty.
        """
        if self.train_set is not None:
            return
        self._stage = stage
        images, labels, splits = self.load_splits()
        for split, idx in splits.items():
            if idx.numel() == 0:
                raise ValueError(
                    f"the {split} split is empty ({self._split_description()} of "
                    f"{labels.numel()} images); choose fractions that leave samples in every split"
                )
        train_idx = splits["train"][: self.train_limit] if self.train_limit else splits["train"]
        if self.augment == "affine":
            seed = int(os.environ.get("PL_GLOBAL_SEED", 0))  # the member's --seed_everything
            self.train_set = AugmentedImages(
                images[train_idx], labels[train_idx], self.mean, self.std, seed
            )
        else:
            self.train_set = self._wrap(images[train_idx], labels[train_idx])
        for spec in self.specs:
            if spec.source in OOD_SOURCES:
                x = OOD_SOURCES[spec.source](spec.size, self.image_size, self.split_seed + 7)
                y = torch.full((x.shape[0],), -1, dtype=torch.long)
            elif spec.source == "path":
                x, y = self.read_path_source(spec)
            elif spec.source == "train":  # the members' training images, unaugmented
                x, y = images[train_idx], labels[train_idx]
            else:
                x, y = images[splits[spec.source]], labels[splits[spec.source]]
            if spec.corruption is not None:
                x = corrupt(x, spec.corruption, int(spec.severity), self.split_seed)
            paths = self._source_paths.get(spec.name)
            wrapped = self._wrap(x, y)
            if paths is not None and type(wrapped) is IndexedImages:  # (a subclass's own kept)
                unreadable = self._source_unreadable.get(spec.name)
                wrapped = IndexedFiles(x, y, self.mean, self.std, paths, unreadable)
            self.eval_sets[spec.name] = wrapped

    def read_path_source(self, spec: DatasetSpec) -> tuple[torch.Tensor, torch.Tensor]:
        """Images of a ``source: path`` dataset (any format of ``image_sources``) as this
        module's tensors: grey, scaled to [0, 1], resized bilinearly to ``image_size``, with
        targets (-1 for an OOD set). For ``predict``, a file that cannot be decoded is kept
        aside ([`IndexedFiles`][] ``unreadable``) instead of stopping the setup, so the
        predictions list it and predict the others.

        Args:
            spec: The dataset's entry in the config (``source: path``).

        Returns:
            (images as N x 1 x S x S floats in [0, 1], int64 targets).
        """
        entry = {"format": spec.format, "path": spec.path, "labels": spec.labels}
        if spec.split:
            entry["split"] = spec.split
        source = open_source(entry, "test")
        if source.paths is not None:  # each sample's file, for predictions
            self._source_paths[spec.name] = source.paths
        size = (self.image_size, self.image_size)
        images = []
        unreadable = self._source_unreadable.setdefault(spec.name, {})
        for i in range(len(source)):
            try:
                image = source[i][0]
            except (UnreadableImageError, ImageTooLargeError) as err:
                if self._stage != "predict" or source.paths is None:
                    raise
                unreadable[i] = err  # reported (or refused) when predict reaches it
                images.append(torch.zeros(1, *size))
                continue
            x = pil_to_tensor(to_mode(image, "L")).float().div(255).unsqueeze(0)
            if x.shape[-2:] != size:
                x = F.interpolate(x, size=size, mode="bilinear").clamp(0, 1)
            images.append(x[0])
        y = torch.tensor(source.labels, dtype=torch.long)
        if spec.role in ("ood", "ood_val"):
            y = torch.full_like(y, -1)
        elif y.numel() and (y.min() < 0 or y.max() >= self.num_classes):
            raise ValueError(
                f"{source.where}: labels must be in [0, {self.num_classes - 1}] for the "
                f"{spec.role} dataset {spec.name!r}, found [{int(y.min())}, {int(y.max())}]"
            )
        return torch.stack(images), y

    def _split_description(self) -> str:
        return "the configured split fractions"

    def _wrap(self, x: torch.Tensor, y: torch.Tensor) -> IndexedImages:
        return IndexedImages(x, y, self.mean, self.std)

    def _eval_loader(self, dataset: Dataset) -> DataLoader:
        return evaluation_loader(dataset, self.batch_size, self.num_workers)

    def train_dataloader(self) -> DataLoader:
        """Shuffled in an order fixed by (member seed, epoch, rank); resumes mid-epoch."""
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0))  # the member's --seed_everything
        sampler = ResumableShuffleSampler(self.train_set, seed, num_replicas=world, rank=rank)
        if self._train_position is not None:
            sampler.resume_at(**self._train_position)
            self._train_position = None
        return DataLoader(
            self.train_set,
            batch_size=self.batch_size,
            sampler=sampler,
            drop_last=len(self.train_set) > self.batch_size * world,
            num_workers=self.num_workers,
        )

    def state_dict(self) -> dict:
        """Where training is in the current epoch (saved in checkpoints, for exact resume)."""
        trainer = self.trainer
        if trainer is None or trainer.state.fn != "fit":  # also inside fit's validation
            return {}
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return {"epoch": trainer.current_epoch, "samples_done": done * self.batch_size}

    def load_state_dict(self, state: dict) -> None:
        """Resume training where [`state_dict`][] said it was.

        Args:
            state: The datamodule's state from a checkpoint (empty outside fit).
        """
        if state:
            self._train_position = {"epoch": state["epoch"], "samples_done": state["samples_done"]}

    def val_dataloader(self) -> DataLoader:
        """The held-out split, used for validation (checkpoint selection) during fit."""
        return self.dataloader(self.roles.heldout)

    def dataloader(self, name: str) -> DataLoader:
        """Unpadded evaluation dataloader of the dataset called ``name``.

        Args:
            name: A configured dataset's name.

        Raises:
            KeyError: No dataset has that name.
        """
        if name not in self.eval_sets:
            raise KeyError(f"no dataset named {name!r}; configured: {list(self.roles)}")
        return self._eval_loader(self.eval_sets[name])

    def test_dataloader(self) -> list[DataLoader]:
        """One dataloader per evaluated dataset, in config order (held-out included; the
        ``train`` and ``ood_val`` sets are not evaluated)."""
        return [self.dataloader(n) for n in self.roles.evaluated()]

    def predict_dataloader(self) -> list[DataLoader]:
        """The datasets named in ``predict_names`` (set by the cascade's predictions writer),
        else every configured dataset, in config order (logits and features are cached for
        all of them)."""
        if self.predict_names is None:
            return [self.dataloader(n) for n in self.roles]
        return [self.dataloader(n) for n in self.predict_names]
