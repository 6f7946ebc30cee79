"""Files read back (cascade and member checkpoints, meta.json, cached logits, data configs) are
checked where they enter: a hand-edited value is refused in one line naming the file and the
field, with exit status 2 from the commands and nothing written."""

from __future__ import annotations

import copy
import csv
import json
import math
import pickle

import pytest
import torch
from safetensors.torch import save_file

from tests.conftest import QUICKSTART
from window_cascades.artifacts.cached_logits import load_cached_logits, save_cached_logits
from window_cascades.artifacts.experiment_logits import member_macs
from window_cascades.artifacts.member_meta import save_member_meta
from window_cascades.cascade.field_checks import FieldError
from window_cascades.cascade.fitted_checks import check_fitted_cascade
from window_cascades.commands.cli_entry import CASCADE, run_command
from window_cascades.commands.offline import main as offline_main
from window_cascades.datamodules.specs import parse_dataset_specs
from window_cascades.lightning_modules.cascade_checkpoint import read_cascade_checkpoint
from window_cascades.lightning_modules.cascade_module import CascadeModule
from window_cascades.lightning_modules.member import MemberModule
from window_cascades.lightning_modules.member_checkpoint import read_member_checkpoint

INF = "inf"


def fitted_dict() -> dict:
    """A fitted cascade of two members, as ``FittedCascade.to_dict()`` writes it."""
    point = {"target": "cov@5", "accept": 0.8, "bound": None, "ood": 0.6, "ood_tpr": 0.95}
    return {
        "heldout": "digits_heldout",
        "score": "msp",
        "target": "cov@5",
        "operating_points": {name: dict(point) for name in ("single", "ensemble", "window")},
        "temperatures": {"members": [1.2, 0.9], "ensembles": {"2": 1.1}},
        "policies": {
            "single": {"name": "single", "setting": "", "bounds": [[INF, "-inf"]], "stages": []},
            "ensemble": {"name": "ensemble", "setting": "", "bounds": [["-inf", INF]]},
            "window": {"name": "window", "setting": "cov@5,w=0.1", "bounds": [[0.7, 0.95]]},
        },
    }


def edited(path: str, value) -> dict:
    """``fitted_dict()`` with the field at ``path`` (dots; ints index lists) set to ``value``."""
    data = fitted_dict()
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = data
    for p in parents:
        node = node[p]
    node[last] = value
    return data


# (field edited, value, what the message names)
BAD_FITTED = [
    ("policies.window.bounds.0.0", math.nan, "'policies.window.bounds[0][0]'"),
    ("policies.window.bounds.0.1", "nan", "'policies.window.bounds[0][1]'"),
    ("policies.window.bounds.0", [0.95, 0.7], "lower 0.95 > upper 0.7"),
    ("policies.window.bounds.0.0", "abc", "'policies.window.bounds[0][0]' must be a number"),
    ("policies.window.bounds", [[0.1, 0.2], [0.3, 0.4]], "'policies.window' is fitted for 3"),
    # a window outside the score's range (msp: [0, 1]) would pass nothing on, or everything
    (
        "policies.window.bounds.0",
        [1.5, 2.0],
        "'policies.window.bounds[0][0]' must be within [0, 1]",
    ),
    ("policies.window.bounds.0", [-5, 7], "'policies.window.bounds[0][0]' must be within [0, 1]"),
    ("policies.window.bounds.0", [0.5, 7], "'policies.window.bounds[0][1]' must be within [0, 1]"),
    ("operating_points.window.accept", math.nan, "'operating_points.window.accept'"),
    ("operating_points.window.accept", 1.5, "in [0, 1], got 1.5"),
    ("operating_points.window.ood", math.nan, "'operating_points.window.ood'"),
    ("operating_points.window.ood", math.inf, "'operating_points.window.ood'"),
    ("operating_points.window.ood_tpr", 0.0, "'operating_points.window.ood_tpr'"),
    ("operating_points.window.bound", 2.0, "'operating_points.window.bound'"),
    ("temperatures.members.1", 0.0, "'temperatures.members[1]'"),
    ("temperatures.members.0", math.nan, "'temperatures.members[0]'"),
    ("temperatures.members", [1.0], "must hold 2 temperature(s)"),
    ("temperatures.ensembles", {"5": 1.0}, "'temperatures.ensembles' keys"),
]


@pytest.mark.parametrize("field, value, named", BAD_FITTED)
def test_a_fitted_cascade_with_an_unusable_value_is_refused_naming_the_field(field, value, named):
    check_fitted_cascade(fitted_dict(), "x/cascade.ckpt", 2)  # the unedited one is accepted
    with pytest.raises(FieldError) as err:
        check_fitted_cascade(edited(field, value), "x/cascade.ckpt", 2)
    message = str(err.value)
    assert message.startswith("x/cascade.ckpt: ") and named in message, message
    assert "\n" not in message


def test_scores_without_a_fixed_range_take_any_finite_threshold():
    data = fitted_dict()
    for point in data["operating_points"].values():
        point.update(accept=-0.2, ood=-1.5)
    data["policies"]["window"]["bounds"] = [[-3.5, -0.5]]
    for score in ("energy", "entropy", "max_logit"):
        check_fitted_cascade({**data, "score": score}, "w.json", 2)
    data["policies"]["window"]["bounds"] = [[-3.5, 5.0]]  # energy, max_logit: any finite bound
    for score in ("energy", "max_logit"):
        check_fitted_cascade({**data, "score": score}, "w.json", 2)
    with pytest.raises(FieldError, match=r"bounds\[0\]\[1\]' must be within \[-inf, 0\]"):
        check_fitted_cascade({**data, "score": "entropy"}, "w.json", 2)
    data["policies"]["window"]["bounds"] = [[-3.5, -0.5]]
    data["operating_points"]["window"]["accept"] = 0.5  # negative entropy is <= 0
    with pytest.raises(FieldError, match=r"accept' must be a finite number in \[-inf, 0\]"):
        check_fitted_cascade({**data, "score": "entropy"}, "w.json", 2)


def members_state(num: int = 2) -> dict:
    return {f"members.{k}.model.fc.weight": torch.zeros(2, 2) for k in range(num)}


def write_cascade_ckpt(path, fitted: dict | None, **extra) -> str:
    ckpt = {
        "state_dict": members_state(),
        "fitted_cascade": fitted,
        "pytorch-lightning_version": "2.6.0",
    }
    torch.save({**ckpt, **extra}, path)
    return str(path)


def test_read_cascade_checkpoint_names_the_file_and_field(tmp_path):
    good = write_cascade_ckpt(tmp_path / "good.ckpt", fitted_dict())
    assert read_cascade_checkpoint(good)["fitted_cascade"] == fitted_dict()
    bad = write_cascade_ckpt(tmp_path / "bad.ckpt", edited("policies.window.bounds.0.0", "nan"))
    with pytest.raises(FieldError, match=r"bad.ckpt: field 'policies.window.bounds\[0\]\[0\]'"):
        read_cascade_checkpoint(bad)
    crop = write_cascade_ckpt(
        tmp_path / "crop.ckpt",
        fitted_dict(),
        data_input={"normalization": {"mean": [0.5], "std": [math.nan]}, "crop_pct": 0.9},
    )
    with pytest.raises(FieldError, match=r"crop.ckpt: field 'data_input.normalization.std\[0\]'"):
        read_cascade_checkpoint(crop)
    torch.save(
        {"state_dict": members_state(), "fitted_cascade": fitted_dict()}, tmp_path / "bare.ckpt"
    )
    with pytest.raises(FieldError, match="bare.ckpt: not a Lightning checkpoint"):
        read_cascade_checkpoint(tmp_path / "bare.ckpt")


class Payload:  # pickled into a checkpoint: never to be unpickled
    def __reduce__(self):
        return (print, ("unpickled!",))


def unreadable_checkpoints(tmp_path, good: str) -> dict[str, str]:
    """A pickled object, a truncated file, a file that is not a checkpoint, a plain pickle."""
    pickled = tmp_path / "pickled.ckpt"
    torch.save({"state_dict": members_state(), "hook": Payload()}, pickled)
    data = open(good, "rb").read()
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(data[: len(data) // 2])
    text = tmp_path / "text.ckpt"
    text.write_text("not a checkpoint\n")
    plain = tmp_path / "plain.ckpt"
    plain.write_bytes(pickle.dumps({"state_dict": Payload()}))
    return {
        "pickled": str(pickled),
        "truncated": str(truncated),
        "text": str(text),
        "plain": str(plain),
    }


def test_unreadable_checkpoints_are_one_line_and_never_unpickled(tmp_path, capsys):
    good = write_cascade_ckpt(tmp_path / "good.ckpt", fitted_dict())
    for kind, path in unreadable_checkpoints(tmp_path, good).items():
        for read in (read_cascade_checkpoint, read_member_checkpoint):
            with pytest.raises(ValueError) as err:
                read(path)
            message = str(err.value)
            assert message.startswith(f"{path}: not a readable"), (kind, message)
            assert "\n" not in message and "weights_only=False" not in message, (kind, message)
            if kind == "pickled":
                assert "pickled Python objects, which are never loaded" in message
    assert "unpickled!" not in capsys.readouterr().out


def predict_args(tmp_path, members: list[str], ckpt: str) -> list[str]:
    return [
        "predict",
        f"--config={QUICKSTART / 'predict.yaml'}",
        f"--model.members=[{', '.join(members)}]",
        f"--ckpt_path={ckpt}",
        f"--predictions.path={tmp_path / 'predictions.csv'}",
        f"--trainer.default_root_dir={tmp_path / 'run'}",
    ]


def untrained_members(tmp_path) -> list[str]:
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        member = MemberModule(num_classes=10)
        path = tmp_path / f"m{seed}.ckpt"
        torch.save(
            {"state_dict": member.state_dict(), "hyper_parameters": dict(member.hparams)}, path
        )
        paths.append(str(path))
    return paths


@pytest.mark.slow
def test_predict_refuses_an_edited_or_unreadable_cascade_checkpoint_with_exit_2(tmp_path, capsys):
    """The command: a real cascade checkpoint of two members is applied (exit 0, predictions
    written); the same with a NaN bound, an inverted window, a NaN acceptance threshold, or as a
    pickled or truncated file is refused in one line naming the file, exit 2, nothing written."""
    members = untrained_members(tmp_path)
    cascade = CascadeModule(members=members)
    ckpt = {
        "state_dict": cascade.state_dict(),
        "hyper_parameters": dict(cascade.hparams),
        "pytorch-lightning_version": "2.6.0",
    }
    good = tmp_path / "cascade.ckpt"
    torch.save({**ckpt, "fitted_cascade": fitted_dict()}, good)
    out = tmp_path / "predictions.csv"
    assert run_command(CASCADE, predict_args(tmp_path, members, str(good))) == 0
    assert out.is_file() and len(out.read_text().splitlines()) > 100
    out.unlink()
    capsys.readouterr()
    bad = {}
    for name, field, value in [
        ("nan_bound", "policies.window.bounds.0.0", math.nan),
        ("inverted", "policies.window.bounds.0", [0.95, 0.7]),
        ("nan_accept", "operating_points.window.accept", math.nan),
        ("nan_ood", "operating_points.window.ood", math.nan),
    ]:
        bad[name] = tmp_path / f"{name}.ckpt"
        torch.save({**ckpt, "fitted_cascade": edited(field, value)}, bad[name])
    bad.update(unreadable_checkpoints(tmp_path, str(good)))
    for name, path in bad.items():
        assert run_command(CASCADE, predict_args(tmp_path, members, str(path))) == 2, name
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and str(path) in errors[0], (name, err)
        assert "Traceback" not in err and "weights_only=False" not in err, (name, err)
        assert not out.exists(), name
    # loaded outside the command (load_from_checkpoint), the check still holds
    with pytest.raises(FieldError, match="policies.window.bounds"):
        CascadeModule.load_from_checkpoint(bad["nan_bound"], map_location="cpu", weights_only=True)


def test_member_checkpoint_fields_are_checked(tmp_path):
    torch.manual_seed(0)
    member = MemberModule(num_classes=10)
    base = {"state_dict": member.state_dict(), "hyper_parameters": dict(member.hparams)}
    good = tmp_path / "good.ckpt"
    torch.save(base, good)
    read_member_checkpoint(good)
    cases = {
        "num_classes": ({"num_classes": 10.5}, "'hyper_parameters.num_classes' must be an integer"),
        "model_name": ({"model_name": 3}, "'hyper_parameters.model_name'"),
    }
    for name, (change, named) in cases.items():
        ckpt = copy.deepcopy(base)
        ckpt["hyper_parameters"].update(change)
        torch.save(ckpt, tmp_path / f"{name}.ckpt")
        with pytest.raises(FieldError, match=f"{name}.ckpt: field {named}"):
            read_member_checkpoint(tmp_path / f"{name}.ckpt")
    ckpt = copy.deepcopy(base)
    key = next(k for k in ckpt["state_dict"] if k.endswith("conv1.0.weight"))
    ckpt["state_dict"][key][0, 0, 0, 0] = math.nan
    torch.save(ckpt, tmp_path / "nan.ckpt")
    with pytest.raises(FieldError, match=rf"nan.ckpt: field 'state_dict.{key}' holds 1 NaN"):
        read_member_checkpoint(tmp_path / "nan.ckpt")


def write_meta_text(tmp_path, member: str, macs_text: str) -> None:
    save_cached_logits(tmp_path, member, "held", torch.randn(40, 3), torch.arange(40) % 3)
    save_cached_logits(tmp_path, member, "test", torch.randn(40, 3), torch.arange(40) % 3)
    (tmp_path / member / "meta.json").write_text(
        f'{{"model_name": "x", "macs": {macs_text}, "params": 10, "num_classes": 3}}'
    )


@pytest.mark.parametrize(
    "macs_text",
    ["Infinity", "1e308", "-5", "0", '"abc"', "NaN", "true", "1" * 5000, "1" * 5000 + ".5"],
)
def test_meta_json_macs_must_be_a_positive_finite_number(
    tmp_path, tmp_path_factory, macs_text, capsys
):
    write_meta_text(tmp_path, "m0", "1e9")
    member_macs(tmp_path, ["m0"])  # a good one is read
    write_meta_text(tmp_path, "m1", macs_text)
    with pytest.raises(FieldError) as err:
        member_macs(tmp_path, ["m0", "m1"])
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'm1' / 'meta.json'}: field 'macs'"), message
    assert len(message) < 300
    # the offline command: exit 2, one line, nothing written
    out = tmp_path_factory.mktemp("outputs") / "out"  # not inside --logits-dir (refused)
    args = [
        "--logits-dir",
        str(tmp_path),
        "--members",
        "m0",
        "m1",
        "--heldout",
        "held",
        "--id",
        "test",
        "--out",
        str(out),
        "--quiet",
        "--no-plots",
    ]
    assert offline_main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "m1/meta.json: field 'macs'" in err[0], err
    assert not out.exists()


@pytest.mark.parametrize(
    "field, value, named",
    [
        ("params", 1.5, "'params' must be an integer"),
        ("num_classes", "3", "'num_classes'"),
        ("num_classes", 0, "'num_classes' must be an integer >= 1"),
        ("model_name", None, "'model_name' must be a string"),
    ],
)
def test_meta_json_integers_where_integers_belong(tmp_path, field, value, named):
    meta = {"model_name": "x", "macs": 1, "params": 1, "num_classes": 3, field: value}
    save_member_meta(tmp_path, "m0", meta)
    with pytest.raises(FieldError, match=f"meta.json: field {named}"):
        member_macs(tmp_path, ["m0"])


@pytest.mark.parametrize("interrupted_run", ["another generation", "no generation"])
def test_cached_logits_of_two_caching_runs_are_refused_naming_the_file(
    tmp_path, tmp_path_factory, capsys, interrupted_run
):
    from tests.regression_case import ARGS, CLASSES, write_case

    def cache(member, generation, datasets):  # the same samples, written by a caching run
        for name in datasets:
            old = load_cached_logits(tmp_path, member, name)
            logits = old.logits + 0.01 * torch.randn_like(old.logits)
            save_cached_logits(tmp_path, member, name, logits, old.targets, generation)

    write_case(tmp_path)  # m0..m2 without generations: read as before
    out = tmp_path_factory.mktemp("outputs")
    run = ["--logits-dir", str(tmp_path), *ARGS, "--quiet", "--no-plots"]
    assert offline_main([*run, "--out", str(out / "a")]) == 0
    # m1 cached again as one unit: its files and its meta.json share a generation
    cache("m1", "g1", ["held", "test", "noisy", "far"])
    meta = {"model_name": "x", "macs": 2e6, "params": 1, "num_classes": CLASSES}
    meta["generation"] = "g1"
    save_member_meta(tmp_path, "m1", meta)
    assert offline_main([*run, "--out", str(out / "b")]) == 0
    # a third caching of m1 killed after its first file: that file is of another run
    cache("m1", "g2" if interrupted_run == "another generation" else None, ["held"])
    assert offline_main([*run, "--out", str(out / "c")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    found = "g2" if interrupted_run == "another generation" else "none"
    assert err == [
        f"error: {tmp_path / 'm1' / 'held.safetensors'}: written by another caching run than "
        f"{tmp_path / 'm1' / 'meta.json'} (generation {found}, meta.json says g1): this member's "
        "cached logits mix two runs, one of them interrupted; cache this member's logits again"
    ]
    assert not (out / "c").exists()
    # a meta.json without a generation (an older run's, or edited) beside files that have one
    cache("m1", "g3", ["held", "test", "noisy", "far"])
    save_member_meta(tmp_path, "m1", {k: v for k, v in meta.items() if k != "generation"})
    capsys.readouterr()
    assert offline_main([*run, "--out", str(out / "d")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {tmp_path / 'm1' / 'held.safetensors'}")
    assert "written by caching run g3, but" in err[0] and "names no generation" in err[0]
    assert not (out / "d").exists()
    meta["generation"] = 7
    save_member_meta(tmp_path, "m1", meta)
    with pytest.raises(FieldError, match="meta.json: field 'generation' must be a non-empty str"):
        member_macs(tmp_path, ["m1"])


def test_meta_json_class_count_must_match_the_logits(tmp_path, capsys):
    from tests.regression_case import ARGS, CLASSES, write_case

    logits = write_case(tmp_path / "logits")
    meta = {"model_name": "x", "macs": 2e6, "params": 1, "num_classes": CLASSES + 1}
    for m in ("m0", "m1", "m2"):  # every member's meta.json says one class more
        save_member_meta(logits, m, meta)
    out = tmp_path / "out"
    assert offline_main(["--logits-dir", str(logits), *ARGS, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"error: {logits / 'm0' / 'meta.json'}: field 'num_classes' is {CLASSES + 1}, but "
        f"{logits / 'm0' / 'held.safetensors'} holds logits of {CLASSES} classes; the "
        "meta.json is not of these logits (cache this member's logits again)"
    ]
    assert not out.exists()


def test_float_targets_are_refused_not_truncated(tmp_path):
    (tmp_path / "m0").mkdir()
    targets = torch.tensor([0.0, 1.7, 2.0, 1.0])
    save_file({"logits": torch.randn(4, 3), "targets": targets}, tmp_path / "m0/test.safetensors")
    with pytest.raises(ValueError, match=r"test.safetensors: field 'targets' must be integers"):
        load_cached_logits(tmp_path, "m0", "test")


@pytest.mark.parametrize(
    "change, named",
    [
        ({"severity": 3.5}, "field 'severity' must be an integer >= 1, got 3.5"),
        ({"size": 12.7}, "field 'size' must be an integer >= 1, got 12.7"),
        ({"severity": "4"}, "field 'severity'"),
        ({"name": 5}, "field 'name' must be a non-empty string"),
    ],
)
def test_data_config_fields_are_not_truncated(change, named):
    entries = [
        {"name": "held", "role": "heldout", "source": "heldout"},
        {
            "name": "test",
            "role": "id",
            "source": "test",
            "corruption": "gaussian_noise",
            "severity": 3,
            "size": 100,
        },
    ]
    parse_dataset_specs(entries)
    entries[1].update(change)
    with pytest.raises(ValueError, match=rf"datasets\[1\].*{named}"):
        parse_dataset_specs(entries)


def test_heldout_size_must_be_a_fraction_or_a_whole_count():
    from window_cascades.datamodules.file_images import ImageFilesDataModule

    source = {"format": "image_folder", "path": "/nonexistent"}
    other = {"format": "image_folder", "path": "/elsewhere"}
    datasets = [
        {"name": "h", "role": "heldout", "source": "heldout"},
        {"name": "t", "role": "id", "source": "test"},
    ]
    for bad in (100.7, math.nan, -1, 0):
        with pytest.raises(ValueError, match="heldout_size must be a fraction"):
            ImageFilesDataModule(source, other, datasets, 10, heldout_size=bad)
    ImageFilesDataModule(source, other, datasets, 10, heldout_size=100.0)


def test_a_5000_digit_number_in_a_config_names_file_line_and_field(tmp_path, capsys):
    cfg = tmp_path / "huge.yaml"
    cfg.write_text("trainer:\n  max_epochs: " + "9" * 5000 + "\n")
    assert run_command(CASCADE, ["test", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"{cfg}: line 2, field 'max_epochs': a 5000-digit number" in err.splitlines()[0]


def test_window_json_style_numbers_in_meta_never_reach_json_errors(tmp_path):
    """json.loads of a 5,000-digit integer raises an error naming nothing; the reader keeps it
    for the field check, which names file and field."""
    save_member_meta(tmp_path, "m0", {"model_name": "x", "macs": 1, "params": 1, "num_classes": 3})
    text = (tmp_path / "m0" / "meta.json").read_text()
    (tmp_path / "m0" / "meta.json").write_text(
        text.replace('"params": 1', '"params": ' + "7" * 5000)
    )
    with pytest.raises(
        FieldError,
        match=r"meta.json: field 'params' must be an integer >= 0, "
        r"got a 5000-digit number",
    ):
        member_macs(tmp_path, ["m0"])
    assert json.loads(text)["macs"] == 1


def png_bytes(width: int, height: int, rows: bytes | None = None) -> bytes:
    """A 1-bit greyscale PNG of ``width`` x ``height``: all-zero rows, compressed (a real image
    of a few kB for 12000 x 12000), or, with ``rows`` given, those bytes as the image data (a
    file whose header declares a size its data does not hold)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    if rows is None:
        row = b"\0" * (1 + (width + 7) // 8)  # filter byte + packed bits
        packer = zlib.compressobj(9)
        data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    else:
        data = zlib.compress(rows)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def test_an_image_larger_than_the_limit_is_refused_before_decoding(tmp_path, monkeypatch):
    import resource

    from window_cascades.datamodules.image_decoding import MAX_PIXELS_ENV, ImageTooLargeError
    from window_cascades.datamodules.image_sources import open_source

    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    folder = tmp_path / "ood"
    folder.mkdir()
    (folder / "bomb.png").write_bytes(png_bytes(50000, 50000, rows=b"\0" * 64))
    (folder / "big.png").write_bytes(png_bytes(12000, 12000))  # a real image, decodable
    from PIL import Image

    Image.new("RGB", (20, 20), (200, 10, 10)).save(folder / "small.png")
    assert (folder / "big.png").stat().st_size < 100_000
    images = open_source({"format": "image_folder", "path": str(folder)}, "test")
    names = [p.name for p in images.paths]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for name, size in (("bomb.png", "50000 x 50000"), ("big.png", "12000 x 12000")):
        with pytest.raises(ImageTooLargeError) as err:
            images[names.index(name)]
        message = str(err.value)
        assert message.startswith(f"image {folder / name} is {size} = ") and "\n" not in message
        assert f"set {MAX_PIXELS_ENV} to a larger number" in message
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200, f"decoded before refusing: peak RSS grew {grown_mb:.0f} MB"
    assert images[names.index("small.png")][0].size == (20, 20)
    # the documented option: a limit below 20 x 20 refuses the small image, one above reads it
    monkeypatch.setenv(MAX_PIXELS_ENV, "399")
    with pytest.raises(ImageTooLargeError, match=r"20 x 20 = 400 pixels, more than the limit of"):
        images[names.index("small.png")]
    monkeypatch.setenv(MAX_PIXELS_ENV, "400")
    assert images[names.index("small.png")][0].size == (20, 20)
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(ValueError, match=f"{MAX_PIXELS_ENV}='lots': expected a positive"):
        images[names.index("small.png")]


@pytest.mark.slow
def test_predict_on_a_folder_with_a_decompression_bomb_gives_it_one_unreadable_row(
    tmp_path, capsys, monkeypatch
):
    """The default mode predicts the rest and lists the bomb with why (its size, before any
    decoding); --predictions.strict refuses the run in one line, exit 2, nothing written."""
    from tests.datamodules.test_file_images import EVAL, folder_data_config, write_folder
    from window_cascades.datamodules.image_decoding import MAX_PIXELS_ENV

    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    write_folder(tmp_path / "train", 3, 4, 0)
    write_folder(tmp_path / "test", 3, 2, 1)
    (tmp_path / "ood").mkdir()
    bomb = tmp_path / "ood" / "bomb.png"
    bomb.write_bytes(png_bytes(50000, 50000, rows=b"\0" * 64))
    datasets = [
        *EVAL,
        {
            "name": "files",
            "role": "ood",
            "source": "path",
            "format": "image_folder",
            "path": str(tmp_path / "ood"),
        },
    ]
    data = folder_data_config(tmp_path, "data", datasets=datasets)
    members = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        member = MemberModule(num_classes=3, in_chans=3)
        members.append(str(tmp_path / f"m{seed}.ckpt"))
        torch.save(
            {"state_dict": member.state_dict(), "hyper_parameters": dict(member.hparams)},
            members[-1],
        )
    cascade = CascadeModule(members=members)
    ckpt = tmp_path / "cascade.ckpt"
    torch.save(
        {
            "state_dict": cascade.state_dict(),
            "hyper_parameters": dict(cascade.hparams),
            "fitted_cascade": fitted_dict(),
            "pytorch-lightning_version": "2.6.0",
        },
        ckpt,
    )
    args = [*predict_args(tmp_path, members, str(ckpt)), f"--data={data}"]
    assert run_command(CASCADE, args) == 0
    with open(tmp_path / "predictions.csv") as f:
        files = [r for r in csv.DictReader(f) if r["dataset"] == "files"]
    assert [(r["path"], r["status"], r["prediction"]) for r in files] == [
        (str(bomb), "unreadable", "")
    ]
    assert files[0]["reason"].startswith(f"too large: image {bomb} is 50000 x 50000")
    (tmp_path / "predictions.csv").unlink()
    capsys.readouterr()
    assert run_command(CASCADE, [*args, "--predictions.strict=true"]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"image {bomb} is 50000 x 50000" in errors[0], err
    assert MAX_PIXELS_ENV in errors[0] and "Traceback" not in err
    assert not (tmp_path / "predictions.csv").exists()
