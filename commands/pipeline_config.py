"""The experiment config of ``scripts/run_pipeline.py``, read and checked before any heavy import.

Fields: ``out``, ``seeds`` (one member per seed), ``member_config`` and ``cascade_config`` (the
LightningCLI configs of the steps), optional ``experiment`` (default: the config's folder
name), ``logger`` (``csv`` or ``wandb``), ``wandb_project``, ``member_args`` and
``cascade_args`` (LightningCLI overrides applied to every member / the cascade), and
``replace_results`` (default false: an earlier evaluation in ``<out>/results`` is refused
unless ``--overwrite``; true: it is replaced, with a one-line notice, while finished members
are reused; the quick start sets it so that it runs again).

The config is a file, or the name of a shipped one (``quickstart``; see
``window_cascades.commands.shipped_configs``), whose step configs are then the shipped files.
"""

from __future__ import annotations

from pathlib import Path

from window_cascades.commands.cli_entry import CASCADE, MEMBER
from window_cascades.commands.precheck import load_yaml_file, precheck
from window_cascades.commands.shipped_configs import find_pipeline_config, shipped_reference

PIPELINE_KEYS = {
    "experiment",
    "out",
    "seeds",
    "member_config",
    "cascade_config",
    "logger",
    "wandb_project",
    "member_args",
    "cascade_args",
    "replace_results",
}


def load_pipeline_config(path: str | Path) -> dict:
    """Read and check the experiment YAML, a file or a shipped config's name (errors name the
    file and the field)."""
    p, shipped = find_pipeline_config(path)
    cfg = load_yaml_file(p, "--config") or {}
    if not isinstance(cfg, dict):
        raise ValueError(f"{p}: expected a mapping of fields, got {type(cfg).__name__}")
    unknown = set(cfg) - PIPELINE_KEYS
    if unknown:
        raise ValueError(
            f"{p}: unknown field(s) {sorted(unknown)}; expected {sorted(PIPELINE_KEYS)}"
        )
    for key in ("out", "seeds", "member_config", "cascade_config"):
        if key not in cfg:
            raise ValueError(f"{p}: missing field {key!r}")
    if shipped:  # its step configs are named from the package's root: the shipped files
        for key in ("member_config", "cascade_config"):
            cfg[key] = shipped_reference(str(cfg[key]))
    if not cfg["seeds"] or len(set(cfg["seeds"])) != len(cfg["seeds"]):
        raise ValueError(f"{p}: seeds must be a non-empty list of distinct integers")
    cfg.setdefault("experiment", p.parent.name)
    cfg.setdefault("logger", "csv")
    cfg.setdefault("wandb_project", "window-cascades")
    for key in ("member_args", "cascade_args"):  # LightningCLI overrides, e.g. per model
        cfg.setdefault(key, [])
        if not isinstance(cfg[key], list) or not all(isinstance(a, str) for a in cfg[key]):
            raise ValueError(f"{p}: {key} must be a list of strings such as '--trainer.devices=8'")
    cfg.setdefault("replace_results", False)
    if not isinstance(cfg["replace_results"], bool):
        raise ValueError(
            f"{p}: replace_results must be true or false, got {cfg['replace_results']!r}"
        )
    if cfg["logger"] not in ("csv", "wandb"):
        raise ValueError(f"{p}: logger must be 'csv' or 'wandb', got {cfg['logger']!r}")
    # the step configs and overrides, as far as they can be checked before any import
    precheck(["fit", "--config", str(cfg["member_config"]), *cfg["member_args"]], MEMBER)
    precheck(["test", "--config", str(cfg["cascade_config"]), *cfg["cascade_args"]], CASCADE)
    return cfg
