"""Output paths checked where the options enter, before any work: the wrong kind (a folder
where a file goes, a file where a folder goes), no permission to write, or inside (or holding)
an input. Every message names the option and the path.

These checks are about the path itself; what an output folder may already hold (an earlier
run, other files) is [`window_cascades.artifacts.run_folder.check_output_folder`][]'s part.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from window_cascades.artifacts.run_folder import OutputFolderError


class OutputPathError(OutputFolderError):
    """An output path (file or folder) that cannot take the command's output (names the option
    and the path); an [`OutputFolderError`][], which callers already catch."""


def _existing_ancestor(path: Path) -> Path:
    """The nearest part of ``path`` (itself or a parent) that exists."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path(path.anchor or ".")


def _writable(folder: Path) -> bool:
    """Whether this process may create and rename entries in ``folder``. As root, a folder
    without any write bit (``chmod a-w``) counts as read-only too: it was made so on purpose."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    if os.geteuid() == 0:
        return bool(folder.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return True


def _may_replace(entry: Path) -> bool:
    """Whether ``entry`` may be renamed away: in a sticky folder (such as /tmp) only its owner,
    the folder's owner or root may (otherwise: ``[Errno 1] Operation not permitted``)."""
    parent = entry.parent
    info = parent.stat()
    if not info.st_mode & stat.S_ISVTX or os.geteuid() == 0:
        return True
    return os.geteuid() in (info.st_uid, entry.lstat().st_uid)


def _check_parent(path: Path, option: str, what: str) -> None:
    ancestor = _existing_ancestor(path.parent)
    if not ancestor.is_dir():
        raise OutputPathError(
            f"{option} {path}: {ancestor} is a file, so the {what} cannot be created under it"
        )
    if not _writable(ancestor):
        where = "its folder" if ancestor == path.parent else f"{ancestor} (to create its folder)"
        raise OutputPathError(
            f"{option} {path}: no permission to write in {where}; choose another path"
        )


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _check_inputs(path: Path, option: str, inputs: Iterable[tuple[str, str | Path]]) -> None:
    resolved = path.resolve()
    for input_option, input_path in inputs:
        if not input_path:
            continue
        source = Path(input_path).resolve()
        if source.is_dir() and _within(resolved, source):
            raise OutputPathError(
                f"{option} {path} is inside the input folder {input_option} {input_path}; "
                "write outputs elsewhere"
            )
        if _within(source, resolved) and resolved != source:
            raise OutputPathError(
                f"{option} {path} holds the input {input_option} {input_path}, which replacing "
                "it would delete; write outputs elsewhere"
            )


def check_output_file(
    path: str | Path, option: str, inputs: Iterable[tuple[str, str | Path]] = ()
) -> Path:
    """Check that ``path`` can take a file written whole (a temporary file, then a rename).

    Args:
        path: the output file.
        option: how the command names it (e.g. ``--predictions.path``).
        inputs: (option, path) of the command's inputs (files or folders) the output must not
            be inside of nor replace.

    Raises:
        OutputPathError: naming the option and the path, when it is a folder, a read-only file,
            under a file, in a folder this process cannot write, inside an input folder or an
            input itself.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{option} {path} is a folder; expected a file path")
    for option_in, input_path in inputs:
        if input_path and path.exists() and path.resolve() == Path(input_path).resolve():
            raise OutputPathError(f"{option} {path} is the input {option_in}; write it elsewhere")
    _check_parent(path, option, "file")
    if path.exists():
        if not os.access(path, os.W_OK) or not path.stat().st_mode & stat.S_IWUSR:
            raise OutputPathError(f"{option} {path} is read-only; choose another path")
        if not _may_replace(path):
            raise OutputPathError(
                f"{option} {path} belongs to another user in a shared folder; choose another path"
            )
    _check_inputs(path, option, inputs)
    return path


def check_output_dir(
    path: str | Path,
    option: str,
    inputs: Iterable[tuple[str, str | Path]] = (),
    replaced: bool = True,
) -> Path:
    """Check that ``path`` can be a folder of outputs (created, or replaced whole).

    Args:
        path: the output folder.
        option: how the command names it (e.g. ``--out``, ``--results.dir``).
        inputs: (option, path) of the command's inputs the folder must not be inside of nor
            hold.
        replaced: the folder is replaced whole (a run folder); False: files are added to it
            (e.g. a logits cache).

    Raises:
        OutputPathError: naming the option and the path, when it is a file, read-only (itself
            or the folder it is in), under a file, inside an input folder or holding an input.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{option} {path} is a file; expected a folder")
    _check_parent(path, option, "folder")
    if path.is_dir():
        if not _writable(path):
            raise OutputPathError(f"{option} {path} is a read-only folder; choose another path")
        if replaced and not _may_replace(path):
            raise OutputPathError(
                f"{option} {path} belongs to another user in a shared folder, so it cannot be "
                "replaced; choose another path"
            )
    _check_inputs(path, option, inputs)
    return path


INPUT_KEYS = ("path", "images", "labels", "root", "data_dir")


def data_input_paths(init_args: object, prefix: str = "--data") -> list[tuple[str, str]]:
    """(option, path) of every file or folder a data config reads: the values of its ``path``,
    ``images``, ``labels``, ``root`` and ``data_dir`` keys, at any depth (``train``, ``test``,
    each entry of ``datasets``)."""
    found: list[tuple[str, str]] = []
    if isinstance(init_args, dict):
        for key, value in init_args.items():
            if key in INPUT_KEYS and isinstance(value, str) and value:
                found.append((f"{prefix}.{key}", value))
            else:
                found += data_input_paths(value, f"{prefix}.{key}")
    elif isinstance(init_args, list | tuple):
        for i, value in enumerate(init_args):
            found += data_input_paths(value, f"{prefix}[{i}]")
    return found
