"""The one place the library reads Lightning's private API, so an upgrade that changes it
breaks here (and in ``tests/lightning_modules/test_lightning_private.py``) rather than somewhere
quiet."""

from __future__ import annotations

from lightning.pytorch import LightningModule


def attached_ckpt_path(module: LightningModule) -> str | None:
    """The ``ckpt_path`` of the trainer ``module`` is attached to; None when it is not
    attached (or has no checkpoint path).

    ``module.trainer`` raises when no trainer is attached (a module loaded by hand, e.g. with
    ``load_from_checkpoint``), so this reads Lightning's private ``_trainer``, which is None
    then.
    """
    return getattr(module._trainer, "ckpt_path", None)
