"""A member's recipe: what decides the weights it trains to, recorded with the member so that a
later pipeline run does not reuse a member trained to another recipe.

The recipe is the resolved LightningCLI ``fit`` config (every file and override merged): the
``model``, ``data``, ``trainer`` and ``optimizer``/``lr_scheduler`` settings and
``seed_everything``. Left out is what only says where or how visibly it runs: the trainer's
output folder, logger, progress bar, model summary, logging interval, callbacks, and process
placement (accelerator, devices, nodes, strategy, plugins), and the data loader's workers.
"""

from __future__ import annotations

import hashlib
import json

import yaml

RECIPE_GROUPS = ("seed_everything", "model", "data", "trainer", "optimizer", "lr_scheduler")
UNTRACKED_TRAINER = (
    "default_root_dir",
    "logger",
    "enable_progress_bar",
    "enable_model_summary",
    "log_every_n_steps",
    "callbacks",
    "enable_checkpointing",
    "accelerator",
    "devices",
    "num_nodes",
    "strategy",
    "plugins",
)
UNTRACKED_DATA = ("num_workers",)


def member_recipe(cli) -> dict:
    """The recipe of a ``MemberCLI`` (built with or without running ``fit``), JSON-safe."""
    dumped = yaml.safe_load(cli.parser.dump(cli.config, skip_link_targets=False, skip_none=False))
    config = dumped.get(cli.subcommand, dumped) if getattr(cli, "subcommand", None) else dumped
    recipe = {k: config.get(k) for k in RECIPE_GROUPS}
    trainer = dict(recipe["trainer"] or {})
    for key in UNTRACKED_TRAINER:
        trainer.pop(key, None)
    recipe["trainer"] = trainer
    data = recipe["data"]
    if isinstance(data, dict) and isinstance(data.get("init_args"), dict):
        data = {**data, "init_args": dict(data["init_args"])}
        for key in UNTRACKED_DATA:
            data["init_args"].pop(key, None)
        recipe["data"] = data
    return json.loads(json.dumps(recipe, sort_keys=True, default=str))


def recipe_sha256(recipe: dict) -> str:
    """Hex SHA-256 of the recipe's canonical JSON (its fingerprint)."""
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def _flat(value: object, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict) and value:
        out: dict[str, object] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def differing_keys(recorded: dict, current: dict) -> list[str]:
    """The dotted keys (``trainer.max_epochs``, ``optimizer.init_args.lr``) whose values differ
    between two recipes, sorted; keys present in only one count as differing."""
    a, b = _flat(recorded), _flat(current)
    return sorted(k for k in a.keys() | b.keys() if (k in a) != (k in b) or a.get(k) != b.get(k))
