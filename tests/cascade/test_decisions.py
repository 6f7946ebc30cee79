"""A fitted cascade's decisions: the same on logits held in memory as with real early exit over
the members that produced them, and the exit stages of the offline engine."""

from __future__ import annotations

import pytest
import torch

from window_cascades.cascade.decisions import (
    DECISION_FIELDS,
    check_deployable,
    decide_logits,
    decide_members,
)
from window_cascades.cascade.engine import exit_stages
from window_cascades.cascade.fitted import FittedCascade
from window_cascades.cascade.offline import fit_cascade, prepare_experiment
from window_cascades.cascade.operating_point import DECISIONS
from window_cascades.cascade.policy_registry import PolicySettings
from window_cascades.cascade.prepared_experiment import EnsembleLogits
from window_cascades.cascade.stage_scores import stage_confidences

POLICIES = ["single", "ensemble", "single_threshold", "window", "random"]


def linear_members(features: int = 6, classes: int = 4, count: int = 3) -> torch.nn.ModuleList:
    torch.manual_seed(0)
    return torch.nn.ModuleList(torch.nn.Linear(features, classes) for _ in range(count))


@pytest.fixture(scope="module")
def deployed():
    """Three linear members and a cascade fitted on their held-out logits (with temperatures)."""
    members = linear_members()
    generator = torch.Generator().manual_seed(1)
    x = {name: torch.randn(300, 6, generator=generator) for name in ("held", "test")}
    with torch.no_grad():
        logits = {name: [m(v) for m in members] for name, v in x.items()}
    labels = {name: torch.stack(z).mean(0).argmax(-1) for name, z in logits.items()}
    labels = {name: y.where(torch.arange(300) % 5 != 0, (y + 1) % 4) for name, y in labels.items()}
    data = {name: EnsembleLogits(logits[name], labels[name]) for name in x}
    prepared = prepare_experiment(
        data, {"held": "heldout", "test": "id"}, [1.0, 2.0, 4.0], "msp", True
    )
    fitted = fit_cascade(prepared, POLICIES, PolicySettings("cov@10", width=0.2))
    return members, fitted, x["test"], logits["test"]


@pytest.mark.parametrize("policy", POLICIES)
def test_logits_in_memory_decide_as_the_members_do_with_early_exit(deployed, policy):
    members, fitted, x, logits = deployed
    ids = torch.arange(1000, 1300)
    with torch.no_grad():
        online = decide_members(members, fitted, "msp", x, policy, ids)
    offline = decide_logits(fitted, logits, policy, ids)
    assert list(offline) == list(DECISION_FIELDS)
    # a member run on a subset of the batch may differ from its run on the whole batch in the
    # last bits of float32 (matrix products are blocked by batch size): the same decisions,
    # confidences within rounding
    for key in ("prediction", "decision", "accepted", "ood", "exit_stage"):
        assert torch.equal(online[key], offline[key]), key
    torch.testing.assert_close(online["confidence"], offline["confidence"], rtol=1e-6, atol=0)


def test_exit_stages_are_the_offline_engines(deployed):
    _, fitted, _, logits = deployed
    confidence, _ = stage_confidences(logits, "msp", None, fitted.temperatures, True)
    plain = FittedCascade(fitted.policies, None, fitted.info)  # and without temperatures
    assert not torch.equal(confidence[0], stage_confidences(logits, "msp")[0][0])
    for policy in ("window", "single_threshold"):
        expected = exit_stages(confidence, fitted.policies[policy])
        assert torch.equal(decide_logits(fitted, logits, policy)["exit_stage"], expected)
    confidence, _ = stage_confidences(logits, "msp", include_final=True)
    for policy in ("window", "single_threshold"):
        expected = exit_stages(confidence, fitted.policies[policy])
        assert torch.equal(decide_logits(plain, logits, policy)["exit_stage"], expected)
    assert bool((decide_logits(plain, logits, "window")["exit_stage"] > 1).any())


def test_one_outcome_per_sample_follows_the_operating_points(deployed):
    _, fitted, _, logits = deployed
    point = fitted.info["operating_points"]["window"]
    decided = decide_logits(fitted, logits, "window")
    conf = decided["confidence"]
    assert torch.equal(decided["ood"], conf < point["ood"])
    assert torch.equal(decided["accepted"], (conf >= point["accept"]) & (conf >= point["ood"]))
    assert not bool((decided["accepted"] & decided["ood"]).any())
    names = [DECISIONS[int(c)] for c in decided["decision"]]
    assert names == [
        "accept" if a else "ood" if o else "reject"
        for a, o in zip(decided["accepted"].tolist(), decided["ood"].tolist(), strict=True)
    ]
    assert point["ood"] < point["accept"]  # this fit nests them: reject between the two
    between = (conf >= point["ood"]) & (conf < point["accept"])
    assert bool(between.any()) and (decided["decision"][between] == 1).all()
    # an OOD threshold above the acceptance one (e.g. cov@5 at 0.45, 95% ID at 0.87): the
    # samples between them are flagged OOD, as documented, never both
    low, high = (float(conf.quantile(q)) for q in (0.25, 0.75))
    crossed_point = {**point, "accept": low, "ood": high}
    crossed = FittedCascade(
        fitted.policies,
        fitted.temperatures,
        {**fitted.info, "operating_points": {"window": crossed_point}},
    )
    decided = decide_logits(crossed, logits, "window")
    between = (conf >= low) & (conf < high)
    assert bool(between.any()) and bool(decided["ood"][between].all())
    assert not bool((decided["accepted"] & decided["ood"]).any())
    assert torch.equal(decided["accepted"], conf >= high)


def test_logits_that_do_not_fit_the_cascade_are_refused(deployed):
    _, fitted, _, logits = deployed
    with pytest.raises(ValueError, match="2 member"):
        decide_logits(fitted, logits[:2], "window")
    with pytest.raises(ValueError, match=r"member_logits\[1\]: shape \(300, 3\)"):
        decide_logits(fitted, [logits[0], logits[1][:, :3], logits[2]], "window")
    nan = logits[2].clone()
    nan[5, 1] = float("nan")
    with pytest.raises(ValueError, match=r"member_logits\[2\]: expected finite"):
        decide_logits(fitted, [logits[0], logits[1], nan], "window")
    with pytest.raises(ValueError, match="policy 'budget_window' was not fitted"):
        decide_logits(fitted, logits, "budget_window")


def test_a_cascade_without_operating_points_is_refused(deployed):
    _, fitted, _, logits = deployed
    old = FittedCascade(fitted.policies, fitted.temperatures, {"score": "msp"})
    with pytest.raises(ValueError, match="no operating points"):
        decide_logits(old, logits, "window")
    with pytest.raises(ValueError, match="never calibrated"):
        check_deployable(None, "window")
