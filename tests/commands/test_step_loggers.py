"""wandb logging, offline: the keys, histograms, tables and member costs a dashboard shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from window_cascades.commands.cli import CascadeCLI, MemberCLI
from window_cascades.commands.step_loggers import finish_wandb

pytestmark = pytest.mark.wandb


def wandb_logger(save_dir, name: str, job_type: str) -> list[str]:
    return [
        "--trainer.logger=lightning.pytorch.loggers.WandbLogger",
        f"--trainer.logger.save_dir={save_dir}",
        "--trainer.logger.project=window-cascades-test",
        f"--trainer.logger.name={name}",
        "--trainer.logger.group=exp",
        f"--trainer.logger.job_type={job_type}",
    ]


def inspect(run_dir) -> str:
    """The run's records as JSON text, read back from its offline files."""
    wandb_cli = os.path.join(os.path.dirname(sys.executable), "wandb")
    proc = subprocess.run(
        [wandb_cli, "leet", "inspect", "--json", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_cascade_run_logs_metrics_histograms_curves_and_tradeoffs(
    tiny_members, tmp_path, cascade_test_args
):
    cli = CascadeCLI(
        args=[
            *cascade_test_args(
                tiny_members["data_cfg"],
                tiny_members["ckpts"],
                tmp_path / "results",
                "--model.bootstrap=20",
            ),
            *wandb_logger(tmp_path, "cascade", "evaluate"),
        ]
    )
    finish_wandb(cli)
    (run,) = (tmp_path / "wandb").glob("offline-run-*")
    text = inspect(run)
    for key in (
        "id/digits_test/window/cov@5",
        "ood/photo_patches/window/fpr@95",
        "shift/digits_noise/ensemble/ece",
        "id/digits_test/window/exit_stage",
        "ood/photo_patches/single_threshold/exit_stage",
        "test/sc/risk_coverage_table",
        "tradeoff/digits_test/cov@5_table",
        "tradeoff/photo_patches/fpr@95_table",
        "test/results",
        "test/deltas",
    ):
        assert f'"{key}' in text, key
    assert '"id/digits_test/window/exit_stage._type":"histogram"' in text.replace(" ", "")
    tables = {p.name.rsplit("_", 2)[0]: p for p in run.glob("files/media/table/**/*.table.json")}
    curve = json.loads(next(p for n, p in tables.items() if "risk_coverage" in n).read_text())
    assert curve["columns"] == ["policy", "coverage", "risk"]
    assert {row[0] for row in curve["data"]} >= {"single", "ensemble", "window"}
    assert all(0 <= row[1] <= 1 and 0 <= row[2] <= 1 for row in curve["data"])
    compact = text.replace(" ", "")
    assert '"members/m0/macs":' in compact and '"members/m1/params":' in compact
    assert '"fitted_policies"' in compact and '"window"' in compact
    assert '"job_type":"evaluate"' in text.replace(" ", "")


@pytest.mark.slow  # trains a member: the fast loop leaves it to the full suite
def test_member_run_logs_config_macs_and_params(tmp_path, member_fit_args, small_data_config):
    data_cfg = small_data_config(tmp_path / "data.yaml", train_limit=128)
    args = member_fit_args(data_cfg, tmp_path, "m0", seed=0, epochs=1)
    args = [a for a in args if not a.startswith("--trainer.logger.")]
    finish_wandb(MemberCLI(args=[*args, *wandb_logger(tmp_path, "m0-seed0", "member")]))
    (run,) = (tmp_path / "wandb").glob("offline-run-*")
    text = inspect(run).replace(" ", "")
    assert '"macs"' in text and '"params"' in text and '"resnet10t"' in text
    assert '"train/loss' in text and '"val/sc/cov@5' in text
    assert '"run_group":"exp"' in text and '"job_type":"member"' in text
