"""Where a member's input comes from: its ``model.*`` options at construction, and the
datamodule of a run (at fit, it adopts what the data serves where it has no value of its own).
Both return a [`window_cascades.lightning_modules.member_input.MemberInput`][]."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import torch

from window_cascades.lightning_modules.input_options import (
    as_normalization,
    check_crop_pct,
    check_interpolation,
    check_resolution,
    datamodule_crop_pct,
    datamodule_normalization,
    timm_normalization,
)
from window_cascades.lightning_modules.member_input import MemberInput


def configured_input(
    model: torch.nn.Module, options: Mapping, try_resolution: bool = True
) -> MemberInput:
    """A member's input from its ``model.*`` options (``"auto"``: the model's timm data
    config), checked.

    Args:
        model: the member's timm model.
        options: the ``MemberModule`` hyperparameters ``model_name`` (for errors),
            ``in_chans``, ``resolution``, ``normalization``, ``crop`` and ``resize``.
        try_resolution: run the model once at ``resolution`` to refuse a size it cannot take
            (False when the member is rebuilt from a checkpoint: it was fit at that size).

    Raises:
        ValueError: naming the option and what was expected.
    """
    in_chans, resolution = options["in_chans"], options["resolution"]
    normalization, crop, resize = options["normalization"], options["crop"], options["resize"]
    cfg = getattr(model, "pretrained_cfg", None) or {}
    if resolution == "auto":
        resolution = int(cfg["input_size"][-1])
    if resolution is not None:
        check_resolution(model, options["model_name"], in_chans, resolution, try_resolution)
    if normalization == "auto":
        normalization = timm_normalization(model, in_chans)
    elif normalization is not None:
        normalization = as_normalization(normalization, in_chans, "model.normalization")
    if crop == "auto":
        crop = cfg.get("crop_pct", 1.0)
    if crop is not None:
        crop = check_crop_pct(crop, "model.crop")
    if resize == "auto":
        resize = cfg.get("interpolation", "bilinear")
    resize = check_interpolation(resize, "model.resize")
    return MemberInput(resolution, normalization, crop, resize)


def with_data_input(value: MemberInput, datamodule, in_chans: int, fit: bool) -> MemberInput:
    """``value`` converting from the input ``datamodule`` serves. At ``fit``, a member without
    its own resolution, crop or normalisation adopts the data's (and so records it in its
    checkpoints), so a later run whose data differs converts to it. When the datamodule does
    not say its normalisation, the one recorded at fit is assumed.

    Raises:
        ValueError: when the member has its own normalisation and nothing says the data's, or
            the data cannot serve the member (see [`MemberInput.for_data`][]).
    """
    data = datamodule_normalization(datamodule, in_chans)
    shape = getattr(datamodule, "input_shape", None)
    changes: dict = {}
    if fit and value.size is None and shape is not None and shape[-1] == shape[-2]:
        changes["size"] = int(shape[-1])
    crop = datamodule_crop_pct(datamodule)
    if crop is not None:
        if fit and value.crop_pct is None:
            changes["crop_pct"] = crop
        changes["data_crop_pct"] = crop
    value, changes = replace(value, **changes), {}  # a crop the data cannot serve is refused first
    if data is not None:
        if fit and value.normalization is None:
            changes["normalization"] = data
        changes["data_normalization"] = data
    elif value.normalization is not None and value.data_normalization is None:
        raise ValueError(
            f"model.normalization is set, but the datamodule {type(datamodule).__name__} does "
            "not say how it normalises images: give it a `normalization` attribute ((mean, "
            "std) per channel)"
        )
    return replace(value, **changes)
