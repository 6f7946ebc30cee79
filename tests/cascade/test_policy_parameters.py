"""Policies declare their own parameters (``window_cascades.cascade.policy_parameters``): a
policy with a new parameter, added in one file, appears in the command-line help, the sweep and
the report."""

import contextlib
import csv
import importlib
import io
from dataclasses import dataclass

import pytest

from tests.regression_case import write_case
from window_cascades.cascade.policy_parameters import PolicySettings, declared_parameters, parameter
from window_cascades.cascade.policy_registry import policy_names, register_policy, unregister_policy
from window_cascades.commands.offline import main as evaluate_logits
from window_cascades.commands.offline_options import parse_args


@pytest.fixture
def lowest_share():
    """The one-file policy of ``tests/policy_with_parameter.py``, registered for one test."""
    import tests.policy_with_parameter as plugin

    if "lowest_share" not in policy_names():
        importlib.reload(plugin)
    yield plugin
    unregister_policy("lowest_share")
    assert "top_share" not in declared_parameters()


def offline_args(logits, out, *extra):
    return [
        "--logits-dir",
        str(logits),
        "--members",
        "m0",
        "m1",
        "--heldout",
        "held",
        "--id",
        "test",
        "--ood",
        "far",
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


def test_a_new_parameter_is_an_option_a_sweep_and_report_rows(lowest_share, tmp_path):
    help_text = io.StringIO()
    with contextlib.redirect_stdout(help_text), pytest.raises(SystemExit):
        parse_args(["--help"])
    help_words = " ".join(help_text.getvalue().split())
    assert "--top-share TOP_SHARE [TOP_SHARE ...] share of held-out samples" in help_words
    assert "used by lowest_share (several values" in help_words

    logits, out = write_case(tmp_path / "logits"), tmp_path / "out"
    args = offline_args(
        logits,
        out,
        "--policies",
        "single,lowest_share,window",
        "--top-share",
        "0.1",
        "0.3",
        "--bootstrap",
        "20",
    )
    assert evaluate_logits(args) == 0
    with open(out / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["policy"] == "lowest_share"]
    cost = {
        r["setting"]: float(r["value"])
        for r in rows
        if r["dataset"] == "held" and r["metric"] == "expected_macs"
    }
    # members of 1e6 and 2e6 MACs: the held-out cost is 1e6 + the share passed on x 2e6
    assert cost == pytest.approx({"share=0.1": 1.2e6, "share=0.3": 1.6e6}, rel=0.01)
    report = (out / "report.md").read_text()
    assert "lowest_share[share=0.1]" in report and "lowest_share[share=0.3]" in report


def test_a_new_parameter_is_checked_where_it_enters(lowest_share, tmp_path, capsys):
    logits = write_case(tmp_path / "logits")
    args = offline_args(
        logits, tmp_path / "out", "--policies", "lowest_share", "--top-share", "0.2", "1.5"
    )
    assert evaluate_logits(args) == 2
    assert "top_share must be in (0, 1), got 1.5" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit):
        parse_args(offline_args(logits, tmp_path / "out", "--top-sharing", "0.2"))
    assert "unrecognized arguments: --top-sharing 0.2" in capsys.readouterr().err


def test_declarations_are_one_per_name_and_sweeps_name_a_parameter(lowest_share):
    @dataclass(frozen=True)
    class Other:
        top_share: float = parameter("top_share", 0.5, "another meaning")

    with pytest.raises(ValueError, match="declares parameter 'top_share' differently"):
        register_policy("other_share", "x", parameters=Other)(lambda inputs, settings: None)
    with pytest.raises(ValueError, match="sweep 'width' is not one of its parameters"):
        register_policy("other_share", "x", parameters=Other, sweep="width")
    assert "other_share" not in policy_names()


def test_settings_read_defaults_and_check_every_copy():
    settings = PolicySettings("cov@5", budget=1.3)
    assert settings.width == 0.1 and settings.budget == 1.3 and settings.random_fraction is None
    assert settings.replace(width=0.2).width == 0.2 and settings.width == 0.1
    assert settings.replace(width=0.1) == settings
    with pytest.raises(ValueError, match=r"\(0, 0.5\]"):
        settings.replace(width=0.7)
    with pytest.raises(ValueError, match="expected one of 'cv', 'search'"):
        PolicySettings(budget_select="best")
    with pytest.raises(AttributeError, match="no setting or declared parameter 'widht'"):
        _ = settings.widht
