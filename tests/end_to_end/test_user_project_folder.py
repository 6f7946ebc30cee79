"""The package inside a user's own Lightning project: one import name, ``window_cascades``.

A folder holding the user's own ``commands/``, ``datamodules/``, ``configs/``, ``artifacts/``
and ``cascade/`` packages (common names in Lightning projects) is where the user runs the
command, and where SLURM jobs start (``python -m window_cascades`` there puts the folder first
on ``sys.path``): nothing of the project is taken from that folder, and nothing of the folder
is imported. Configs written before the namespace (``class_path: datamodules.X``) still load,
with a one-line notice, unless the user's own package of that name provides the class.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from window_cascades.commands.window_cascades import SUBCOMMANDS

USER_PACKAGES = ("commands", "datamodules", "configs", "artifacts", "cascade")


def user_project(folder: Path) -> Path:
    """A project folder whose packages leave a mark in ``imported/`` when imported."""
    (folder / "imported").mkdir(parents=True)
    for name in USER_PACKAGES:
        (folder / name).mkdir()
        (folder / name / "__init__.py").write_text(
            f"from pathlib import Path\n(Path({str(folder)!r}) / 'imported' / {name!r}).touch()\n"
        )
    return folder


def run(folder: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m window_cascades ARGS`` in ``folder`` (which puts it first on sys.path)."""
    return subprocess.run(
        [sys.executable, "-m", "window_cascades", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_import_and_every_subcommand_help_take_nothing_from_the_folder(tmp_path):
    folder = user_project(tmp_path / "project")
    found = subprocess.run(
        [sys.executable, "-c", "import window_cascades as w; print(w.__file__, w.__version__)"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert found.returncode == 0, found.stderr
    assert not found.stdout.startswith(str(folder))
    for name in SUBCOMMANDS:
        shown = run(folder, name, "--help")
        assert shown.returncode == 0, (name, shown.stderr[-2000:])
        assert f"window-cascades {name}" in shown.stdout, name
    assert sorted(p.name for p in (folder / "imported").iterdir()) == []


def test_submit_dry_run_from_the_folder(tmp_path):
    """The job scripts run ``$PYTHON -m window_cascades`` in the submit folder: the command
    they are given names the package, never a folder's ``commands``."""
    folder = user_project(tmp_path / "project")
    shown = run(folder, "submit", "quickstart", "--dry-run")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "sbatch" in shown.stdout
    jobs = [ROOT / "scripts" / "slurm" / f for f in ("train_members.sbatch", "evaluate.sbatch")]
    for job in jobs:
        text = job.read_text()
        assert "-m window_cascades " in text and "-m commands" not in text
    assert sorted(p.name for p in (folder / "imported").iterdir()) == []


@pytest.mark.slow  # trains the quick start's two members (about a minute)
def test_the_quick_start_runs_in_the_folder_and_imports_nothing_of_it(tmp_path):
    folder = user_project(tmp_path / "project")
    done = run(folder, "pipeline", "--config", "quickstart", "--no-progress", timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (folder / "outputs" / "quickstart" / "results" / "metrics.csv").is_file()
    assert sorted(p.name for p in (folder / "imported").iterdir()) == []


def test_an_old_config_runs_with_one_notice(tmp_path, tiny_members, cascade_test_args):
    """A data config of an earlier release (``class_path: datamodules.DigitsDataModule``) runs
    through the command, with one notice naming the file."""
    data = yaml.safe_load(Path(tiny_members["data_cfg"]).read_text())
    data["class_path"] = data["class_path"].removeprefix("window_cascades.")
    old = tmp_path / "old_data.yaml"
    old.write_text(yaml.safe_dump(data))
    args = cascade_test_args(old, tiny_members["ckpts"], tmp_path / "results")
    done = run(tmp_path, "cascade", *args, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    notices = [line for line in done.stderr.splitlines() if "datamodules.DigitsDataModule" in line]
    assert len(notices) == 1 and notices[0].startswith(f"notice: {old}: "), notices
    assert (tmp_path / "results" / "metrics.csv").is_file()
