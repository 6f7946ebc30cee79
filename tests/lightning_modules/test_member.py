"""Member options at scale (channels-last, compile, pretrained offline) and checkpoint refusal."""

from __future__ import annotations

import hashlib

import pytest
import torch

from tests.conftest import ROOT
from window_cascades.commands.cli import MemberCLI
from window_cascades.lightning_modules.member import MemberModule


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


@pytest.mark.slow  # ~45 s: the hub client retries before it gives up offline
def test_unknown_model_and_offline_pretrained_weights_are_clear_errors(monkeypatch):
    with pytest.raises(ValueError, match="timm has no model 'resnet_nope'"):
        MemberModule(model_name="resnet_nope")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-home")
    with pytest.raises(RuntimeError, match="could not load pretrained weights for 'resnet18'"):
        MemberModule(model_name="resnet18", pretrained=True)


@pytest.mark.slow  # starts a process: the fast loop leaves it to the full suite
def test_pretrained_weights_load_offline_from_a_local_hugging_face_cache(tmp_path):
    """`--model.pretrained true` with HF_HUB_OFFLINE=1 reads timm's weights from the cache
    under HF_HOME (written here as the hub would): no network, a new classifier."""
    import os
    import subprocess
    import sys

    import timm
    from safetensors.torch import save_file

    torch.manual_seed(3)
    source = timm.create_model("resnet10t")  # 1000 classes, as timm's resnet10t.c3_in1k
    repo = tmp_path / "hub" / "models--timm--resnet10t.c3_in1k"
    (repo / "snapshots" / ("a" * 40)).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    save_file(source.state_dict(), str(repo / "snapshots" / ("a" * 40) / "model.safetensors"))
    torch.save(source.state_dict(), tmp_path / "expected.pt")
    check = (
        "import torch\n"
        "from window_cascades.lightning_modules.member import MemberModule\n"
        "m = MemberModule(model_name='resnet10t', num_classes=3, in_chans=3, pretrained=True)\n"
        f"expected = torch.load({str(tmp_path / 'expected.pt')!r}, weights_only=True)\n"
        "body = {k: v for k, v in m.model.state_dict().items() if not k.startswith('fc.')}\n"
        "assert all(torch.equal(v, expected[k]) for k, v in body.items()), 'weights differ'\n"
        "assert m.model.fc.weight.shape == (3, 512)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", check],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]


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
    args = [
        *member_fit_args(data_cfg, out, "m0", seed=0, epochs=2),
        "--model.model_name=resnet18",
        f"--ckpt_path={out / 'm0' / 'checkpoints' / 'last.ckpt'}",
    ]
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


def test_a_member_starts_from_weights_on_disk_with_a_new_classifier(tmp_path):
    import timm
    from safetensors.torch import save_file

    source = timm.create_model("resnet10t", num_classes=3, in_chans=3)
    save_file(source.state_dict(), str(tmp_path / "r10.safetensors"))
    torch.save(source.state_dict(), tmp_path / "r10.pt")
    for path in (tmp_path / "r10.safetensors", tmp_path / "r10.pt"):
        member = MemberModule(num_classes=5, in_chans=1, weights=str(path))
        own, src = member.model.state_dict(), source.state_dict()
        torch.testing.assert_close(own["layer1.0.conv1.weight"], src["layer1.0.conv1.weight"])
        assert own["fc.weight"].shape == (5, source.fc.in_features)  # re-initialised
        # 3-channel first convolution adapted to 1-channel images (summed over colours)
        torch.testing.assert_close(
            own["conv1.0.weight"], src["conv1.0.weight"].sum(1, keepdim=True)
        )
    same = MemberModule(num_classes=3, in_chans=3, weights=str(tmp_path / "r10.pt"))
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(same.eval()(x), source.eval()(x))


def test_weights_of_another_architecture_or_pickled_are_refused(tmp_path):
    import timm

    torch.save(timm.create_model("resnet18", num_classes=10).state_dict(), tmp_path / "r18.pt")
    with pytest.raises(ValueError, match=r"r18.pt: these weights are not of a 'resnet10t' model"):
        MemberModule(weights=str(tmp_path / "r18.pt"))
    torch.save({"model": object()}, tmp_path / "pickled.pt")
    with pytest.raises(ValueError, match="pickled objects are never loaded"):
        MemberModule(weights=str(tmp_path / "pickled.pt"))
    with pytest.raises(FileNotFoundError, match="member weights not found"):
        MemberModule(weights=str(tmp_path / "nowhere.safetensors"))
    with pytest.raises(ValueError, match="not both"):
        MemberModule(weights=str(tmp_path / "r18.pt"), pretrained=True)


def test_fine_tuning_from_a_member_checkpoint_with_the_overlay_config(
    tiny_members, tmp_path, member_fit_args
):
    from tests.conftest import QUICKSTART
    from window_cascades.lightning_modules.member_checkpoint import load_member

    args = member_fit_args(tiny_members["data_cfg"], tmp_path, "ft", seed=3, epochs=1)
    args += [
        f"--config={QUICKSTART / 'finetune.yaml'}",
        "--trainer.max_epochs=1",
        f"--model.weights={tiny_members['ckpts'][0]}",
    ]
    cli = MemberCLI(args=args)
    assert cli.model.hparams.lr == 0.005 and cli.model.hparams.weights
    tuned = load_member(tmp_path / "ft" / "checkpoints" / "last.ckpt")  # weights not needed
    start = load_member(tiny_members["ckpts"][0])
    moved = (tuned.model.fc.weight - start.model.fc.weight).abs().max()
    assert 0 < moved < 0.5  # it started from the member and was trained a little


def test_a_member_at_its_own_resolution_keeps_its_checkpoint_keys_and_counts_its_macs():
    import timm

    from window_cascades.lightning_modules.complexity import count_macs_params

    at_48 = MemberModule(num_classes=10, in_chans=1, resolution=48)
    plain = MemberModule(num_classes=10, in_chans=1)
    assert at_48.state_dict().keys() == plain.state_dict().keys()
    reference = timm.create_model("resnet10t", num_classes=10, in_chans=1)
    # fed 32 px, it runs (and is counted) at 48 px
    assert (
        count_macs_params(at_48.model, (1, 32, 32))[0]
        == count_macs_params(reference, (1, 48, 48))[0]
    )
    reference.load_state_dict(at_48.model.state_dict())
    x = torch.randn(3, 1, 32, 32)
    big = torch.nn.functional.interpolate(x, size=(48, 48), mode="bilinear", align_corners=False)
    torch.testing.assert_close(at_48.eval()(x), reference.eval()(big))
    with pytest.raises(ValueError, match="vit_tiny_patch16_224 cannot take 48 x 48 px inputs"):
        MemberModule(model_name="vit_tiny_patch16_224", num_classes=10, in_chans=1, resolution=48)
    with pytest.raises(ValueError, match="resolution must be a positive number of pixels"):
        MemberModule(num_classes=10, in_chans=1, resolution=0)
    with pytest.raises(ValueError, match="resolution must be a positive number of pixels"):
        MemberModule(num_classes=10, in_chans=1, resolution="big")
    # "auto": the model's own timm data config (resnet10t: 176 px)
    auto = MemberModule(num_classes=10, in_chans=1, resolution="auto")
    assert (
        count_macs_params(auto.model, (1, 32, 32))[0]
        == count_macs_params(reference, (1, 176, 176))[0]
    )


@pytest.mark.slow
def test_a_cascade_of_members_at_different_resolutions(
    tiny_members, tmp_path, member_fit_args, cascade_test_args
):
    """A 32 px member, then one at 48 px trained from the same data config: each sees its
    own resolution in training, caching and the online cascade; the cost uses its MACs."""
    import json

    from tests.conftest import QUICKSTART
    from window_cascades.commands.cli import CascadeCLI
    from window_cascades.commands.pipeline_steps import cache_logits

    data_cfg = tiny_members["data_cfg"]
    MemberCLI(args=[*member_fit_args(data_cfg, tmp_path, "m48", 2, 1), "--model.resolution=48"])
    ckpt = tmp_path / "m48" / "checkpoints" / "last.ckpt"
    cache_logits(QUICKSTART / "member.yaml", ckpt, tmp_path / "logits", "m48", data_cfg)
    meta = json.loads((tmp_path / "logits" / "m48" / "meta.json").read_text())
    first = json.loads((tiny_members["logits_dir"] / "m0" / "meta.json").read_text())
    assert meta["macs"] > 2 * first["macs"]  # (48 / 32)^2 = 2.25
    results = tmp_path / "results"
    CascadeCLI(args=cascade_test_args(data_cfg, [tiny_members["ckpts"][0], str(ckpt)], results))
    summary = json.loads((results / "summary.json").read_text())
    macs = [m["macs"] for m in summary["members"]]
    assert macs == [first["macs"], meta["macs"]]
    window = summary["metrics"]["digits_test"]["window"]
    assert window["expected_macs"] == pytest.approx(macs[0] + window["exit_frac@2"] * macs[1])
    assert summary["metrics"]["digits_test"]["ensemble"]["acc"] > 0.5


def test_member_and_datamodule_options_share_no_name_but_the_linked_ones():
    """Lightning refuses a module and a datamodule whose hparams share a name with different
    values (as model.input_size vs data.input_size once did): only the CLI-linked ones may."""
    import inspect

    from window_cascades import datamodules
    from window_cascades.lightning_modules.cascade_module import CascadeModule

    def options(cls) -> set[str]:
        return set(inspect.signature(cls.__init__).parameters) - {"self"}

    for name in datamodules.__all__:
        cls = getattr(datamodules, name)
        if isinstance(cls, type) and hasattr(cls, "setup"):
            assert options(MemberModule) & options(cls) <= {"num_classes", "in_chans"}, name
            assert not options(CascadeModule) & options(cls), name
