"""A member's own input (crop, resolution, resize mode, normalisation) from what data serves.

One data config feeds every member of a cascade. A member that expects another input (the
paper's efficientnet_b2 at 260 px after efficientnet_b0 at 224 px; a ViT normalised with mean
0.5 and std 0.5 after a ResNet normalised with ImageNet's statistics) adapts each batch inside
its forward, with a forward pre-hook (not a module, so state_dict keys stay the same):

* crop (evaluation only): timm's evaluation transform resizes the source image to
  ``size / crop_pct`` and centre-crops ``size``, so an image shows the central ``crop_pct`` of
  the source. A member with a smaller ``crop_pct`` than the data's takes the central
  ``crop_pct / data_crop_pct`` of each image (training images, random resized crops, are
  not cropped); a larger one cannot be served (the border is gone) and is refused;
* resolution: resized to ``size`` x ``size`` (bilinear or bicubic, the member's ``resize``;
  antialiased when shrinking);
* normalisation: a batch normalised by the data, ``x = (raw - data_mean) / data_std``, becomes
  ``(raw - mean) / std`` per channel, i.e. ``x * data_std / std + (data_mean - mean) / std``.

Resizing and normalising are linear per channel, so their order does not matter.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

Normalization = tuple[tuple[float, ...], tuple[float, ...]]  # (mean, std), one per channel
INTERPOLATIONS = ("bilinear", "bicubic")
INPUT_KEY = "member_input"  # checkpoint entry: the member's resolution, normalisation and crop,
# and the data's normalisation and crop, recorded at fit


def as_normalization(value, in_chans: int, where: str) -> Normalization:
    """``{"mean": [...], "std": [...]}`` or ``(mean, std)`` as per-channel float tuples.

    A single value is used for every channel; ``std`` must be positive.

    Raises:
        ValueError: naming ``where`` and what was expected.
    """
    if isinstance(value, dict):
        unknown = set(value) - {"mean", "std"}
        if unknown or len(value) != 2:
            raise ValueError(f"{where} takes {{mean: [...], std: [...]}}, got keys {sorted(value)}")
        value = (value["mean"], value["std"])
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise ValueError(f"{where} must be 'auto' or {{mean: [...], std: [...]}}, got {value!r}")
    out = []
    for name, part in zip(("mean", "std"), value, strict=True):
        values = [part] if isinstance(part, (int, float)) else list(part)
        if len(values) == 1:
            values = values * in_chans
        if len(values) != in_chans or not all(isinstance(v, (int, float)) for v in values):
            raise ValueError(
                f"{where}: {name} must be {in_chans} number(s), one per input channel, got {part!r}"
            )
        out.append(tuple(float(v) for v in values))
    if min(out[1]) <= 0:
        raise ValueError(f"{where}: std must be positive, got {list(out[1])}")
    return out[0], out[1]


def timm_normalization(model: torch.nn.Module, in_chans: int) -> Normalization:
    """The mean and std of the model's own timm data config (``pretrained_cfg``); for a grey
    member (``in_chans`` 1) of an RGB config, the mean over channels (timm sums the first
    convolution's RGB weights for one channel)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    mean, std = cfg.get("mean"), cfg.get("std")
    if mean is None or std is None:
        raise ValueError(
            f"{type(model).__name__} has no mean/std in its timm data config: give "
            "model.normalization as {mean: [...], std: [...]}"
        )
    if in_chans != len(mean):
        mean, std = [sum(mean) / len(mean)], [sum(std) / len(std)]
    return as_normalization((mean, std), in_chans, "model.normalization auto")


def check_interpolation(value, where: str) -> str:
    """One of :data:`INTERPOLATIONS`."""
    if value not in INTERPOLATIONS:
        raise ValueError(f"{where} must be one of {list(INTERPOLATIONS)} or 'auto', got {value!r}")
    return value


def check_resolution(model: torch.nn.Module, name: str, in_chans: int, size: int) -> None:
    """Refuse an input size the model cannot take (one dry forward pass at that size)."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(
            f"model.resolution must be a positive number of pixels or 'auto', got {size!r}"
        )
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, in_chans, size, size))
    except Exception as err:  # noqa: BLE001 - every architecture fails in its own way
        raise ValueError(
            f"{name} cannot take {size} x {size} px inputs (model.resolution): "
            f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
        ) from None
    finally:
        model.train(was_training)


def check_crop_pct(value, where: str) -> float:
    """A crop fraction in (0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ValueError(f"{where} must be a fraction in (0, 1] or 'auto', got {value!r}")
    return float(value)


class MemberInput:
    """Forward pre-hook giving a member its own input (see the module docstring).

    Args:
        size: the member's resolution in pixels (square); None keeps the data's.
        normalization: the (mean, std) the member expects; None takes the data's as it is.
        crop_pct: the fraction of the source the member's evaluation images show; None takes
            the data's as it is.
        interpolation: how images are resized, ``bilinear`` or ``bicubic``.

    The data's normalisation and crop are told with :meth:`set_data_normalization` and
    :meth:`set_data_crop_pct` (by the member and cascade modules from their datamodule); until
    then a batch is taken as the member's own.
    """

    def __init__(
        self,
        size: int | None = None,
        normalization: Normalization | None = None,
        crop_pct: float | None = None,
        interpolation: str = "bilinear",
    ):
        self.size = size
        self.interpolation = check_interpolation(interpolation, "interpolation")
        self.normalization = normalization
        self.crop_pct = crop_pct
        self.data_normalization: Normalization | None = None
        self.data_crop_pct: float | None = None
        self._affine: tuple[torch.Tensor, torch.Tensor] | None = None
        self._crop = 1.0

    def set_data_crop_pct(self, crop_pct: float | None) -> None:
        """The fraction of the source the data's evaluation images show.

        Raises:
            ValueError: when the member needs more of the source than the data shows.
        """
        self.data_crop_pct, self._crop = crop_pct, 1.0
        if crop_pct is None or self.crop_pct is None:
            return
        if self.crop_pct > crop_pct + 1e-9:
            raise ValueError(
                f"the member's crop_pct {self.crop_pct} shows more of each image than the "
                f"data's {crop_pct}: serve the data with the largest crop_pct of the members"
            )
        self._crop = self.crop_pct / crop_pct

    def set_data_normalization(self, normalization: Normalization | None) -> None:
        """The (mean, std) per channel of the batches this member will be given."""
        self.data_normalization = normalization
        self._affine = None
        if normalization is None or self.normalization is None:
            return
        (mean, std), (data_mean, data_std) = self.normalization, normalization
        if len(data_mean) != len(mean):
            raise ValueError(
                f"the data is normalised over {len(data_mean)} channel(s), the member expects "
                f"{len(mean)}"
            )
        if normalization == self.normalization:
            return
        scale = torch.tensor([d / s for d, s in zip(data_std, std, strict=True)])
        shift = torch.tensor([(d - m) / s for d, m, s in zip(data_mean, mean, std, strict=True)])
        self._affine = (scale.view(1, -1, 1, 1), shift.view(1, -1, 1, 1))

    def __call__(self, module, args):
        x = args[0]
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            return None
        changed = False
        height, width = x.shape[-2:]
        if self._crop < 1 and not module.training:
            h, w = max(1, round(height * self._crop)), max(1, round(width * self._crop))
            top, left = (height - h) // 2, (width - w) // 2
            x, changed = x[..., top : top + h, left : left + w], True
        size = (self.size, self.size) if self.size is not None else (height, width)
        if tuple(x.shape[-2:]) != size:
            shrink = x.shape[-1] > size[1] or x.shape[-2] > size[0]
            x = F.interpolate(x, size=size, mode=self.interpolation, align_corners=False,
                              antialias=shrink)  # fmt: skip
            changed = True
        if self._affine is not None:
            scale, shift = (t.to(device=x.device, dtype=x.dtype) for t in self._affine)
            x = x * scale + shift
            changed = True
        return (x, *args[1:]) if changed else None


def member_input(model: torch.nn.Module) -> MemberInput | None:
    """The :class:`MemberInput` hook of a member's model, or None."""
    for hook in model._forward_pre_hooks.values():
        if isinstance(hook, MemberInput):
            return hook
    return None


def normalization_dict(normalization: Normalization | None) -> dict | None:
    """``{"mean": [...], "std": [...]}`` (for checkpoints and JSON), or None."""
    if normalization is None:
        return None
    return {"mean": list(normalization[0]), "std": list(normalization[1])}


def datamodule_crop_pct(datamodule) -> float | None:
    """The datamodule's ``crop_pct`` (the fraction of the source its evaluation images show;
    optional in the data contract), checked; None when it does not say."""
    value = getattr(datamodule, "crop_pct", None)
    if value is None:
        return None
    return check_crop_pct(value, f"{type(datamodule).__name__}.crop_pct")


def datamodule_normalization(datamodule, in_chans: int) -> Normalization | None:
    """The datamodule's ``normalization`` ((mean, std) per channel of the images it serves;
    optional in the data contract), checked; None when it does not say."""
    value = getattr(datamodule, "normalization", None)
    if value is None:
        return None
    return as_normalization(value, in_chans, f"{type(datamodule).__name__}.normalization")
