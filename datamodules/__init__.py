"""Data: the embedded default (scikit-learn's digits), IDX files, image files on disk (ImageNet,
CIFAR, image folders, Hugging Face datasets), splits, corruptions, OOD sets."""

from datamodules.digits import DigitsDataModule
from datamodules.file_images import ImageFilesDataModule
from datamodules.idx_images import IDXDataModule
from datamodules.specs import ROLES, DatasetSpec

__all__ = ["ROLES", "DatasetSpec", "DigitsDataModule", "IDXDataModule", "ImageFilesDataModule"]
