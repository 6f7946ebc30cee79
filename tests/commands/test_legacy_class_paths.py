"""Class paths written before the ``window_cascades`` namespace (``datamodules.X``) read as
their new names, with a notice; a user's own package of such a name keeps its classes."""

from __future__ import annotations

import sys

import yaml

from tests.conftest import ROOT
from window_cascades.commands.legacy_class_paths import (
    renamed_arguments,
    renamed_class_path,
    renamed_values,
)


def test_a_class_path_written_before_the_namespace_reads_as_its_new_name(capsys):
    assert (
        renamed_class_path("datamodules.DigitsDataModule")
        == "window_cascades.datamodules.DigitsDataModule"
    )
    assert (
        renamed_class_path("lightning_modules.callbacks.CascadeCalibration")
        == "window_cascades.lightning_modules.callbacks.CascadeCalibration"
    )
    for kept in ("datamodules.NoSuchModule", "torch.nn.Linear", "cascade.yaml", "configs/x.yaml"):
        assert renamed_class_path(kept) is None, kept
    config = yaml.safe_load((ROOT / "configs" / "quickstart" / "data.yaml").read_text())
    old = {**config, "class_path": config["class_path"].removeprefix("window_cascades.")}
    assert renamed_values(old, "data.yaml: ") == config
    assert renamed_arguments(["--data", "datamodules.IDXDataModule", "--x=datamodules.IDX"]) == [
        "--data",
        "window_cascades.datamodules.IDXDataModule",
        "--x=datamodules.IDX",
    ]
    notices = capsys.readouterr().err.strip().splitlines()
    assert any(
        line.startswith("notice: data.yaml: class path 'datamodules.DigitsDataModule'")
        for line in notices
    )


def test_a_users_own_package_of_an_old_name_keeps_its_classes(tmp_path, monkeypatch):
    """In a project with its own ``datamodules`` package, ``datamodules.DigitsDataModule`` is
    the user's class, not ours."""
    folder = tmp_path / "project"
    (folder / "datamodules").mkdir(parents=True)
    (folder / "datamodules" / "__init__.py").write_text("class DigitsDataModule: ...\n")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "datamodules", raising=False)
    assert renamed_class_path("datamodules.DigitsDataModule") is None
