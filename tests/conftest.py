"""Shared fixtures: tiny real configs (the quick-start configs, shrunk) and trained members."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

# Lightning is imported by the fixtures that train or evaluate (inside them), not here: a test
# that needs none of them runs without it.

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "configs" / "quickstart"
TREE_STATUS = pytest.StashKey[str | None]()


def _tree_status() -> str | None:
    """``git status --porcelain`` of the checkout (None outside a git checkout)."""
    try:
        proc = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[TREE_STATUS] = _tree_status()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No test writes into the repository: the suite fails when ``git status`` changed."""
    before, after = session.config.stash.get(TREE_STATUS, None), _tree_status()
    if before is None or after is None or before == after:
        return
    changed = sorted(set(after.splitlines()) ^ set(before.splitlines()))
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("tests changed the repository tree (git status):", red=True)
        for line in changed:
            reporter.write_line(f"  {line}", red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the trained ``tiny_members`` (through LightningCLI, about a minute per
    session) are slow: ``-m "not slow"`` (``scripts/test.sh --fast``) leaves them out."""
    for item in items:
        if "tiny_members" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


def _shrink_data_config(path: Path, **overrides) -> Path:
    cfg = yaml.safe_load((QUICKSTART / "data.yaml").read_text())
    args = cfg["init_args"]
    args.update({"batch_size": 64})
    for entry in args["datasets"]:
        if entry["role"] == "ood":
            entry["size"] = 120
    args.update(overrides)
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="session")
def small_data_config():
    """Writes a copy of the quick-start data config with small OOD sets (``**overrides`` of its
    init_args, e.g. ``train_limit=128``) to a path; returns the path."""
    return _shrink_data_config


def _member_fit_args(data_cfg: Path, out: Path, name: str, seed: int, epochs: int = 2):
    from window_cascades.commands.pipeline_steps import fit_member_args

    return fit_member_args(
        QUICKSTART / "member.yaml",
        seed,
        out / name,
        data_cfg,
        overrides=[f"--trainer.max_epochs={epochs}", *QUIET],
    )


@pytest.fixture(scope="session")
def member_fit_args():
    """LightningCLI ``fit`` args of a tiny member from the quick-start member config:
    ``(data_cfg, out, name, seed, epochs=2)``, checkpoints in ``out/name/checkpoints``."""
    return _member_fit_args


def _cascade_test_args(data_cfg: Path, members: list[str], results: Path, *extra: str):
    from window_cascades.commands.pipeline_steps import evaluate_cascade_args

    return evaluate_cascade_args(
        QUICKSTART / "cascade.yaml",
        members,
        results,
        data_cfg,
        overrides=["--trainer.enable_progress_bar=false", *extra],
    )


@pytest.fixture(scope="session")
def cascade_test_args():
    """LightningCLI ``test`` args of a cascade from the quick-start cascade config:
    ``(data_cfg, member checkpoints, results dir, *extra)``."""
    return _cascade_test_args


@pytest.fixture(scope="session")
def tiny_members(tmp_path_factory) -> dict:
    """Two resnet10t members trained for 2 epochs on the digits, with cached logits."""
    from window_cascades.commands.cli import MemberCLI
    from window_cascades.commands.pipeline_steps import cache_logits

    out = tmp_path_factory.mktemp("members")
    data_cfg = _shrink_data_config(out / "data.yaml")
    ckpts = []
    for i, seed in enumerate((0, 1)):
        MemberCLI(args=_member_fit_args(data_cfg, out, f"m{i}", seed))
        ckpts.append(str(out / f"m{i}" / "checkpoints" / "last.ckpt"))
        cache_logits(QUICKSTART / "member.yaml", ckpts[-1], out / "logits", f"m{i}", data_cfg)
    return {"dir": out, "data_cfg": data_cfg, "ckpts": ckpts, "logits_dir": out / "logits"}
