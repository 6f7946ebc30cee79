"""The input a cascade's data serves (normalisation and crop): told by its datamodule, and kept
in cascade checkpoints ([`window_cascades.lightning_modules.cascade_checkpoint.DATA_INPUT_KEY`][])
so a loaded cascade converts images prepared as at calibration."""

from __future__ import annotations

from window_cascades.lightning_modules.cascade_checkpoint import DATA_INPUT_KEY
from window_cascades.lightning_modules.input_options import (
    Normalization,
    as_normalization,
    check_crop_pct,
    datamodule_crop_pct,
    datamodule_normalization,
    normalization_dict,
)


def datamodule_input(datamodule) -> tuple[Normalization | None, float | None]:
    """The datamodule's (normalisation, crop_pct), each None when it does not say (the
    normalisation also when it does not say its ``input_shape``)."""
    chans = getattr(datamodule, "input_shape", (None,))[0]
    norm = datamodule_normalization(datamodule, chans) if chans is not None else None
    return norm, datamodule_crop_pct(datamodule)


def datamodule_image(datamodule) -> tuple[int | None, str | None]:
    """The datamodule's image size (square images only) and resize mode (``interpolation``),
    each None when it does not say."""
    shape = getattr(datamodule, "input_shape", None)
    size = int(shape[-1]) if shape is not None and shape[-1] == shape[-2] else None
    interpolation = getattr(datamodule, "interpolation", None)
    return size, interpolation if isinstance(interpolation, str) else None


def data_input_record(
    normalization: Normalization | None,
    crop_pct: float | None,
    input_size: int | None = None,
    interpolation: str | None = None,
) -> dict:
    """The checkpoint entry of the data's input; ``input_size`` and ``interpolation`` let
    ``predict`` prepare new image files as the images the cascade was calibrated on."""
    return {
        "normalization": normalization_dict(normalization),
        "crop_pct": crop_pct,
        "input_size": input_size,
        "interpolation": interpolation,
    }


def recorded_data_input(
    record: dict | None, normalization: bool = True, crop: bool = True
) -> tuple[Normalization | None, float | None]:
    """(normalisation, crop_pct) from a checkpoint entry ([`data_input_record`][]), each None
    when not recorded or not asked for (``normalization``, ``crop`` False: not read).

    Raises:
        ValueError: naming [`DATA_INPUT_KEY`][], when a value read is malformed.
    """
    record = record or {}
    norm, crop_pct = record.get("normalization"), record.get("crop_pct")
    return (
        None
        if norm is None or not normalization
        else as_normalization(norm, len(norm["mean"]), DATA_INPUT_KEY),
        None if crop_pct is None or not crop else check_crop_pct(crop_pct, DATA_INPUT_KEY),
    )


def prediction_input(record: dict | None, member_inputs: list, where: str) -> dict:
    """How ``predict`` prepares new image files for a cascade: the ``PredictFilesDataModule``
    arguments ``input_size``, ``crop_pct``, ``interpolation``, ``mean``, ``std``, as the data
    served the images the cascade was calibrated on (the checkpoint entry
    [`data_input_record`][]), else as the members recorded their data at fit
    (``member_inputs``: their
    [`MemberInput`][window_cascades.lightning_modules.member_input.MemberInput], in cascade order).

    Raises:
        ValueError: naming ``where`` (the cascade checkpoint), when neither says the image
            size or the normalisation.
    """
    record = record or {}
    norm, crop = recorded_data_input(record)
    first = member_inputs[0] if member_inputs else None
    norm = norm or (first.data_normalization or first.normalization if first else None)
    if crop is None and first is not None:
        crop = first.data_crop_pct or first.crop_pct
    sizes = [m.size for m in member_inputs if m.size is not None]
    size = record.get("input_size") or (max(sizes) if sizes else None)
    missing = [what for what, value in (("image size", size), ("normalisation", norm)) if not value]
    if missing:
        raise ValueError(
            f"--ckpt_path {where}: neither the cascade nor its members record the data's "
            f"{' and '.join(missing)}, so new image files cannot be prepared as at calibration: "
            "give --data (a data config whose datasets are predicted) instead of "
            "--predictions.inputs"
        )
    interpolation = record.get("interpolation") or (first.interpolation if first else "bilinear")
    return {
        "input_size": int(size),
        "crop_pct": float(crop) if crop is not None else 1.0,
        "interpolation": interpolation,
        "mean": list(norm[0]),
        "std": list(norm[1]),
    }
