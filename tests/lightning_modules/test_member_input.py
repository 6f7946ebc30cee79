"""A member's own normalisation: converted from the data's in training, caching and the cascade,
recorded in its checkpoint, and refused clearly when malformed."""

from __future__ import annotations

import json

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import load_file

from tests.conftest import QUICKSTART
from tests.datamodules.test_file_images import folder_data_config, write_folder
from window_cascades.commands.pipeline_steps import cache_logits
from window_cascades.lightning_modules.cascade_module import CascadeModule
from window_cascades.lightning_modules.member import MemberModule
from window_cascades.lightning_modules.member_checkpoint import load_member

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
VIT = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def normalise(raw: torch.Tensor, normalization) -> torch.Tensor:
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in normalization)
    return (raw - mean) / std


def test_a_member_sees_its_own_normalisation_whatever_the_data_uses():
    torch.manual_seed(0)
    member = MemberModule(num_classes=4, in_chans=3, normalization={"mean": VIT[0], "std": 0.5})
    model = member.eval().model
    bare = timm.create_model("resnet10t", num_classes=4, in_chans=3).eval()
    bare.load_state_dict(model.state_dict())
    raw = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        expected = bare(normalise(raw, VIT))
        for data in (IMAGENET, VIT, ((0.1, 0.2, 0.3), (0.9, 0.8, 0.7))):
            member.input = member.input.for_data(normalization=data)
            torch.testing.assert_close(model(normalise(raw, data)), expected, atol=1e-5, rtol=1e-4)


def test_a_member_with_a_smaller_crop_takes_its_share_of_each_evaluation_image():
    torch.manual_seed(0)
    member = MemberModule(num_classes=4, in_chans=3, resolution=24, crop=0.5)
    bare = timm.create_model("resnet10t", num_classes=4, in_chans=3).eval()
    bare.load_state_dict(member.model.state_dict())
    member.input = member.input.for_data(crop_pct=1.0)  # the data shows whole images, at 32 px
    x = torch.rand(2, 3, 32, 32)
    centre = torch.nn.functional.interpolate(
        x[..., 8:24, 8:24], size=(24, 24), mode="bilinear", align_corners=False
    )
    with torch.no_grad():
        torch.testing.assert_close(member.eval()(x), bare(centre), atol=1e-5, rtol=1e-4)
        whole = torch.nn.functional.interpolate(
            x, size=(24, 24), mode="bilinear", align_corners=False, antialias=True
        )
        out = member.train()(x)  # training images (random resized crops) are not cropped
        torch.testing.assert_close(out, bare.train()(whole), atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="crop_pct 0.5 shows more of each image than the data's"):
        member.input.for_data(crop_pct=0.4)
    auto = MemberModule(
        model_name="efficientnet_b0", num_classes=3, in_chans=3, crop="auto", resize="auto"
    )
    assert auto.input.crop_pct == 0.875  # efficientnet_b0's timm data config
    assert auto.input.interpolation == "bicubic"
    bicubic = MemberModule(num_classes=4, in_chans=3, resolution=24, resize="bicubic")
    bicubic.load_state_dict(member.state_dict())
    with torch.no_grad():
        small = torch.nn.functional.interpolate(
            x, size=(24, 24), mode="bicubic", align_corners=False, antialias=True
        )
        torch.testing.assert_close(bicubic.eval()(x), bare.eval()(small), atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="model.resize must be one of"):
        MemberModule(num_classes=3, in_chans=3, resize="lanczos")
    for bad in (0, 1.5, "most"):
        with pytest.raises(ValueError, match="model.crop must be a fraction in"):
            MemberModule(num_classes=3, in_chans=3, crop=bad)


def test_auto_takes_the_timm_data_config_and_bad_values_are_named():
    vit = MemberModule(
        model_name="vit_tiny_patch16_224.augreg_in21k_ft_in1k",
        num_classes=3,
        in_chans=3,
        normalization="auto",
    )
    assert vit.input.normalization == VIT
    grey = MemberModule(num_classes=3, in_chans=1, normalization="auto")  # ImageNet, averaged
    assert grey.hparams.normalization == "auto"
    (mean,), (std,) = grey.input.normalization
    assert (mean, std) == pytest.approx((0.449, 0.226), abs=1e-3)
    cases = [
        ({"mean": [0.5, 0.5], "std": [0.5, 0.5]}, "mean must be 3 number"),
        ({"mean": [0.5], "std": [0.0]}, "std must be positive"),
        ({"mean": [0.5], "sd": [0.5]}, r"takes \{mean: \[...\], std: \[...\]\}"),
        ("imagenet", "must be 'auto' or"),
    ]
    for value, message in cases:
        with pytest.raises(ValueError, match=f"model.normalization.*{message}"):
            MemberModule(num_classes=3, in_chans=3, normalization=value)


@pytest.mark.slow  # trains members: the fast loop leaves it to the full suite
def test_normalisation_is_recorded_and_converted_in_caching_and_the_cascade(tmp_path):
    """A member with its own normalisation, trained on ImageNet-normalised images, gives the
    same logits from data normalised another way; so does one that adopted the data's."""
    from window_cascades.commands.cli import MemberCLI

    write_folder(tmp_path / "train", 3, 12, 0)
    write_folder(tmp_path / "test", 3, 4, 1)
    imagenet = folder_data_config(tmp_path, "imagenet")
    other = folder_data_config(tmp_path, "other", mean=[0.2, 0.3, 0.4], std=[0.25, 0.3, 0.35])
    bigger = folder_data_config(tmp_path, "bigger", input_size=48)
    tight = folder_data_config(tmp_path, "tight", crop_pct=0.8)
    ckpts = {}
    for name, extra in (
        ("own", ["--model.normalization={mean: [0.5], std: [0.5]}"]),
        ("adopted", []),
    ):
        MemberCLI(
            args=[
                "fit",
                f"--config={QUICKSTART / 'member.yaml'}",
                f"--data={imagenet}",
                "--trainer.max_epochs=1",
                "--trainer.enable_progress_bar=false",
                f"--trainer.default_root_dir={tmp_path / name}",
                "--trainer.logger=false",
                f"--checkpoint.dirpath={tmp_path / name / 'ckpt'}",
                *extra,
            ]
        )
        ckpts[name] = tmp_path / name / "ckpt" / "last.ckpt"
        hook = load_member(ckpts[name]).input
        assert hook.normalization == (VIT if name == "own" else IMAGENET)
        assert hook.data_normalization == IMAGENET
        assert hook.size == 32  # the resolution it was trained at, recorded too
        for data, folder in ((imagenet, "a"), (other, "b"), (bigger, "c")):
            cache_logits(QUICKSTART / "member.yaml", ckpts[name], tmp_path / folder, name, data)
        a = load_file(str(tmp_path / "a" / name / "test.safetensors"))["logits"]
        b = load_file(str(tmp_path / "b" / name / "test.safetensors"))["logits"]
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
        meta = {f: json.loads((tmp_path / f / name / "meta.json").read_text()) for f in "ac"}
        assert meta["c"]["input_shape"] == [3, 48, 48]
        assert meta["c"]["macs"] == meta["a"]["macs"]  # 48 px data, run (and counted) at 32
        assert hook.crop_pct == 0.875  # resnet10t's data config, adopted at fit
        with pytest.raises(ValueError, match="crop_pct 0.875 shows more of each image"):
            cache_logits(QUICKSTART / "member.yaml", ckpts[name], tmp_path / "d", name, tight)

    # the cascade takes its data's normalisation and keeps it in its checkpoint
    cascade = CascadeModule(members=[str(ckpts["own"]), str(ckpts["adopted"])])
    theirs = ((0.2, 0.3, 0.4), (0.25, 0.3, 0.35))
    cascade.set_data_input(theirs, 0.9)
    saved: dict = {}
    cascade.on_save_checkpoint(saved)
    loaded = CascadeModule(members=[str(ckpts["own"]), str(ckpts["adopted"])])
    loaded.on_load_checkpoint(saved)
    assert [m.input.data_normalization for m in loaded.member_modules] == [theirs, theirs]
    assert [m.input.data_crop_pct for m in loaded.member_modules] == [0.9, 0.9]


def test_own_normalisation_without_the_datas_is_refused(tmp_path):
    from types import SimpleNamespace

    member = MemberModule(num_classes=3, in_chans=3, normalization={"mean": [0.5], "std": [0.5]})
    member._trainer = SimpleNamespace(datamodule=object())
    with pytest.raises(ValueError, match="does not say how it normalises images"):
        member.take_data_input(fit=True)


def test_the_member_input_benchmark_shows_what_the_crop_adjustment_buys(tmp_path, capsys):
    """On images whose content differs between the centre and the border, the adapted input
    is close to the member's own timm input only with the crop adjustment."""
    from PIL import Image

    from benchmarks.member_input.benchmark_member_input import main

    yy, xx = np.mgrid[0:300, 0:400]
    for k in range(2):
        r = np.hypot(yy - 150, xx - 200)
        img = np.stack([255 * np.cos(r / (20 + 5 * k)) ** 2, xx * 255 / 400, yy * 255 / 300], -1)
        Image.fromarray(img.astype(np.uint8)).save(tmp_path / f"{k}.png")
    main(
        [
            "--images",
            str(tmp_path),
            "--member",
            "efficientnet_b0",
            "--data",
            "efficientnet_b2",
            "--data-size",
            "260",
            "--data-crop",
            "1.0",
        ]
    )
    rows = {
        line.split("|")[1].strip(): line.split("|")
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("| with") or line.startswith("| resize")
    }
    psnr = {k: float(v[3]) for k, v in rows.items()}
    assert psnr["with crop"] > psnr["resize only"] + 5


def test_the_member_input_is_one_value_recorded_and_restored_as_before():
    """The checkpoint entry keeps the keys (and order) checkpoints already hold, restores to the
    same value, and the value is frozen: a member replaces it, never edits it."""
    from dataclasses import FrozenInstanceError

    from window_cascades.lightning_modules.member_input import MemberInput

    value = MemberInput(48, VIT, 0.875, "bicubic").for_data(IMAGENET, 1.0)
    record = value.record()
    assert list(record) == [
        "resolution",
        "normalization",
        "crop_pct",
        "data_normalization",
        "data_crop_pct",
    ]  # fmt: skip - one line per checkpoint key reads worse than one list
    assert record["normalization"] == {"mean": list(VIT[0]), "std": list(VIT[1])}
    assert MemberInput(interpolation="bicubic").restored(record, 3) == value
    assert MemberInput().restored(None, 3) == MemberInput()  # a checkpoint without the entry
    with pytest.raises(FrozenInstanceError):
        value.size = 32
    with pytest.raises(ValueError, match="member_input must be a fraction in"):
        value.restored({**record, "crop_pct": 2.0}, 3)


def test_loading_a_member_runs_no_forward_pass(tmp_path):
    """A member's resolution is checked with a dry forward pass when it is configured, not
    again when the member is loaded from its checkpoint."""
    member = MemberModule(num_classes=3, in_chans=3, resolution=48)
    member.input = member.input.for_data(IMAGENET, 0.9)
    ckpt = {"state_dict": member.state_dict(), "hyper_parameters": dict(member.hparams)}
    member.on_save_checkpoint(ckpt)
    torch.save(ckpt, tmp_path / "m.ckpt")
    calls = []
    handle = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda module, args: calls.append(type(module).__name__)
    )
    try:
        loaded = load_member(tmp_path / "m.ckpt")
    finally:
        handle.remove()
    assert calls == []
    assert loaded.input == member.input and loaded.hparams.resolution == 48
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), member.eval()(x))
