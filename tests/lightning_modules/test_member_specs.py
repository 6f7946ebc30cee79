"""The members a cascade checkpoint embeds: their names, and specs that cannot be used refused
in one line naming the file and the field, before any member is built."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.lightning_modules.test_cascade_data_input import predict, write_cascade, write_images
from window_cascades.cascade.field_checks import FieldError
from window_cascades.lightning_modules.cascade_checkpoint import read_cascade_checkpoint
from window_cascades.lightning_modules.member_specs import check_member_specs, member_name


def test_a_member_is_named_by_its_run_folder_or_its_file():
    assert member_name("outputs/quickstart/members/m0/checkpoints/last.ckpt") == "m0"
    assert member_name("/models/b0.ckpt") == "b0"
    assert member_name("checkpoints/last.ckpt") == "last"


@pytest.fixture(scope="module")
def specs(tmp_path_factory) -> tuple[str, list[dict]]:
    path = write_cascade(tmp_path_factory.mktemp("cascade"))
    return path, torch.load(path, weights_only=True)["hyper_parameters"]["member_specs"]


CASES = [  # (path of the edited value, the bad value, the field named, the expectation)
    (("hyper_parameters", "model_name"), "no_such_net", "hyper_parameters.model_name", "a timm"),
    (("hyper_parameters", "num_classes"), 1, "hyper_parameters.num_classes", "an integer >= 2"),
    (("hyper_parameters", "in_chans"), 0, "hyper_parameters.in_chans", "an integer >= 1"),
    (("hyper_parameters", "resize"), "nearest", "hyper_parameters.resize", "must be one of"),
    (("member_input", "resolution"), -3, "member_input.resolution", "an integer >= 1"),
    (("member_input", "normalization"), {"m": 1}, "member_input", "takes {mean"),
    (("sha256",), "xyz", "sha256", "64 hex digits"),
]


@pytest.mark.parametrize("keys, value, field, expected", CASES)
def test_a_spec_that_cannot_be_used_is_refused_naming_the_field(
    specs, keys, value, field, expected
):
    _, good = specs
    check_member_specs(good, "c.ckpt", 2)
    bad = copy.deepcopy(good)
    target = bad[1]
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    with pytest.raises(
        FieldError, match=rf"c\.ckpt: field 'member_specs\[1\]\.{field}.*{expected}"
    ):
        check_member_specs(bad, "c.ckpt", 2)


def test_more_or_fewer_specs_than_members_in_the_weights_is_refused(specs):
    _, good = specs
    with pytest.raises(
        FieldError, match=r"describes 2 member\(s\), but the checkpoint's weights hold 3"
    ):
        check_member_specs(good, "c.ckpt", 3)
    with pytest.raises(FieldError, match="field 'member_specs' must be a list"):
        check_member_specs("m0", "c.ckpt")


def test_predict_with_an_edited_spec_is_one_line_exit_2_and_writes_nothing(specs, tmp_path, capsys):
    path, _ = specs
    ckpt = torch.load(path, weights_only=True)
    ckpt["hyper_parameters"]["member_specs"][0]["hyper_parameters"]["model_name"] = 7
    torch.save(ckpt, tmp_path / "edited.ckpt")
    with pytest.raises(FieldError, match=r"edited\.ckpt: field 'member_specs\[0\]"):
        read_cascade_checkpoint(tmp_path / "edited.ckpt")
    write_images(tmp_path, ["new/a.png"])
    out = tmp_path / "p.csv"
    code = predict(
        f"--ckpt_path={tmp_path / 'edited.ckpt'}",
        f"--predictions.inputs={tmp_path / 'new'}",
        f"--predictions.path={out}",
    )
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1
    assert "edited.ckpt: field 'member_specs[0].hyper_parameters.model_name'" in errors[0]
    assert not out.exists()
