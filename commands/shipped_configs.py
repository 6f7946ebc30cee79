"""The configs shipped with the package (``configs/``), by name, and ``window-cascades init``.

The top-level ``configs/`` folder is package data: in an installed wheel it lies beside
``commands/`` in site-packages, in a checkout at the repository root, so both find it as
``<this folder>/../configs``. A pipeline config is named by its path under ``configs/``
without ``.yaml``, or by its folder when it is that folder's ``pipeline.yaml``:

    window-cascades pipeline --config quickstart           # configs/quickstart/pipeline.yaml
    window-cascades pipeline --config imagenet/experiments/efficientnet_b0

A pipeline config names its step configs relative to its own folder (``member_config:
member.yaml``), so a named config runs from any folder, and writes only into it (``out`` is
relative to the current folder). ``window-cascades init [NAME]`` copies a shipped experiment
(the pipeline config and every config it uses) into ``./configs/`` to edit; ``--config NAME``
then runs that copy (with a notice) rather than the shipped one.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from window_cascades.commands.plugins import (
    PluginError,
    add_plugin_option,
    load_command_plugins,
    plugin_error,
)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PIPELINE_FIELDS = ("member_config", "cascade_config")


def shipped_names() -> list[str]:
    """The names of the shipped pipeline configs (configs holding ``seeds`` and ``out``)."""
    names = []
    for path in sorted(CONFIGS.rglob("*.yaml")):
        if is_pipeline_config(path):
            name = path.relative_to(CONFIGS).with_suffix("").as_posix()
            names.append(name.removesuffix("/pipeline"))
    return names


def is_pipeline_config(path: Path) -> bool:
    """Whether ``path`` is a pipeline config (a YAML mapping with ``seeds``, ``out`` and the
    step configs), not a step's config or a data config."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and {"seeds", "out", *PIPELINE_FIELDS} <= set(data)


def shipped_pipeline(name: str) -> Path | None:
    """The shipped pipeline config called ``name``, or None (also for a shipped file that is
    not a pipeline config, e.g. ``quickstart/member``)."""
    if not name or name.endswith((".yaml", ".yml")) or ".." in Path(name).parts:
        return None
    for path in (CONFIGS / name / "pipeline.yaml", CONFIGS / f"{name}.yaml"):
        if path.is_file() and is_pipeline_config(path):
            return path
    return None


def local_pipeline(name: str) -> Path | None:
    """The user's copy of the shipped config ``name`` (``window-cascades init`` writes it):
    ``./configs/<name>/pipeline.yaml`` or ``./configs/<name>.yaml`` of the current folder."""
    if not name or name.endswith((".yaml", ".yml")) or ".." in Path(name).parts:
        return None
    local = Path("configs")
    for path in (local / name / "pipeline.yaml", local / f"{name}.yaml"):
        if path.is_file() and not is_shipped(path):
            return path
    return None


def find_pipeline_config(value: str | Path) -> tuple[Path, bool]:
    """The pipeline config ``value`` names: a file (or a folder holding ``pipeline.yaml``),
    else the user's copy of a shipped config in ``./configs/`` (what ``init`` wrote; one line
    says it is used), else the shipped config of that name.

    Returns the path and whether it is a shipped one. A missing file raises
    ``FileNotFoundError`` listing the shipped names.
    """
    path = Path(value)
    if path.is_dir() and (path / "pipeline.yaml").is_file():
        path = path / "pipeline.yaml"
    if path.is_file():
        return path, is_shipped(path)
    local = local_pipeline(str(value))
    if local is not None:
        print(
            f"note: --config {value}: using {local}, your copy in ./configs/ (the shipped "
            f"{value} is used where it is absent)",
            file=sys.stderr,
        )
        return local, False
    shipped = shipped_pipeline(str(value))
    if shipped is not None:
        return shipped, True
    raise FileNotFoundError(
        f"pipeline config not found: {path} (neither a file nor a shipped config: "
        f"{', '.join(shipped_names())})"
    )


def is_shipped(path: Path) -> bool:
    """Whether ``path`` lies in the shipped ``configs/`` folder."""
    return path.resolve().is_relative_to(CONFIGS)


def step_config_path(pipeline: Path, value: str, field: str = "member_config") -> Path:
    """A step config named by the pipeline config ``pipeline``: a path relative to the
    pipeline file's folder (an absolute path as it is).

    A relative path found only relative to the current folder (the rule of earlier
    releases, e.g. ``configs/quickstart/member.yaml`` in a copy ``init`` wrote then) is used
    with a one-line notice. Otherwise the path relative to the pipeline file is returned (a
    missing file is then reported where it is read).
    """
    path = Path(value)
    if path.is_absolute():
        return path
    beside = Path(os.path.normpath(pipeline.parent / path))
    if not beside.exists() and path.is_file() and not is_shipped(pipeline):
        print(
            f"note: {pipeline}: {field} {value} is read relative to the current folder (the "
            f"earlier rule); step configs are read relative to the pipeline file: write "
            f"{os.path.relpath(path, pipeline.parent)} to keep it working from any folder",
            file=sys.stderr,
        )
        return path
    return beside


def experiment_files(pipeline: Path) -> list[Path]:
    """The shipped files of an experiment: the pipeline config (with the other configs of its
    folder when it is a ``pipeline.yaml``), its step configs and the files they name."""
    files = [pipeline]
    if pipeline.name == "pipeline.yaml":
        files += sorted(pipeline.parent.glob("*.yaml"))
    cfg = yaml.safe_load(pipeline.read_text()) or {}
    for field in PIPELINE_FIELDS:
        step_config = step_config_path(pipeline, str(cfg[field]), field)
        files.append(step_config)
        for value in (yaml.safe_load(step_config.read_text()) or {}).values():
            if isinstance(value, str) and value.endswith((".yaml", ".yml")):
                files.append(step_config.parent / value)
    return [f.resolve() for f in dict.fromkeys(files)]


def init_main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """``window-cascades init [NAME]``: copy a shipped experiment into ``./configs/``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:  # taken as by every subcommand (it writes configs only)
        _, argv = load_command_plugins(argv)
    except PluginError as err:
        return plugin_error(err, argv)
    names = shipped_names()
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Write a shipped experiment's configs into ./configs/ (the same paths as "
        "in the package), to edit and run with `window-cascades pipeline --config PATH`.",
        epilog=f"shipped experiments: {', '.join(names)}",
    )
    parser.add_argument("name", nargs="?", default="quickstart", help="default: quickstart")
    parser.add_argument("--force", action="store_true", help="replace files that differ")
    add_plugin_option(parser)
    args = parser.parse_args(argv)
    pipeline = shipped_pipeline(args.name)
    if pipeline is None:
        parser.error(f"no shipped experiment {args.name!r}; expected one of {', '.join(names)}")
    files = {f: Path.cwd() / f.relative_to(CONFIGS.parent) for f in experiment_files(pipeline)}
    differing = [
        str(dest.relative_to(Path.cwd()))
        for src, dest in files.items()
        if dest.exists() and (not dest.is_file() or dest.read_bytes() != src.read_bytes())
    ]
    if differing and not args.force:
        print(
            f"error: {', '.join(differing)}: already there, and not the shipped version; "
            "pass --force to replace",
            file=sys.stderr,
        )
        return 2
    for src, dest in files.items():
        shown = dest.relative_to(Path.cwd())
        if dest.is_file() and dest.read_bytes() == src.read_bytes():
            print(f"kept {shown} (the shipped version)")
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(src.read_bytes())
        print(f"wrote {shown}")
    config = files[pipeline.resolve()].relative_to(Path.cwd())
    print(f"next: window-cascades pipeline --config {config}")
    return 0
