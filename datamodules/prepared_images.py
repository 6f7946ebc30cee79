"""The samples an image-file datamodule serves: timm's preprocessing (a model's data config and
its evaluation transform) and the datasets that turn source images into normalised tensors
(optionally corrupted, with training crops seeded per sample), or serve generated OOD images."""

from __future__ import annotations

import math

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T

from window_cascades.datamodules.contract import UNREADABLE
from window_cascades.datamodules.corruptions import corrupt
from window_cascades.datamodules.image_decoding import (
    ImageTooLargeError,
    UnreadableImageError,
    to_mode,
)

INTERPOLATIONS = {"bicubic": T.InterpolationMode.BICUBIC, "bilinear": T.InterpolationMode.BILINEAR}


def timm_data_config(model_name: str | None) -> dict:
    """timm's preprocessing for ``model_name`` (input_size, crop_pct, interpolation, mean, std).

    Args:
        model_name: A timm model name; None gives 224 px, crop 0.875, bicubic, ImageNet's
            mean and std.

    Returns:
        The data config.
    """
    if model_name is None:
        return {
            "input_size": (3, 224, 224),
            "crop_pct": 0.875,
            "interpolation": "bicubic",
            "mean": (0.485, 0.456, 0.406),
            "std": (0.229, 0.224, 0.225),
        }
    import timm.data
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(model_name)
    if cfg is None:
        raise ValueError(f"timm has no model {model_name!r} (data config)")
    return timm.data.resolve_data_config(pretrained_cfg=cfg.to_dict())


def eval_resize_crop(size: int, crop_pct: float, interpolation: str) -> T.Compose:
    """The geometry of timm's evaluation transform, on a PIL image: resize the shorter side to
    ``floor(size / crop_pct)``, centre-crop ``size`` x ``size`` (a PIL image again).

    Args:
        size: The side of the square image served, in pixels.
        crop_pct: The share of the resized image the centre crop keeps, in (0, 1].
        interpolation: ``bilinear`` or ``bicubic`` (the resize).

    Returns:
        The transform.
    """
    mode = INTERPOLATIONS[interpolation]
    return T.Compose(
        [T.Resize(math.floor(size / crop_pct), interpolation=mode), T.CenterCrop(size)]
    )


def eval_transform(size: int, crop_pct: float, interpolation: str) -> T.Compose:
    """timm's evaluation transform: [`eval_resize_crop`][], then to a float tensor in
    [0, 1] (not normalised).

    Args:
        size: The side of the square image served, in pixels.
        crop_pct: The share of the resized image the centre crop keeps, in (0, 1].
        interpolation: ``bilinear`` or ``bicubic`` (the resize).

    Returns:
        The transform.
    """
    return T.Compose([*eval_resize_crop(size, crop_pct, interpolation).transforms, T.ToTensor()])


class TransformedImages(Dataset):
    """(normalised image tensor, label, index) from a source, a subset and a transform.

    Args:
        source: The images with their labels, e.g. a
            [`LabelledImages`][window_cascades.datamodules.image_sources.LabelledImages].
        indices: The source's samples this set holds, in order.
        transform: PIL image -> float tensor in [0, 1] (e.g. [`eval_transform`][]).
        mean: The normalisation's mean per channel.
        std: The normalisation's standard deviation per channel.
        mode: The PIL mode each image is converted to, ``"RGB"`` or ``"L"``.
        corruption: A corruption applied after the transform (see
            [`window_cascades.datamodules.corruptions`][]); None for none.
        severity: The corruption's severity, 1-5.
        seed: The corruption's seed.
        labels: Labels replacing the source's, one per index; None keeps the source's.
        augment_seed: For a random transform (training), its seed: the same crop for the same
            (seed, epoch, sample) whatever the worker; None draws freely.
    """

    def __init__(
        self,
        source,
        indices,
        transform,
        mean,
        std,
        mode,
        corruption=None,
        severity=3,
        seed=0,
        labels=None,
        augment_seed=None,
    ):
        self.source, self.indices, self.transform, self.mode = source, indices, transform, mode
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)
        self.corruption, self.severity, self.seed = corruption, severity, seed
        self.labels, self.augment_seed, self.epoch = labels, augment_seed, 0
        # predict: a blank image with target UNREADABLE instead of an unreadable or too large
        # file's error (the predictions writer lists it with its reason)
        self.skip_unreadable = False

    def set_epoch(self, epoch: int) -> None:
        """Called by the training sampler at the start of every epoch.

        Args:
            epoch: The epoch starting (a random transform's draws differ per epoch).
        """
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.indices)

    def path(self, i: int) -> str | None:
        """The image file of sample ``i``, when the source reads files.

        Args:
            i: The sample's index in this set.
        """
        paths = getattr(self.source, "paths", None)
        return None if paths is None else str(paths[self.indices[i]])

    def __getitem__(self, i: int):
        try:
            img, y = self.source[self.indices[i]]
        except (UnreadableImageError, ImageTooLargeError):
            if not self.skip_unreadable:
                raise
            blank = self.transform(Image.new(self.mode, (8, 8)))
            return (blank - self.mean) / self.std, UNREADABLE, i
        img = to_mode(img, self.mode)
        if self.augment_seed is None:
            x = self.transform(img)
        else:  # the same crop for the same (seed, epoch, sample), whatever the worker
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(hash((self.augment_seed, self.epoch, int(i))) % 2**63)
                x = self.transform(img)
        if self.corruption is not None:
            x = corrupt(x[None], self.corruption, self.severity, self.seed, first_index=i)[0]
        y = self.labels[i] if self.labels is not None else y
        return (x - self.mean) / self.std, y, i


class GeneratedImages(Dataset):
    """A generated OOD set (``window_cascades.datamodules.ood_sets``), repeated to the model's
    channels.

    Args:
        images: Greyscale images in [0, 1], shape (N, 1, H, W).
        chans: The model's input channels.
        mean: The normalisation's mean per channel.
        std: The normalisation's standard deviation per channel.
    """

    def __init__(self, images: torch.Tensor, chans: int, mean, std):
        self.images = images.expand(-1, chans, -1, -1)
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int):
        return (self.images[i] - self.mean) / self.std, -1, i
