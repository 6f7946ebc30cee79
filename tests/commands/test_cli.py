"""One convention for numbers across the options (fractions; percentages only in names such as
``cov@5``), validated where they enter, and degenerate runs refused before any work."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import QUICKSTART
from window_cascades.artifacts.cached_logits import load_cached_logits, save_cached_logits
from window_cascades.cascade.metric_registry import MetricSettings, check_report_points
from window_cascades.cascade.policy_registry import PolicySettings
from window_cascades.commands.cli import CascadeCLI, MemberCLI
from window_cascades.commands.offline import main
from window_cascades.lightning_modules.cascade_module import CascadeModule
from window_cascades.lightning_modules.member import MemberModule


def offline(tmp_path, *extra: str) -> list[str]:
    for member in ("m0", "m1"):  # the member folders exist (checked first); nothing is read
        (tmp_path / "never-read" / member).mkdir(parents=True, exist_ok=True)
    return [
        "--logits-dir",
        str(tmp_path / "never-read"),
        "--members",
        "m0",
        "m1",
        "--heldout",
        "h",
        "--id",
        "t",
        "--out",
        str(tmp_path / "out"),
        "--quiet",
        *extra,
    ]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--risks", "5"], r"--risks 5\.0: expected a fraction in \(0, 1\) \(5% is 0\.05"),
        (
            ["--coverages", "80"],
            r"--coverages 80\.0: expected a fraction in \(0, 1\] \(80% is 0\.8",
        ),
        (["--coverages", "0"], r"--coverages 0\.0: expected a fraction in \(0, 1\]"),
        (["--risks", "nan"], r"--risks nan: expected a fraction"),
        (["--ood-tpr", "95"], r"--ood-tpr 95\.0: expected a fraction in \(0, 1\]"),
        (["--scod-beta", "-1"], r"--scod-beta -1\.0: expected the cost .* >= 0"),
        (["--scod-ratio", "0"], r"--scod-ratio 0\.0: expected an OOD : ID ratio > 0"),
        (["--budget", "inf"], r"budget must be >= 1 .* and finite, got inf"),
        (["--budget-grid", "1"], r"budget grid must be an integer >= 2, got 1"),
    ],
)
def test_offline_numbers_out_of_range_are_refused_before_any_work(tmp_path, capsys, extra, message):
    assert main(offline(tmp_path, *extra)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert __import__("re").search(message, err), err
    assert not (tmp_path / "out").exists()


def test_online_numbers_are_checked_with_the_option_named_before_members_load():
    for kwargs, message in [
        ({"risks": [5]}, r"--model\.risks 5: expected a fraction in \(0, 1\) \(5% is 0\.05"),
        ({"coverages": [80]}, r"--model\.coverages 80: .*\(80% is 0\.8"),
        ({"scod_beta": -1.0}, r"--model\.scod_beta -1\.0: expected the cost"),
        ({"ood_tpr": 0.0}, r"--model\.ood_tpr 0\.0: expected a fraction"),
    ]:
        with pytest.raises(ValueError, match=message):
            CascadeModule(members=["/nonexistent/m0.ckpt", "/nonexistent/m1.ckpt"], **kwargs)
    # the fractions the metric names show in percent are accepted
    check_report_points([0.05, 0.01], [0.8, 1.0], 0.95, 1.0, 0.0)
    with pytest.raises(ValueError, match=r"risks \[\]|risks: give at least one"):
        MetricSettings(risks=())
    with pytest.raises(ValueError, match="budget grid"):
        PolicySettings(budget_grid=0)


def test_one_class_logits_and_members_are_refused(tmp_path):
    logits, targets = torch.zeros(8, 1), torch.zeros(8, dtype=torch.long)
    with pytest.raises(ValueError, match=r"logits have 1 class\(es\); .* at least 2"):
        save_cached_logits(tmp_path, "m0", "d", logits, targets)
    assert not (tmp_path / "m0" / "d.safetensors").exists()
    from safetensors.torch import save_file

    (tmp_path / "m0").mkdir(exist_ok=True)
    save_file({"logits": logits, "targets": targets}, str(tmp_path / "m0" / "d.safetensors"))
    with pytest.raises(ValueError, match=r"d\.safetensors: logits have 1 class"):
        load_cached_logits(tmp_path, "m0", "d")
    with pytest.raises(ValueError, match=r"--model\.num_classes 1: a classifier needs at least 2"):
        MemberModule(num_classes=1, in_chans=1)


def test_a_fit_of_zero_epochs_is_refused_before_anything_is_written(tmp_path, small_data_config):
    data = small_data_config(tmp_path / "data.yaml")
    for option in ("--trainer.max_epochs=0", "--trainer.max_steps=0"):
        with pytest.raises(ValueError, match=rf"{option.replace('=', ' ')}: a member fit needs"):
            MemberCLI(
                args=[
                    "fit",
                    f"--config={QUICKSTART / 'member.yaml'}",
                    f"--data={data}",
                    option,
                    f"--trainer.default_root_dir={tmp_path / 'm'}",
                    f"--checkpoint.dirpath={tmp_path / 'm' / 'ckpt'}",
                ]
            )
        assert not (tmp_path / "m").exists()


def test_a_cascade_test_of_one_member_is_refused_up_front(tmp_path):
    with pytest.raises(ValueError, match=r"a cascade test needs at least 2 members"):
        CascadeCLI(
            args=[
                "test",
                f"--config={QUICKSTART / 'cascade.yaml'}",
                "--model.members=[/nowhere/m0.ckpt]",
                f"--results.dir={tmp_path / 'results'}",
            ]
        )
    assert not (tmp_path / "results").exists()
