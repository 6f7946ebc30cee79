"""The datamodule contract: what the cascade's callbacks and modules read from a datamodule.

Bring your own datamodule: any ``LightningDataModule`` that also provides the members of
[`CascadeDataModule`][] works with the member module (``fit`` reads the train and val
dataloaders, ``predict`` the evaluation sets), the logits writer, the calibration callback and
the cascade module. ``ImageSetsDataModule`` (and so every datamodule of this package)
implements it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch.utils.data import DataLoader, Dataset

from window_cascades.vocabulary.roles import DatasetRoles

UNREADABLE = -2
"""Target of a sample whose file could not be read, served (as a blank image) only by a dataset
told to skip such files (``skip_unreadable = True``, set for ``predict``): its row reports the
file as unreadable instead of a prediction."""

REQUIRED = ("roles", "eval_sets", "batch_size", "input_shape", "dataloader", "test_dataloader")


@runtime_checkable
class CascadeDataModule(Protocol):
    """What a datamodule must offer.

    Attributes:
        roles: every dataset's name and role (one held-out, one ID, any shift/OOD; optionally
            the training split, role ``train``, and OOD validation sets, ``ood_val``, which
            feature scores read but nothing evaluates), in the order of
            ``predict_dataloader()``; ``test_dataloader()`` serves the evaluated ones
            (``roles.evaluated()``) in the same order.
        eval_sets: name -> dataset of ``(image, target, index)`` triples; target -1 where
            unlabelled; index = the sample's position in that dataset.
        batch_size: batch size of the evaluation dataloaders.
        input_shape: (channels, height, width) of one model input.

    Optional: ``normalization``, the (mean, std) per channel of the served images, ``(pixel -
    mean) / std`` with pixels in [0, 1]. Members with their own normalisation
    (``model.normalization``) need it to convert; others record it at fit and convert from
    the normalisation of a later run's data. Likewise ``crop_pct``, the fraction of each
    source image an evaluation image shows (timm's ``crop_pct``; 1.0 for whole images).
    """

    batch_size: int

    @property
    def roles(self) -> DatasetRoles: ...

    @property
    def eval_sets(self) -> dict[str, Dataset]: ...

    @property
    def input_shape(self) -> tuple[int, int, int]: ...

    def dataloader(self, name: str) -> DataLoader:
        """Unpadded, unshuffled evaluation dataloader of the dataset ``name``.

        Args:
            name: A dataset's name, a key of ``roles``.
        """

    def test_dataloader(self) -> list[DataLoader]:
        """One evaluation dataloader per evaluated dataset (``roles.evaluated()``), in order."""


def cascade_datamodule(trainer) -> CascadeDataModule:
    """The trainer's datamodule, checked against the contract (clear error where it enters).

    Args:
        trainer: The Lightning trainer of the run.

    Returns:
        The trainer's datamodule.
    """
    dm = getattr(trainer, "datamodule", None)
    missing = [name for name in REQUIRED if dm is None or not hasattr(dm, name)]
    if missing:
        raise TypeError(
            f"the datamodule {type(dm).__name__} does not implement the cascade data contract "
            f"(window_cascades.datamodules.contract.CascadeDataModule): missing {missing}"
        )
    if not isinstance(dm.roles, DatasetRoles):
        raise TypeError(
            f"{type(dm).__name__}.roles must be a window_cascades.vocabulary.roles.DatasetRoles, "
            f"got {type(dm.roles).__name__}"
        )
    return dm
