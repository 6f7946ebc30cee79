"""Cost to reach a share of the ensemble's gain: the cheapest held-out setting of each family,
its rows in metrics.csv with intervals, and its section in the report."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, replace

import pytest
import torch

from tests.regression_case import ARGS, write_case
from window_cascades.artifacts.results import read_metrics_csv
from window_cascades.cascade.builtin_policies import interval_policy
from window_cascades.cascade.cost_to_target import (
    cost_to_target,
    has_cost_knob,
    heldout_cost,
    is_cost_to_target,
    knob_values,
)
from window_cascades.cascade.output_objective import cascade_output, output_value
from window_cascades.cascade.policy_parameters import parameter
from window_cascades.cascade.policy_registry import (
    FitInputs,
    PolicySettings,
    policy_entry,
    policy_names,
    register_policy,
    unregister_policy,
)
from window_cascades.commands.offline import main as evaluate_logits


def case(n: int = 4000, seed: int = 0, cost2: float = 1.0) -> FitInputs:
    """Two members on 10 classes; the second is more accurate (a real gain to keep)."""
    gen = torch.Generator().manual_seed(seed)
    targets = torch.randint(10, (n,), generator=gen)
    shared = torch.randn(n, 10, generator=gen)
    shared[torch.arange(n), targets] += 2.0
    probs = [(shared + s * torch.randn(n, 10, generator=gen)).softmax(-1) for s in (1.5, 0.5)]
    first, final = probs[0].max(-1), ((probs[0] + probs[1]) / 2).max(-1)
    return FitInputs(
        [first.values.double()],
        [first.indices == targets],
        None,
        "held",
        final.values.double(),
        final.indices == targets,
        [1.0, cost2],
    )


def share_and_cost(inputs: FitInputs, name: str, settings: PolicySettings):
    objective = ("cov", 0.05)
    first = output_value(inputs.stage_confidence[0], ~inputs.stage_correct[0], objective)
    full = output_value(inputs.final_confidence, ~inputs.final_correct, objective)
    policy = policy_entry(name).fit(inputs, settings)
    conf, wrong = cascade_output(inputs, policy)
    share = float((output_value(conf, wrong, objective) - first) / (full - first))
    return share, heldout_cost(inputs, policy, inputs.stage_macs)


PLUGIN = "lowest_share"  # tests/policy_with_parameter.py: a one-file policy with a cost knob
COSTED = [*(name for name in policy_names() if has_cost_knob(name)), PLUGIN]


@pytest.fixture
def with_plugin():
    """The registry with the plugin's policy in it, for one test."""
    import tests.policy_with_parameter as plugin

    if PLUGIN not in policy_names():
        importlib.reload(plugin)
    yield
    unregister_policy(PLUGIN)


@pytest.mark.parametrize("name", COSTED)
def test_the_cheapest_setting_that_reaches_each_share_is_chosen(name, with_plugin):
    inputs, settings = case(cost2=2.0), PolicySettings("cov@5", budget_select="search")
    found = cost_to_target(name, inputs, settings, [0.5, 0.75, 0.9], points=10)
    knob = policy_entry(name).sweep
    tried = [
        share_and_cost(inputs, name, settings.replace(**{knob: v}))
        for v in knob_values(knob, inputs.stage_macs, points=10)
    ]
    assert [f.share for f in found] == [0.5, 0.75, 0.9] and found[0].knob == knob
    for f in found:
        reaching = [cost for share, cost in tried if share >= f.share - 1e-12]
        if not reaching:  # e.g. a pass-the-least-confident rule on cov@5: member 1's most
            assert f.value is None and f.fitted is None  # confident samples exit first, so
            continue  # the coverage at 5% risk stays member 1's (0% of the gain)
        assert f.heldout_share >= f.share and f.heldout_cost == pytest.approx(min(reaching))
        assert f.fitted.name == f"{name}@gain{round(f.share * 100)}"
        assert is_cost_to_target(f.fitted.name) and not is_cost_to_target(name)
        assert 1 < f.heldout_cost <= 3  # member 2 costs twice member 1
    costs = [f.heldout_cost for f in found if f.value is not None]
    assert costs == sorted(costs)


def test_a_swept_parameter_without_a_cost_grid_keeps_its_policy_out(tmp_path):
    """A policy that sweeps a parameter of its own that is no cost knob (a confidence
    threshold) runs at cov@10 with the default options; cost-to-target leaves it out."""

    @dataclass(frozen=True)
    class ThresholdParameters:
        threshold: float = parameter("threshold", 0.5, "exit when confidence > threshold")

    @register_policy(
        "confidence_threshold",
        "every sample whose confidence is at most `threshold`",
        parameters=ThresholdParameters,
        sweep="threshold",
    )
    def fit(inputs, settings):
        stages = [{"lower": None, "upper": settings.threshold} for _ in inputs.stage_confidence]
        return interval_policy("confidence_threshold", stages, f"t={settings.threshold:g}")

    try:
        assert not has_cost_knob("confidence_threshold")
        assert cost_to_target("confidence_threshold", case(), PolicySettings("cov@10")) == []
        logits, out = write_case(tmp_path / "logits"), tmp_path / "out"
        args = ["--logits-dir", str(logits), "--members", "m0", "m1", "--heldout", "held"]
        args += ["--id", "test", "--target", "cov@10", "--threshold", "0.4", "0.6"]
        args += ["--policies", "single,ensemble,confidence_threshold", "--no-plots"]
        assert evaluate_logits([*args, "--quiet", "--out", str(out)]) == 0
        rows = read_metrics_csv(out / "metrics.csv")
        settings = {r["setting"] for r in rows if r["policy"] == "confidence_threshold"}
        assert settings == {"t=0.4", "t=0.6"}
    finally:
        unregister_policy("confidence_threshold")


def test_unreachable_shares_and_ood_targets_fit_nothing():
    inputs = case()
    same = replace(
        inputs, final_confidence=inputs.stage_confidence[0], final_correct=inputs.stage_correct[0]
    )
    found = cost_to_target("window", same, PolicySettings("cov@5"), [0.5])
    assert [(f.share, f.value, f.fitted) for f in found] == [(0.5, None, None)]  # no gain
    assert cost_to_target("window", inputs, PolicySettings("fpr@95"), [0.5]) == []
    for name in policy_names():  # no cost knob, or fitted on the test mixture, or left out
        if not has_cost_knob(name):
            assert cost_to_target(name, inputs, PolicySettings("cov@5"), [0.5]) == []


def test_the_offline_evaluator_writes_the_rows_and_the_report_section(tmp_path, capsys):
    logits, out = write_case(tmp_path / "logits"), tmp_path / "out"
    args = [a for a in ARGS if a != "--quiet"]
    assert (
        evaluate_logits(
            [
                "--logits-dir",
                str(logits),
                *args,
                "--bootstrap",
                "20",
                "--no-plots",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "@gain" not in printed  # the printed table keeps the policies the user asked for
    summary = json.loads((out / "summary.json").read_text())
    records = summary["cost_to_target"]
    asked = ARGS[ARGS.index("--policies") + 1].split(",")
    assert {(r["policy"], r["share"]) for r in records} == {
        (p, s) for p in asked if has_cost_knob(p) for s in (0.5, 0.75, 0.9)
    }  # e.g. window_adjusted and random have no held-out cost knob
    assert {r["policy"] for r in records} == {"window", "single_threshold"}  # the golden case
    rows = read_metrics_csv(out / "metrics.csv")
    for r in records:
        mine = {x["metric"]: x for x in rows if x["policy"] == r["name"] and x["dataset"] == "test"}
        assert mine["cov@10"]["ci_low"] is not None  # with intervals
        assert mine["expected_macs"]["ci_high"] is not None
        assert mine["cov@10"]["setting"] == r["setting"]
    report = (out / "report.md").read_text()
    section = report.split("## Cost to reach the ensemble's gain")[1].split("##")[0]
    assert section.count("\n| window |") == 3 and section.count("\n| single_threshold |") == 3
    results = report.split("## Results")[1].split("## Cost")[0]
    assert "@gain" not in results  # the key tables stay one page
    # off with --gain-shares alone; a share outside (0, 1] refused naming the option
    off = tmp_path / "off"
    assert (
        evaluate_logits(
            ["--logits-dir", str(logits), *ARGS, "--no-plots", "--gain-shares", "--out", str(off)]
        )
        == 0
    )
    assert "@gain" not in (off / "metrics.csv").read_text()
    assert json.loads((off / "summary.json").read_text())["cost_to_target"] is None
    assert (
        evaluate_logits(
            [
                "--logits-dir",
                str(logits),
                *ARGS,
                "--gain-shares",
                "75",
                "--out",
                str(tmp_path / "bad"),
            ]
        )
        == 2
    )
    assert "--gain-shares 75.0: a share of the ensemble's gain is a fraction in (0, 1]" in (
        capsys.readouterr().err
    )
