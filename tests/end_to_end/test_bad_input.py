"""Bad input gives a clear error that names what is wrong, and leaves outputs untouched."""

import json
import re
from pathlib import Path

import pytest
import torch

from tests.conftest import QUICKSTART
from window_cascades.artifacts.cached_logits import load_cached_logits, save_cached_logits
from window_cascades.artifacts.experiment_logits import evaluate_cached_logits
from window_cascades.artifacts.member_meta import save_member_meta
from window_cascades.commands.cli import CascadeCLI
from window_cascades.commands.pipeline_steps import cache_logits
from window_cascades.datamodules.digits import DigitsDataModule
from window_cascades.lightning_modules.cascade_module import CascadeModule
from window_cascades.lightning_modules.member import MemberModule


def save_untrained_member(path: Path, num_classes: int = 10, seed: int = 0) -> str:
    torch.manual_seed(seed)
    member = MemberModule(num_classes=num_classes)
    torch.save({"state_dict": member.state_dict(), "hyper_parameters": dict(member.hparams)}, path)
    return str(path)


def test_nan_logits_are_refused_on_write_and_read(tmp_path):
    logits = torch.randn(4, 3)
    logits[2, 1] = float("nan")
    with pytest.raises(ValueError, match=r"NaN/Inf.*row 2"):
        save_cached_logits(tmp_path, "m0", "test", logits, torch.zeros(4, dtype=torch.long))
    assert not (tmp_path / "m0" / "test.safetensors").exists()
    # a file written by someone else with Inf in it is refused on load
    from safetensors.torch import save_file

    (tmp_path / "m1").mkdir()
    bad = torch.randn(4, 3)
    bad[0, 0] = float("inf")
    save_file(
        {"logits": bad, "targets": torch.zeros(4, dtype=torch.long)},
        str(tmp_path / "m1" / "test.safetensors"),
    )
    with pytest.raises(ValueError, match=r"m1/test.safetensors.*NaN/Inf"):
        load_cached_logits(tmp_path, "m1", "test")


def test_truncated_and_missing_logits_files(tmp_path):
    path = save_cached_logits(tmp_path, "m0", "test", torch.randn(5, 3), torch.arange(5) % 3)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_cached_logits(tmp_path, "m0", "test")
    with pytest.raises(FileNotFoundError, match="m0/other.safetensors"):
        load_cached_logits(tmp_path, "m0", "other")


def test_labels_out_of_range_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"targets must be -1.*\[0, 2\]"):
        save_cached_logits(tmp_path, "m0", "test", torch.randn(3, 3), torch.tensor([0, 1, 7]))


def test_members_with_different_class_counts(tmp_path):
    ten = save_untrained_member(tmp_path / "a.ckpt", 10)
    five = save_untrained_member(tmp_path / "b.ckpt", 5)
    with pytest.raises(ValueError, match="different class counts"):
        CascadeModule(members=[ten, five])
    # and offline, on cached logits
    for member, c in (("m0", 10), ("m1", 5)):
        for ds in ("held", "test"):
            save_cached_logits(
                tmp_path / "logits", member, ds, torch.randn(6, c), torch.arange(6) % 5
            )
        save_member_meta(
            tmp_path / "logits",
            member,
            {"model_name": "x", "macs": 1, "params": 1, "num_classes": c},
        )
    roles = {"held": "heldout", "test": "id"}
    with pytest.raises(ValueError, match=r"different class counts in meta.json.*'m1': 5"):
        evaluate_cached_logits(tmp_path / "logits", ["m0", "m1"], roles, ["window"])
    # meta.json agreeing but the logits not: the meta.json and the file are named
    save_member_meta(
        tmp_path / "logits", "m1", {"model_name": "x", "macs": 1, "params": 1, "num_classes": 10}
    )
    with pytest.raises(ValueError, match=r"m1/meta.json: field 'num_classes' is 10, but .*held"):
        evaluate_cached_logits(tmp_path / "logits", ["m0", "m1"], roles, ["window"])
    # logits from elsewhere, without meta.json: the dataset is named
    for member in ("m0", "m1"):
        (tmp_path / "logits" / member / "meta.json").unlink()
    with pytest.raises(ValueError, match=r"'held'.*different class counts"):
        evaluate_cached_logits(tmp_path / "logits", ["m0", "m1"], roles, ["window"])


def test_members_cached_on_different_samples_are_refused(tmp_path):
    for member, shift in (("m0", 0), ("m1", 1)):
        for ds in ("held", "test"):
            targets = (torch.arange(300) + (shift if ds == "test" else 0)) % 3
            save_cached_logits(tmp_path, member, ds, torch.randn(300, 3), targets)
        save_member_meta(
            tmp_path, member, {"model_name": "x", "macs": 1, "params": 1, "num_classes": 3}
        )
    with pytest.raises(ValueError, match=r"dataset 'test': targets of member 'm1' differ from"):
        evaluate_cached_logits(
            tmp_path, ["m0", "m1"], {"held": "heldout", "test": "id"}, ["single"]
        )


def test_predict_without_a_logits_folder_is_refused(tiny_members, tmp_path):
    from window_cascades.commands.cli import MemberCLI

    with pytest.raises(ValueError, match="predict needs --cache.logits_dir"):
        MemberCLI(
            args=[
                "predict",
                "--config",
                str(QUICKSTART / "member.yaml"),
                f"--data={tiny_members['data_cfg']}",
                f"--trainer.default_root_dir={tmp_path}",
                f"--ckpt_path={tiny_members['ckpts'][0]}",
            ]
        )


def test_missing_member_checkpoint_is_named(tmp_path):
    missing = tmp_path / "nope" / "last.ckpt"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        CascadeModule(members=[str(missing)])
    with pytest.raises(FileNotFoundError, match=str(missing)):
        cache_logits(QUICKSTART / "member.yaml", missing, tmp_path, "m0")


def test_unknown_role_and_duplicate_names():
    with pytest.raises(ValueError, match=r"datasets\[1\] \('t'\): role 'test' is not one of"):
        DigitsDataModule(
            datasets=[
                {"name": "h", "role": "heldout", "source": "heldout"},
                {"name": "t", "role": "test", "source": "test"},
            ]
        )
    with pytest.raises(ValueError, match="two datasets are named 'h'"):
        DigitsDataModule(
            datasets=[
                {"name": "h", "role": "heldout", "source": "heldout"},
                {"name": "h", "role": "id", "source": "test"},
            ]
        )
    with pytest.raises(ValueError, match="role 'bogus'"):
        evaluate_cached_logits("unused", ["m0"], {"h": "heldout", "t": "bogus"}, ["window"])


def test_empty_heldout_split_is_named():
    dm = DigitsDataModule(heldout_fraction=0.001)
    with pytest.raises(ValueError, match="heldout split is empty.*heldout_fraction=0.001"):
        dm.setup()


@pytest.mark.parametrize("width", ["0", "0.7", "-0.1"])
def test_window_width_outside_range(tmp_path, width, cascade_test_args):
    members = [save_untrained_member(tmp_path / f"m{i}.ckpt", seed=i) for i in range(2)]
    results = tmp_path / "results"  # not the members' folder (an output may not hold an input)
    with pytest.raises(ValueError, match=r"window width w must be in \(0, 0.5\]"):
        CascadeCLI(
            args=cascade_test_args(
                QUICKSTART / "data.yaml", members, results, f"--calibration.width={width}"
            )
        )


def test_unreachable_target_reports_the_other_policies_with_the_reason(
    tmp_path, cascade_test_args, capsys
):
    """A window that cannot reach the target is left out with the lowest reachable risk (a
    warning, ``not_fitted`` in summary.json, a line in report.md); single and ensemble are
    still evaluated, and the earlier results are replaced whole."""
    # untrained members: the most confident held-out samples are mostly wrong
    members = [save_untrained_member(tmp_path / f"m{i}.ckpt", seed=i) for i in range(2)]
    results = tmp_path / "results"
    results.mkdir()
    (results / "metrics.csv").write_text("previous results\n")
    CascadeCLI(
        args=cascade_test_args(
            QUICKSTART / "data.yaml",
            members,
            results,
            "--calibration.target=cov@5",
            "--results.overwrite=true",
        )
    )
    reason = r"cov@5 on held-out split 'digits_heldout'.*lowest reachable risk is 0\.\d+"
    assert re.search(r"warning: window not fitted: .*" + reason, capsys.readouterr().err)
    summary = json.loads((results / "summary.json").read_text())
    assert re.search(reason, summary["not_fitted"]["window"])
    policies = {row.split(",")[2] for row in (results / "metrics.csv").read_text().splitlines()}
    assert {"single", "ensemble"} <= policies and "window" not in policies
    assert "**window was not fitted**" in (results / "report.md").read_text()
    assert not list(results.glob(".*.partial")) and not list(tmp_path.glob(".*"))


def test_the_same_member_twice_is_refused_online(tmp_path):
    import shutil

    first = save_untrained_member(tmp_path / "m0.ckpt")
    shutil.copy(first, tmp_path / "copy.ckpt")
    for members in ([first, first], [first, str(tmp_path / "copy.ckpt")]):
        with pytest.raises(ValueError, match=r"are the same checkpoint \(SHA-256"):
            CascadeModule(members=members)


def test_cached_logits_follow_the_umask_like_other_files(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        path = save_cached_logits(tmp_path, "m0", "test", torch.randn(3, 2), torch.arange(3) % 2)
        save_member_meta(tmp_path, "m0", {"model_name": "x"})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644  # readable by colleagues on a shared cluster
    assert (tmp_path / "m0" / "meta.json").stat().st_mode & 0o777 == 0o644


def test_online_results_folder_is_one_unit(tiny_members, tmp_path, cascade_test_args):
    from window_cascades.artifacts.run_folder import OutputFolderError

    results = tmp_path / "results"
    results.mkdir()
    for name in ("metrics.csv", "summary.json", "fitted_cascade.json", "stale_plot.png"):
        (results / name).write_text("earlier run\n")
    args = lambda *extra: cascade_test_args(  # noqa: E731
        tiny_members["data_cfg"], tiny_members["ckpts"], results, *extra
    )
    with pytest.raises(OutputFolderError, match=r"holds an earlier run.*--results.overwrite true"):
        CascadeCLI(args=args())
    assert (results / "metrics.csv").read_text() == "earlier run\n"
    CascadeCLI(args=args("--results.overwrite=true"))
    assert sorted(p.name for p in results.iterdir()) == [
        ".run_files.json",
        "cascade.ckpt",
        "deltas.csv",
        "fitted_cascade.json",
        "macs_vs_risk80.png",
        "metrics.csv",
        "reliability.png",
        "report.md",
        "risk_coverage.png",
        "summary.json",
        "tradeoff.png",
    ]  # fmt: skip  (the earlier run's stale plot is gone: replaced whole)
    assert "window" in json.loads((results / "fitted_cascade.json").read_text())["policies"]
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(OutputFolderError, match="is a file"):
        CascadeCLI(
            args=cascade_test_args(
                tiny_members["data_cfg"], tiny_members["ckpts"], tmp_path / "a_file"
            )
        )
    (results / "notes.txt").write_text("mine")
    with pytest.raises(OutputFolderError, match=r"not results of an earlier run \(notes.txt\)"):
        CascadeCLI(args=args("--results.overwrite=true"))
    assert not list(tmp_path.glob(".*"))
