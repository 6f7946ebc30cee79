"""Member options at scale (channels-last, compile, pretrained offline) and checkpoint refusal."""

from __future__ import annotations

import hashlib

import pytest
import torch

from lightning_modules.cli import MemberCLI
from lightning_modules.member import MemberModule


def test_channels_last_and_compile_keep_outputs_and_checkpoint_keys():
    torch.manual_seed(0)
    plain = MemberModule(num_classes=4, in_chans=3)
    fast = MemberModule(num_classes=4, in_chans=3, channels_last=True)
    fast.load_state_dict(plain.state_dict())
    assert plain.state_dict().keys() == fast.state_dict().keys()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(plain.eval()(x), fast.eval()(x), rtol=1e-4, atol=1e-5)
    conv = next(m for m in fast.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    compiled = MemberModule(num_classes=4, in_chans=3, compile=True)
    assert compiled.state_dict().keys() == plain.state_dict().keys()


def test_unknown_model_and_offline_pretrained_weights_are_clear_errors(monkeypatch):
    with pytest.raises(ValueError, match="timm has no model 'resnet_nope'"):
        MemberModule(model_name="resnet_nope")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-home")
    with pytest.raises(RuntimeError, match="could not load pretrained weights for 'resnet18'"):
        MemberModule(model_name="resnet18", pretrained=True)


def folder_digest(folder) -> dict:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory, member_fit_args, small_data_config):
    out = tmp_path_factory.mktemp("run")
    data_cfg = small_data_config(out / "data.yaml", train_limit=128)
    MemberCLI(args=member_fit_args(data_cfg, out, "m0", seed=0, epochs=1))
    return out, data_cfg


def test_checkpoint_of_another_architecture_is_refused_with_both_names(trained, member_fit_args):
    out, data_cfg = trained
    before = folder_digest(out / "m0")
    args = [*member_fit_args(data_cfg, out, "m0", seed=0, epochs=2), "--model.model_name=resnet18",
            f"--ckpt_path={out / 'm0' / 'checkpoints' / 'last.ckpt'}"]  # fmt: skip
    with pytest.raises(ValueError, match="holds a 'resnet10t' member; this run builds 'resnet18'"):
        MemberCLI(args=args)
    assert folder_digest(out / "m0") == before


def test_corrupt_checkpoint_is_refused_without_touching_the_run_folder(trained, member_fit_args):
    out, data_cfg = trained
    bad = out / "m0" / "checkpoints" / "corrupt.ckpt"
    bad.write_bytes((out / "m0" / "checkpoints" / "last.ckpt").read_bytes()[:5000])
    before = folder_digest(out / "m0")
    args = [*member_fit_args(data_cfg, out, "m0", seed=0, epochs=2), f"--ckpt_path={bad}"]
    with pytest.raises(ValueError, match="corrupt.ckpt: not a readable checkpoint"):
        MemberCLI(args=args)
    assert folder_digest(out / "m0") == before
