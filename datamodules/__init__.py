"""Data: the embedded default (scikit-learn's digits), IDX files, splits, corruptions, OOD sets."""

from datamodules.digits import DigitsDataModule
from datamodules.idx_images import IDXDataModule
from datamodules.specs import ROLES, DatasetSpec

__all__ = ["ROLES", "DatasetSpec", "DigitsDataModule", "IDXDataModule"]
