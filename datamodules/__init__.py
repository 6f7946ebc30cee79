"""Data: the embedded default (scikit-learn's digits), splits, corruptions and OOD sets."""

from datamodules.digits import DigitsDataModule
from datamodules.specs import ROLES, DatasetSpec

__all__ = ["ROLES", "DatasetSpec", "DigitsDataModule"]
