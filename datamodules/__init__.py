"""Data: the embedded default (scikit-learn's digits), IDX files, image files on disk (ImageNet,
CIFAR, image folders, Hugging Face datasets), splits, corruptions, OOD sets, and new images to
predict (a folder or a file list)."""

from window_cascades.datamodules.digits import DigitsDataModule
from window_cascades.datamodules.file_images import ImageFilesDataModule
from window_cascades.datamodules.idx_images import IDXDataModule
from window_cascades.datamodules.predict_files import PredictFilesDataModule
from window_cascades.datamodules.specs import ROLES, DatasetSpec

__all__ = [
    "ROLES",
    "DatasetSpec",
    "DigitsDataModule",
    "IDXDataModule",
    "ImageFilesDataModule",
    "PredictFilesDataModule",
]
