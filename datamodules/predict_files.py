"""New, unlabelled images for ``predict``: a folder, a text file listing image paths, or one
image, with no data config (``--predictions.inputs``).

[`input_files`][] lists the files (a folder is searched with its sub-folders, in sorted
order; a list file names one path per line, relative to the current folder, ``#`` comments and
blank lines skipped) and refuses, in one line naming the option and the path, a path that does
not exist, a folder without images or a list naming files that do not exist. What it leaves out
or flags is counted ([`InputFiles`][]), for one line before the run and the predictions'
summary line: a folder's files without an image extension (by extension), and its links to
files outside it (skipped: a folder of new images may come from anyone; list them in a text
file to predict them); a list's entries outside the current folder (``..``, absolute paths
elsewhere: predicted, and counted).
[`PredictFilesDataModule`][] serves them as one dataset (``inputs``) prepared as the
images the cascade was calibrated on (their size, crop, resize mode and normalisation,
recorded in the cascade checkpoint). A file that cannot be decoded is reported by the
predictions writer (status ``unreadable``) or refuses the run (``--predictions.strict``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from window_cascades.datamodules.image_decoding import open_image
from window_cascades.datamodules.image_sources import IMAGE_EXTENSIONS, LabelledImages
from window_cascades.datamodules.prepared_images import (
    INTERPOLATIONS,
    TransformedImages,
    eval_transform,
)
from window_cascades.datamodules.samplers import evaluation_loader
from window_cascades.vocabulary.roles import DatasetRoles

OPTION = "--predictions.inputs"
EXPECTED = "a folder of images, a text file listing image paths (one per line), or one image"


@dataclass
class InputFiles:
    """The files ``--predictions.inputs`` names, and what was left out or flagged.

    Attributes:
        files: the image files to predict, in order.
        source: the folder, list file or image given.
        skipped: in a folder, the files without an image extension, counted by extension
            (``(none)`` for a name without one).
        outside_links: in a folder, links to files outside it (not predicted).
        outside_listed: in a list file, entries outside the current folder (predicted).
    """

    files: list[Path]
    source: Path
    skipped: Counter = field(default_factory=Counter)
    outside_links: list[Path] = field(default_factory=list)
    outside_listed: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        """What was left out or flagged, as a clause (empty when nothing was), e.g. ``skipped
        3 files that are not images (.txt: 2, .eps: 1) and 1 link to files outside in``."""
        parts = []
        if self.skipped:
            total = sum(self.skipped.values())
            order = sorted(self.skipped.items(), key=lambda c: (-c[1], c[0] == "(none)", c[0]))
            counts = ", ".join(f"{ext}: {n}" for ext, n in order)
            what = "file that is not an image" if total == 1 else "files that are not images"
            parts.append(f"{total} {what} ({counts})")
        if self.outside_links:
            n = len(self.outside_links)
            parts.append(f"{n} link{'s' * (n != 1)} to files outside {self.source}")
        text = f"skipped {' and '.join(parts)}" if parts else ""
        if self.outside_listed:
            n = len(self.outside_listed)
            listed = (
                f"{n} listed path{'s' * (n != 1)} outside the current folder "
                f"(e.g. {self.outside_listed[0]}) predicted"
            )
            text = f"{text}; {listed}" if text else listed
        return text


def _outside(path: Path, folder: Path) -> bool:
    """Whether ``path``, links resolved, lies outside ``folder`` (resolved)."""
    return not path.resolve().is_relative_to(folder.resolve())


def _listed(list_file: Path, option: str) -> list[Path]:
    """The files a text file lists; every one must exist."""
    try:
        text = list_file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(
            f"{option} {list_file}: not a text file listing image paths (not UTF-8 text); "
            f"expected {EXPECTED}"
        ) from None
    files, missing = [], []
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        path = Path(entry)
        if path.is_file():
            files.append(path)
        else:
            missing.append(f"line {number}: {entry}" + (" is a folder" if path.is_dir() else ""))
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise FileNotFoundError(
            f"{option} {list_file}: {len(missing)} listed file(s) not found ({shown}); paths are "
            "relative to the current folder"
        )
    if not files:
        raise ValueError(f"{option} {list_file}: lists no image paths; expected {EXPECTED}")
    return files


def scan_inputs(inputs: str | Path, option: str = OPTION) -> InputFiles:
    """The image files ``inputs`` names (see [`input_files`][]), with what was left out or
    flagged ([`InputFiles`][]).

    Args:
        inputs: A folder, a text file listing image paths (one a line), or one image.
        option: The command-line option that gave ``inputs``, as the errors name it.

    Returns:
        The image files, in that order.

    Raises:
        FileNotFoundError: naming ``option`` and the path, when it does not exist or lists
            files that do not.
        ValueError: naming ``option`` and the path, for a folder without images, an empty list
            or a file that is neither text nor an image.
    """
    path = Path(inputs)
    if path.is_dir():
        found = InputFiles([], path)
        for p in sorted(path.rglob("*")):
            if not p.is_file():
                continue
            if p.suffix.lower() not in IMAGE_EXTENSIONS:
                found.skipped[p.suffix.lower() or "(none)"] += 1
            elif _outside(p, path):  # a link, or under a linked folder
                found.outside_links.append(p)
            else:
                found.files.append(p)
        if not found.files:
            raise ValueError(
                f"{option} {path}: no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in this "
                "folder or its sub-folders" + (f" ({found.summary()})" if found.summary() else "")
            )
        return found
    if not path.is_file():
        raise FileNotFoundError(f"{option} {path}: not found; expected {EXPECTED}")
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return InputFiles([path], path)
    files = _listed(path, option)
    here = Path.cwd()
    return InputFiles(files, path, outside_listed=[p for p in files if _outside(p, here)])


def input_files(inputs: str | Path, option: str = OPTION) -> list[Path]:
    """The image files ``inputs`` names: a folder's images (sub-folders included, sorted by
    path; files without an image extension and links to files outside the folder left out),
    the paths a text file lists (in its order), or ``inputs`` itself when it is an image.

    Args:
        inputs: A folder, a text file listing image paths (one a line), or one image.
        option: The command-line option that gave ``inputs``, as the errors name it.

    Raises:
        FileNotFoundError: naming ``option`` and the path, when it does not exist or lists
            files that do not.
        ValueError: naming ``option`` and the path, for a folder without images, an empty list
            or a file that is neither text nor an image.
    """
    return scan_inputs(inputs, option).files


class PredictFilesDataModule(LightningDataModule):
    """The files [`input_files`][] finds in ``inputs``, as one ``predict`` dataset named
    ``name``; implements the data contract (``window_cascades.datamodules.contract``) with the roles
    of [`window_cascades.vocabulary.roles.DatasetRoles.for_prediction`][].

    Each image is resized (shorter side to ``input_size / crop_pct``), centre-cropped to
    ``input_size`` and normalised with ``mean`` and ``std`` (one value per channel: 1 grey,
    3 RGB): timm's evaluation transform, as the image-file datamodules serve.

    Args:
        inputs: a folder, a text file listing image paths, or one image.
        input_size: the side of the square image a member is given, in pixels.
        mean: per-channel mean of the normalisation (1 value grey, 3 RGB).
        std: per-channel standard deviation of the normalisation, > 0.
        crop_pct: share of the resized image kept by the centre crop, in (0, 1].
        interpolation: ``bilinear`` or ``bicubic`` (the resize).
        batch_size: samples per batch of the dataloader.
        num_workers: the dataloader's worker processes.
        name: the dataset's name (the predictions' ``dataset`` column).
    """

    def __init__(
        self,
        inputs: str,
        input_size: int,
        mean: list[float],
        std: list[float],
        crop_pct: float = 1.0,
        interpolation: str = "bilinear",
        batch_size: int = 64,
        num_workers: int = 0,
        name: str = "inputs",
    ):
        super().__init__()
        if len(mean) not in (1, 3) or len(std) != len(mean):
            raise ValueError(f"mean and std must have 1 or 3 values each, got {mean} and {std}")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {list(INTERPOLATIONS)}, got {interpolation!r}"
            )
        self.inputs, self.scan = str(inputs), scan_inputs(inputs)
        self.files = self.scan.files
        self.image_size, self.crop_pct = int(input_size), float(crop_pct)
        self.interpolation = interpolation
        self.mean, self.std = [float(m) for m in mean], [float(s) for s in std]
        self.batch_size, self.num_workers, self.name = batch_size, num_workers, name
        self.eval_sets: dict[str, Dataset] = {}
        self.predict_names: list[str] | None = None

    @property
    def roles(self) -> DatasetRoles:
        return DatasetRoles.for_prediction([self.name])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (len(self.mean), self.image_size, self.image_size)

    @property
    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return tuple(self.mean), tuple(self.std)

    def setup(self, stage: str | None = None) -> None:
        """Build the one ``predict`` dataset from the files (once).

        Args:
            stage: Lightning's stage (``"predict"``, ``"test"``, ...).
        """
        if self.eval_sets:
            return
        files = self.files
        source = LabelledImages(
            lambda i: open_image(files[i], files), [-1] * len(files), [], self.inputs, files
        )
        transform = eval_transform(self.image_size, self.crop_pct, self.interpolation)
        mode = "RGB" if len(self.mean) == 3 else "L"
        self.eval_sets[self.name] = TransformedImages(
            source, list(range(len(files))), transform, self.mean, self.std, mode
        )

    def dataloader(self, name: str) -> DataLoader:
        """The evaluation dataloader of the dataset ``name`` (in order, unpadded).

        Args:
            name: The dataset's name (this datamodule has one, ``name``).

        Raises:
            KeyError: No dataset has that name.
        """
        if name not in self.eval_sets:
            raise KeyError(f"no dataset named {name!r}; this datamodule has {[self.name]}")
        return evaluation_loader(self.eval_sets[name], self.batch_size, self.num_workers)

    def test_dataloader(self) -> list[DataLoader]:
        """The one dataset's dataloader, as a list (the data contract's form)."""
        return [self.dataloader(self.name)]

    def predict_dataloader(self) -> list[DataLoader]:
        """The same as [`test_dataloader`][]."""
        return self.test_dataloader()
