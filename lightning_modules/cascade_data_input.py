"""The input a cascade's data serves (normalisation and crop): told by its datamodule, and kept
in cascade checkpoints (:data:`lightning_modules.cascade_checkpoint.DATA_INPUT_KEY`) so a
loaded cascade converts images prepared as at calibration."""

from __future__ import annotations

from lightning_modules.cascade_checkpoint import DATA_INPUT_KEY
from lightning_modules.input_options import (
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


def data_input_record(normalization: Normalization | None, crop_pct: float | None) -> dict:
    """The checkpoint entry of the data's input."""
    return {"normalization": normalization_dict(normalization), "crop_pct": crop_pct}


def recorded_data_input(
    record: dict | None, normalization: bool = True, crop: bool = True
) -> tuple[Normalization | None, float | None]:
    """(normalisation, crop_pct) from a checkpoint entry (:func:`data_input_record`), each None
    when not recorded or not asked for (``normalization``, ``crop`` False: not read).

    Raises:
        ValueError: naming :data:`DATA_INPUT_KEY`, when a value read is malformed.
    """
    record = record or {}
    norm, crop_pct = record.get("normalization"), record.get("crop_pct")
    return (
        None
        if norm is None or not normalization
        else as_normalization(norm, len(norm["mean"]), DATA_INPUT_KEY),
        None if crop_pct is None or not crop else check_crop_pct(crop_pct, DATA_INPUT_KEY),
    )
