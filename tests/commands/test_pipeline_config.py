"""The paper's ImageNet recipe configs parse and build what the paper trained."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import ROOT
from window_cascades.commands.cli import MemberCLI
from window_cascades.commands.pipeline_config import load_pipeline_config

EXPERIMENTS = sorted((ROOT / "configs" / "imagenet" / "experiments").glob("*.yaml"))
# (architecture, resolution, params in millions from the paper's Table / timm, +-3%)
EXPECTED = {
    "efficientnet_b0": ("efficientnet_b0", 224, 5.3),
    "efficientnet_b1": ("efficientnet_b1", 240, 7.8),
    "efficientnet_b2": ("efficientnet_b2", 260, 9.1),
    "efficientnet_b3": ("efficientnet_b3", 300, 12.2),
    "efficientnet_b4": ("efficientnet_b4", 380, 19.3),
    "mobilenetv2_100_160": ("mobilenetv2_100", 160, 3.5),
    "mobilenetv2_100_192": ("mobilenetv2_100", 192, 3.5),
    "mobilenetv2_100_224": ("mobilenetv2_100", 224, 3.5),
    "mobilenetv2_130_224": ("mobilenetv2_130", 224, 5.3),
    "mobilenetv2_140_224": ("mobilenetv2_140", 224, 6.1),
}


def test_every_paper_model_has_an_experiment():
    assert sorted(p.stem for p in EXPERIMENTS) == sorted(EXPECTED)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_builds_the_paper_member(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    cfg = load_pipeline_config(path)
    cli = MemberCLI(
        args=[
            f"--config={cfg['member_config']}",
            *cfg["member_args"],
            "--trainer.accelerator=cpu",
            "--trainer.devices=1",
            "--trainer.strategy=auto",
            "--trainer.precision=32",
            "--trainer.logger=false",
        ],
        run=False,
    )
    name, res, params = EXPECTED[path.stem]
    hp, dm = cli.model.hparams, cli.datamodule
    assert hp.model_name == name and hp.num_classes == 1000 and hp.in_chans == 3
    n = sum(p.numel() for p in cli.model.model.parameters()) / 1e6
    assert abs(n - params) / params < 0.03, n
    assert (dm.image_size, dm.crop_pct, dm.heldout_size) == (res, 0.875, 50000)
    assert hp.weight_decay == 4e-5 and hp.warmup_epochs == 5 and not hp.nesterov
    assert hp.channels_last
    member = yaml.safe_load((ROOT / cfg["member_config"]).read_text())
    assert member["trainer"]["max_epochs"] == 250 and member["trainer"]["precision"] == "16-mixed"
    batch = dm.batch_size * member["trainer"]["devices"]
    assert (hp.lr, batch) == ((0.1, 512) if name == "efficientnet_b4" else (0.2, 1024))
    assert len(cfg["seeds"]) == 5 and cfg["cascade_args"] == [f"--data.init_args.input_size={res}"]
    roles = dm.roles
    assert list(roles.values()).count("ood") == 3 and list(roles.values()).count("shift") == 16
