"""Per-member scores: parameters chosen by the stated rule on the held-out split or the ood_val
sets and never on a test set, ties to the declared default, the held-out standardisation, and
the ensemble of standardised member scores through the cascade's states."""

from __future__ import annotations

import pytest
import torch

from tests.feature_case import write_feature_case
from window_cascades.artifacts.experiment_features import evaluated_logits, load_member_features
from window_cascades.artifacts.experiment_logits import load_experiment
from window_cascades.cascade.member_scores import (
    ParameterChoice,
    choose_parameters,
    score_members,
    stage_probs_choices,
)
from window_cascades.cascade.prepared_experiment import prepare_experiment
from window_cascades.uncertainty.score_registry import ScoreContext, score_entry
from window_cascades.vocabulary.roles import DatasetRoles

ROLES = {"held": "heldout", "test": "id", "far": "ood", "train": "train"}
WITH_VAL = {**ROLES, "val_ood": "ood_val"}
ASKED = [("knn", {}), ("vim", {}), ("react", {}), ("mds", {})]


def loaded(folder, roles=ROLES):
    roles = DatasetRoles(roles)
    data, macs = load_experiment(folder, ["m0", "m1"], roles)
    features = load_member_features(folder, ["m0", "m1"], roles, data, ASKED)
    logits, targets = evaluated_logits(data, roles)
    return roles, data, macs, features, logits, targets


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return loaded(write_feature_case(tmp_path_factory.mktemp("features") / "logits"))


@pytest.fixture(scope="module")
def other_far(tmp_path_factory):
    """The same case with the far OOD test set drawn anew (every other file identical)."""
    folder = tmp_path_factory.mktemp("other") / "logits"
    return loaded(write_feature_case(folder, far_seed=7))


@pytest.mark.parametrize("rule", ["heldout", "ood_val"])
def test_the_rule_reads_only_the_heldout_split_and_the_ood_val_sets(rule):
    asked = []

    def scores_of(params, name):
        asked.append(name)
        return torch.randn(50, generator=torch.Generator().manual_seed(params["k"]))

    correct = torch.arange(50) % 3 > 0
    entry = score_entry("knn")
    choose_parameters(
        entry, ScoreContext(5, 8, 100), {}, rule, scores_of, correct, ["val_ood"], "held"
    )
    assert set(asked) == ({"held", "val_ood"} if rule == "ood_val" else {"held"})


@pytest.mark.parametrize("score", ["knn", "vim", "react"])
def test_parameters_do_not_depend_on_the_test_sets(case, other_far, score):
    """Replacing the far OOD test set's features changes its scores but not one choice."""
    chosen = []
    for roles, _data, _macs, features, logits, targets in (case, other_far):
        found = score_members(score, logits, targets, roles, ["m0", "m1"], features)
        chosen.append([c.params for c in found.choices])
        far = found.vectors["far"][0]
    assert chosen[0] == chosen[1]
    first = score_members(score, case[4], case[5], case[0], ["m0", "m1"], case[3])
    assert not torch.equal(first.vectors["far"][0], far)


def test_an_ood_validation_set_switches_the_rule_to_auroc(tmp_path):
    roles, data, macs, features, logits, targets = loaded(
        write_feature_case(tmp_path / "logits"), WITH_VAL
    )
    found = score_members("knn", logits, targets, roles, ["m0", "m1"], features)
    assert {c.rule for c in found.choices} == {"ood_val"}
    assert all(c.criterion == "auroc" and len(c.grid) == 7 for c in found.choices)
    best = max(t["value"] for t in found.choices[0].grid)
    first = found.choices[0]
    assert [t["value"] for t in first.grid if t["params"] == first.params] == [best]
    heldout = score_members("knn", logits, targets, roles, ["m0", "m1"], features, "heldout")
    assert {c.criterion for c in heldout.choices} == {"aurc"}


def test_ties_go_to_the_declared_default():
    entry = score_entry("knn")
    flat = lambda params, name: torch.arange(40.0)  # noqa: E731 - every k scores the same
    correct = torch.arange(40) % 2 == 0
    found = choose_parameters(entry, ScoreContext(5, 8, 100), {}, "heldout", flat, correct, [], "h")
    assert found.params == {"k": 50} and found.rule == "heldout"


def test_pinned_and_default_rules_search_nothing(case):
    roles, data, macs, features, logits, targets = case
    pinned = score_members("knn", logits, targets, roles, ["m0", "m1"], features, pinned={"k": 3})
    assert [c.to_dict()["params"] for c in pinned.choices] == [{"k": 3}, {"k": 3}]
    assert {c.rule for c in pinned.choices} == {"pinned"} and pinned.label == "knn(k=3)"
    default = score_members("vim", logits, targets, roles, ["m0", "m1"], features, "default")
    assert [c.params for c in default.choices] == [{"dim": 16}, {"dim": 16}]  # D / 2 of 32


def test_member_scores_are_standardised_on_the_heldout_split(case):
    roles, data, macs, features, logits, targets = case
    found = score_members("mds", logits, targets, roles, ["m0", "m1"], features)
    for k in range(2):
        held = found.vectors["held"][k]
        assert float(held.mean()) == pytest.approx(0, abs=1e-9)
        assert float(held.std(correction=0)) == pytest.approx(1, abs=1e-9)
        choice = found.choices[k]
        assert choice.heldout_std > 0 and choice.rule == "default"


def test_the_first_stage_ranks_as_the_first_members_raw_score(case):
    """Standardising is monotone: stage 1 orders samples as member 1's own score does, and the
    full ensemble is the mean of the members' standardised scores."""
    roles, data, macs, features, logits, targets = case
    found = score_members("knn", logits, targets, roles, ["m0", "m1"], features)
    prepared = prepare_experiment(data, roles, macs, "knn", member_scores=found)
    first, full = prepared.prefix_outputs["test"][0], prepared.prefix_outputs["test"][1]
    z0, z1 = found.vectors["test"]
    assert torch.equal(first.confidence.argsort(), z0.argsort())
    torch.testing.assert_close(full.confidence, (z0 + z1) / 2)
    assert prepared.score_label == "knn" and set(prepared.prefix_outputs) == {"held", "test", "far"}


def test_a_constant_score_is_refused_with_the_member_named(case):
    roles, data, macs, features, logits, targets = case
    constant = [type(f)(dict(f.features), f.head, f.statistics, f.train_size) for f in features]
    for f in constant:
        f.features = {n: torch.ones_like(x) for n, x in f.features.items()}
    with pytest.raises(ValueError, match="member 'm0': its fdbd scores on the held-out split"):
        score_members(
            "fdbd", logits, targets, roles, ["m0", "m1"], constant, pinned={"centred": False}
        )


def test_a_score_of_probabilities_is_chosen_per_stage():
    g = torch.Generator().manual_seed(0)
    targets = torch.randint(4, (300,), generator=g)
    one = (torch.randn(300, 4, generator=g) + 3 * torch.eye(4)[targets]).softmax(-1)
    two = (one + (torch.randn(300, 4, generator=g) + 2 * torch.eye(4)[targets]).softmax(-1)) / 2
    roles = DatasetRoles({"held": "heldout", "test": "id"})
    choices = stage_probs_choices("gen", [one, two], targets, [[], []], roles)
    assert len(choices) == 2 and all(isinstance(c, ParameterChoice) for c in choices)
    assert all(c.rule == "heldout" and len(c.grid) == 7 for c in choices)  # M: all 4 classes
