"""A member's own input (crop, resolution, resize mode, normalisation) from what data serves.

One data config feeds every member of a cascade. A member that expects another input (the
paper's efficientnet_b2 at 260 px after efficientnet_b0 at 224 px; a ViT normalised with mean
0.5 and std 0.5 after a ResNet normalised with ImageNet's statistics) adapts each batch. What it
expects and what the data serves is one frozen value, [`MemberInput`][], which the member
owns (``MemberModule.input``), records in its checkpoints ([`INPUT_KEY`][]) and restores from
them. The member applies it through [`InputHook`][], a forward pre-hook it registers on its
model (not a module, so state_dict keys stay the same), so every caller of the model (the
member's forward, logits caching, the cascade, MAC counting) gets the adapted batch:

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

from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F

from window_cascades.lightning_modules.input_options import (
    Normalization,
    as_normalization,
    check_crop_pct,
    check_interpolation,
    normalization_dict,
)

INPUT_KEY = "member_input"
"""The entry of a member checkpoint that records the member's resolution, normalisation and
crop, and the data's normalisation and crop, at fit."""


@dataclass(frozen=True)
class MemberInput:
    """What a member expects as input and what its data serves (see the module docstring).

    Attributes:
        size: the member's resolution in pixels (square); None keeps the data's.
        normalization: the (mean, std) the member expects; None takes the data's as it is.
        crop_pct: the fraction of the source the member's evaluation images show; None takes
            the data's as it is.
        interpolation: how images are resized, ``bilinear`` or ``bicubic``.
        data_normalization: the (mean, std) per channel of the batches the member is given;
            None: a batch is taken as normalised the member's way.
        data_crop_pct: the fraction of the source the data's evaluation images show; None: the
            member's own.

    Raises:
        ValueError: for an unknown interpolation, a member that needs more of the source than
            the data shows, or normalisations over different channel counts.
    """

    size: int | None = None
    normalization: Normalization | None = None
    crop_pct: float | None = None
    interpolation: str = "bilinear"
    data_normalization: Normalization | None = None
    data_crop_pct: float | None = None
    _crop: float = field(init=False, repr=False, compare=False, default=1.0)
    _affine: tuple[torch.Tensor, torch.Tensor] | None = field(
        init=False, repr=False, compare=False, default=None
    )

    def __post_init__(self) -> None:
        check_interpolation(self.interpolation, "interpolation")
        object.__setattr__(self, "_crop", self._crop_fraction())
        object.__setattr__(self, "_affine", self._renormalisation())

    def _crop_fraction(self) -> float:
        """The central fraction of each data image the member takes (1: all of it)."""
        if self.data_crop_pct is None or self.crop_pct is None:
            return 1.0
        if self.crop_pct > self.data_crop_pct + 1e-9:
            raise ValueError(
                f"the member's crop_pct {self.crop_pct} shows more of each image than the "
                f"data's {self.data_crop_pct}: serve the data with the largest crop_pct of the "
                "members"
            )
        return self.crop_pct / self.data_crop_pct

    def _renormalisation(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(scale, shift), each 1 x C x 1 x 1, taking the data's normalisation to the member's;
        None when there is nothing to convert."""
        if self.data_normalization is None or self.normalization is None:
            return None
        (mean, std), (data_mean, data_std) = self.normalization, self.data_normalization
        if len(data_mean) != len(mean):
            raise ValueError(
                f"the data is normalised over {len(data_mean)} channel(s), the member expects "
                f"{len(mean)}"
            )
        if self.data_normalization == self.normalization:
            return None
        scale = torch.tensor([d / s for d, s in zip(data_std, std, strict=True)])
        shift = torch.tensor([(d - m) / s for d, m, s in zip(data_mean, mean, std, strict=True)])
        return scale.view(1, -1, 1, 1), shift.view(1, -1, 1, 1)

    def for_data(
        self, normalization: Normalization | None = None, crop_pct: float | None = None
    ) -> MemberInput:
        """This input for data normalised with ``normalization`` and cropped to ``crop_pct``
        (None leaves that part as it is).

        Raises:
            ValueError: when the member needs more of the source than the data shows, or the
                data is normalised over another channel count.
        """
        changes: dict = {}
        if normalization is not None:
            changes["data_normalization"] = normalization
        if crop_pct is not None:
            changes["data_crop_pct"] = crop_pct
        return replace(self, **changes)

    def apply(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        """The member's input made from a batch ``x`` (N x C x H x W) of the data: cropped
        (evaluation only), resized and renormalised; ``x`` itself when nothing changes or it is
        not a batch of images."""
        if x.ndim != 4:
            return x
        height, width = x.shape[-2:]
        if self._crop < 1 and not training:
            h, w = max(1, round(height * self._crop)), max(1, round(width * self._crop))
            top, left = (height - h) // 2, (width - w) // 2
            x = x[..., top : top + h, left : left + w]
        size = (self.size, self.size) if self.size is not None else (height, width)
        if tuple(x.shape[-2:]) != size:
            shrink = x.shape[-1] > size[1] or x.shape[-2] > size[0]
            x = F.interpolate(
                x, size=size, mode=self.interpolation, align_corners=False, antialias=shrink
            )
        if self._affine is not None:
            scale, shift = (t.to(device=x.device, dtype=x.dtype) for t in self._affine)
            x = x * scale + shift
        return x

    def record(self) -> dict:
        """The checkpoint entry ([`INPUT_KEY`][]): resolution, normalisations and crops."""
        return {
            "resolution": self.size,
            "normalization": normalization_dict(self.normalization),
            "crop_pct": self.crop_pct,
            "data_normalization": normalization_dict(self.data_normalization),
            "data_crop_pct": self.data_crop_pct,
        }

    def restored(self, record: dict | None, in_chans: int) -> MemberInput:
        """This input with what a checkpoint entry ([`record`][]) recorded; a part the entry
        leaves out (or an older checkpoint without the entry) stays as it is.

        Raises:
            ValueError: naming [`INPUT_KEY`][], when a recorded value is malformed.
        """
        record = record or {}
        changes: dict = {}
        if record.get("resolution") is not None:
            changes["size"] = int(record["resolution"])
        for key, attr in (("crop_pct", "crop_pct"), ("data_crop_pct", "data_crop_pct")):
            if record.get(key) is not None:
                changes[attr] = check_crop_pct(record[key], INPUT_KEY)
        for key in ("normalization", "data_normalization"):
            if record.get(key) is not None:
                changes[key] = as_normalization(record[key], in_chans, INPUT_KEY)
        return replace(self, **changes)


class InputHook:
    """The forward pre-hook through which a member's model applies the member's input.

    The member registers it on its model with torch's public ``register_forward_pre_hook`` and
    keeps it: the hook holds the member's current [`MemberInput`][], which the member
    replaces (never edits) when it learns its data's input.

    Args:
        value: the member's input.
    """

    def __init__(self, value: MemberInput):
        self.value = value

    def __call__(self, module: torch.nn.Module, args: tuple) -> tuple | None:
        x = args[0]
        if not isinstance(x, torch.Tensor):
            return None
        adapted = self.value.apply(x, module.training)
        return None if adapted is x else (adapted, *args[1:])
