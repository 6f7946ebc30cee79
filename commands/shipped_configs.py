"""The configs shipped with the package (``configs/``), by name, and ``window-cascades init``.

The top-level ``configs/`` folder is package data: in an installed wheel it lies beside
``commands/`` in site-packages, in a checkout at the repository root, so both find it as
``<this folder>/../configs``. A pipeline config is named by its path under ``configs/``
without ``.yaml``, or by its folder when it is that folder's ``pipeline.yaml``:

    window-cascades pipeline --config quickstart           # configs/quickstart/pipeline.yaml
    window-cascades pipeline --config imagenet/experiments/efficientnet_b0

A shipped pipeline config names its step configs by their path from the package's root
(``member_config: configs/quickstart/member.yaml``); those resolve to the shipped files, so a
named config runs from any folder, and writes only into it (``out`` is relative to the
current folder). ``window-cascades init [NAME]`` copies a shipped experiment (the pipeline
config and every config it uses) into ``./configs/`` to edit and run by path.
"""

from __future__ import annotations

import argparse
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
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and {"seeds", "out", *PIPELINE_FIELDS} <= set(data):
            name = path.relative_to(CONFIGS).with_suffix("").as_posix()
            names.append(name.removesuffix("/pipeline"))
    return names


def shipped_pipeline(name: str) -> Path | None:
    """The shipped pipeline config called ``name``, or None."""
    if not name or name.endswith((".yaml", ".yml")) or ".." in Path(name).parts:
        return None
    for path in (CONFIGS / name / "pipeline.yaml", CONFIGS / f"{name}.yaml"):
        if path.is_file():
            return path
    return None


def find_pipeline_config(value: str | Path) -> tuple[Path, bool]:
    """The pipeline config ``value`` names: a file, else a shipped config of that name.

    Returns the path and whether it is a shipped one. A missing file raises
    ``FileNotFoundError`` listing the shipped names.
    """
    path = Path(value)
    if path.is_file():
        return path, is_shipped(path)
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


def shipped_reference(value: str) -> str:
    """A step config named by a shipped pipeline config (``configs/...`` from the package's
    root), as the shipped file's path; an absolute path is kept."""
    path = Path(value)
    return value if path.is_absolute() else str(CONFIGS.parent / path)


def experiment_files(pipeline: Path) -> list[Path]:
    """The shipped files of an experiment: the pipeline config (with the other configs of its
    folder when it is a ``pipeline.yaml``), its step configs and the files they name."""
    files = [pipeline]
    if pipeline.name == "pipeline.yaml":
        files += sorted(pipeline.parent.glob("*.yaml"))
    cfg = yaml.safe_load(pipeline.read_text()) or {}
    for field in PIPELINE_FIELDS:
        step_config = Path(shipped_reference(str(cfg[field])))
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
