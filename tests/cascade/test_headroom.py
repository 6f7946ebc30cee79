"""Headroom: a deferral rule learned on member 1's logits, cross-fitted, beside the policy."""

from __future__ import annotations

import json

import torch

from tests.regression_case import ARGS, write_case
from window_cascades.cascade.builtin_policies import fit_window
from window_cascades.cascade.headroom import (
    headroom,
    member_features,
    policy_headroom,
    value_of_passing,
)
from window_cascades.cascade.policy_registry import FitInputs, PolicySettings
from window_cascades.commands.offline import main as evaluate_logits


def two_members(n: int = 3000, seed: int = 0):
    """Member 1's logits, its outputs, and the two-member ensemble's (member 2 is better)."""
    gen = torch.Generator().manual_seed(seed)
    targets = torch.randint(10, (n,), generator=gen)
    shared = torch.randn(n, 10, generator=gen)
    shared[torch.arange(n), targets] += 2.0
    logits = [shared + s * torch.randn(n, 10, generator=gen) for s in (1.5, 0.5)]
    first = logits[0].softmax(-1).max(-1)
    final = ((logits[0].softmax(-1) + logits[1].softmax(-1)) / 2).max(-1)
    return (
        logits[0],
        first.values.double(),
        first.indices == targets,
        final.values.double(),
        final.indices == targets,
    )


def test_passing_on_is_worth_what_it_changes_in_the_targets_lagrangian():
    conf1 = torch.tensor([0.9, 0.9, 0.2, 0.9], dtype=torch.float64)
    wrong1 = torch.tensor([True, False, False, False])
    conf2 = torch.tensor([0.9, 0.9, 0.9, 0.1], dtype=torch.float64)
    wrong2 = torch.tensor([False, False, False, True])
    value = value_of_passing(conf1, wrong1, conf2, wrong2, "cov@20")
    # the ensemble's threshold at 20% risk is 0.9; an accepted error fixed: 1 - (1 - 1/R);
    # unchanged: 0; a rejected sample now accepted and correct: +1; an accepted correct
    # sample now rejected: -1
    assert value.tolist() == [5.0, 0.0, 1.0, -1.0]


def test_the_learned_rule_is_cross_fitted_deterministic_and_below_the_ceiling():
    logits, c1, ok1, ce, oke = two_members()
    assert member_features(logits).shape == (3000, 5)
    a = headroom(logits, c1, ok1, ce, oke, "cov@5", 0.3, seed=0)
    assert a == headroom(logits, c1, ok1, ce, oke, "cov@5", 0.3, seed=0)  # seeded
    assert 0 < a["learned_share"] < a["outcome_share"]
    none = headroom(logits, c1, ok1, ce, oke, "cov@5", 0.0)
    assert none["learned_share"] == 0 and none["outcome_share"] == 0  # nothing passed on


def test_beside_a_fitted_policy_and_only_where_it_applies():
    logits, c1, ok1, ce, oke = two_members()
    inputs = FitInputs([c1], [ok1], None, "held", ce, oke, [1.0, 2.0])
    window = fit_window(inputs, PolicySettings("cov@5", width=0.15))
    found = policy_headroom(inputs, logits, window, "cov@5")
    assert found["policy"] == "window" and found["setting"] == "cov@5,w=0.15"
    assert abs(found["heldout_cost"] - (1 + 2 * found["pass_fraction"])) < 1e-12
    assert 0.2 < found["pass_fraction"] < 0.4 and found["policy_share"] > 0
    assert policy_headroom(inputs, logits, window, "fpr@95") is None  # no held-out gain
    three = FitInputs([c1, ce], [ok1, oke], None, "held", ce, oke, [1.0, 1.0, 1.0])
    assert policy_headroom(three, logits, fit_window(three, PolicySettings()), "cov@5") is None


def test_the_offline_evaluator_reports_it_when_asked_and_skips_it_by_default(tmp_path):
    logits = write_case(tmp_path / "logits")
    two = [a for a in ARGS if a != "m2"]  # headroom is for two-member cascades
    assert (
        evaluate_logits(
            [
                "--logits-dir",
                str(logits),
                *two,
                "--no-plots",
                "--gain-shares",
                "--headroom",
                "--out",
                str(tmp_path / "a"),
            ]
        )
        == 0
    )
    records = json.loads((tmp_path / "a" / "summary.json").read_text())["headroom"]
    assert sorted(r["policy"] for r in records) == ["single_threshold", "window"]
    assert {r["setting"] for r in records} == {"pass=0.15", "cov@10,w=0.1"}  # first settings
    report = (tmp_path / "a" / "report.md").read_text()
    assert report.count("\n| window | cov@10,w=0.1 |") == 1
    assert (
        evaluate_logits(
            [
                "--logits-dir",
                str(logits),
                *two,
                "--no-plots",
                "--gain-shares",
                "--out",
                str(tmp_path / "b"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["headroom"] is None
    assert "## Headroom" not in (tmp_path / "b" / "report.md").read_text()
