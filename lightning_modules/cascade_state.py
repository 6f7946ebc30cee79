"""What a cascade checkpoint carries beside the members' weights, written and read back: the
fitted cascade, the members (path and SHA-256, and as plain data what rebuilds them) and the
input of the images it was calibrated on."""

from __future__ import annotations

from window_cascades.cascade.fitted import CHECKPOINT_KEY, FittedCascade
from window_cascades.lightning_modules.cascade_checkpoint import (
    DATA_INPUT_KEY,
    check_loaded_cascade,
)
from window_cascades.lightning_modules.cascade_data_input import (
    data_input_record,
    recorded_data_input,
)
from window_cascades.lightning_modules.cascade_members import MEMBERS_KEY
from window_cascades.lightning_modules.lightning_private import attached_ckpt_path
from window_cascades.lightning_modules.member_specs import MEMBER_SPECS


def save_cascade_state(module, checkpoint: dict) -> None:
    """Put a ``CascadeModule``'s fitted cascade, members and data input into ``checkpoint``.

    The members are embedded (``hyper_parameters.member_specs`` beside their weights) and
    ``hyper_parameters.members`` is left empty: loading the checkpoint rebuilds them from it,
    wherever it is, unless member files are named."""
    hparams = checkpoint.setdefault("hyper_parameters", {})
    hparams["members"] = []
    hparams[MEMBER_SPECS] = [dict(s) for s in module.member_specs]
    if module.fitted is not None:
        checkpoint[CHECKPOINT_KEY] = module.fitted.to_dict()
    checkpoint[MEMBERS_KEY] = [
        {"path": str(p), "sha256": d}
        for p, d in zip(module.member_paths, module.member_sha256, strict=True)
    ]
    checkpoint[DATA_INPUT_KEY] = data_input_record(
        module.data_normalization,
        module.data_crop_pct,
        module.data_image_size,
        module.data_interpolation,
    )


def load_cascade_state(module, checkpoint: dict) -> None:
    """Restore them into a ``CascadeModule``, checked first (also for checkpoints loaded outside
    the command, with ``load_from_checkpoint``); the data input only where this run's
    datamodule (setup) did not set it."""
    check_loaded_cascade(checkpoint, str(attached_ckpt_path(module) or "the cascade checkpoint"))
    if module.members_named:  # named member files win over the embedded weights
        state = checkpoint.get("state_dict")
        if isinstance(state, dict):
            for key in [k for k in state if str(k).startswith("members.")]:
                del state[key]
            state.update({f"members.{k}": v for k, v in module.members.state_dict().items()})
    data = checkpoint.get(CHECKPOINT_KEY)
    module.fitted = FittedCascade.from_dict(data) if data else None
    module.set_data_input(
        *recorded_data_input(
            checkpoint.get(DATA_INPUT_KEY),
            normalization=module.data_normalization is None,
            crop=module.data_crop_pct is None,
        )
    )
    record = checkpoint.get(DATA_INPUT_KEY) or {}
    if module.data_image_size is None:
        module.data_image_size = record.get("input_size")
    if module.data_interpolation is None:
        module.data_interpolation = record.get("interpolation")
