"""Contract of the score registry: every registered score (a plugin's included) declares a
default its grid holds, scores any rows finitely and the same in chunks as at once, agrees
with the ensemble state for one member, and is listed in the score table; the registry refuses
what cannot work."""

from __future__ import annotations

import importlib

import pytest
import torch

from window_cascades.uncertainty.feature_scores import LinearHead, MemberInputs
from window_cascades.uncertainty.feature_statistics import TrainInputs, fit_statistics
from window_cascades.uncertainty.score_registry import (
    ScoreContext,
    ScoreParameter,
    register_score,
    score_entry,
    score_names,
    score_table,
    statistics_for,
    unregister_score,
    unregister_statistic,
)
from window_cascades.uncertainty.scores import EnsembleState

PLUGIN = "class_cosine"  # tests/score_plugin.py: a one-file score with a statistic of its own
SCORES = [*(name for name in score_names() if name != PLUGIN), PLUGIN]
CLASSES, DIM, TRAIN, ROWS = 5, 32, 600, 300


@pytest.fixture(scope="module")
def with_plugin():
    import tests.score_plugin as plugin

    if PLUGIN not in score_names():
        importlib.reload(plugin)
    yield
    unregister_score(PLUGIN)
    unregister_statistic("class_directions")


@pytest.fixture(scope="module")
def case(with_plugin):
    """Seeded post-ReLU-like features of a training split and of some rows to score, a head,
    and every statistic any score reads (ReAct's at its whole grid)."""
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(CLASSES, DIM, generator=g) * 2
    labels = torch.randint(CLASSES, (TRAIN,), generator=g)
    train = torch.relu(centres[labels] + torch.randn(TRAIN, DIM, generator=g)).double()
    rows = torch.relu(torch.randn(ROWS, DIM, generator=g) * 2).double()
    rows += 0.01 * torch.rand(ROWS, DIM, generator=g, dtype=torch.float64)
    head = LinearHead(
        torch.randn(CLASSES, DIM, generator=g).double(), torch.zeros(CLASSES).double()
    )
    inputs = TrainInputs(train, labels, head, CLASSES)
    react = score_entry("react").parameter("p").grid
    names = statistics_for(SCORES)
    stats = fit_statistics(names, inputs, {"activations": tuple(react)})
    context = ScoreContext(CLASSES, DIM, TRAIN)
    return MemberInputs(head.logits(rows), rows, head), stats, context


def score(entry, member: MemberInputs, stats, params) -> torch.Tensor:
    if entry.inputs == "features":
        return entry.fn(member, stats, **params)
    if entry.inputs == "logits":
        return entry.fn(member.logits.float(), **params)
    return entry.fn(member.logits.float().softmax(-1), **params)


@pytest.mark.parametrize("name", SCORES)
def test_every_default_is_a_point_of_its_grid(case, name):
    _, _, context = case
    entry = score_entry(name)
    for p in entry.parameters:
        grid = p.grid_for(context)
        assert grid, f"{name}.{p.name}: empty grid for {context}"
        assert p.validate(p.default_for(context), context) in grid, (name, p.name, grid)


@pytest.mark.parametrize("name", SCORES)
def test_every_grid_point_scores_finitely_and_the_same_in_chunks(case, name):
    member, stats, context = case
    entry = score_entry(name)
    points = [entry.defaults(context)]
    for p in entry.parameters:
        points += [{**entry.defaults(context), p.name: v} for v in p.grid_for(context)]
    for params in points:
        whole = score(entry, member, stats, params)
        assert whole.shape == (ROWS,) and whole.is_floating_point(), (name, params)
        assert torch.isfinite(whole).all(), (name, params)
        half = ROWS // 2
        parts = [
            score(
                entry,
                MemberInputs(member.logits[s], member.features[s], member.head),
                stats,
                params,
            )
            for s in (slice(0, half), slice(half, ROWS))
        ]
        torch.testing.assert_close(torch.cat(parts), whole, rtol=1e-12, atol=1e-12)


# (a feature score's member scores are handed to the state: tests/cascade/test_member_scores.py)
@pytest.mark.parametrize(
    "name", [n for n in score_names() if n != PLUGIN and score_entry(n).inputs != "features"]
)
def test_one_member_state_gives_the_registered_function(case, name):
    member, stats, context = case
    entry = score_entry(name)
    state = EnsembleState.from_logits(member.logits.float(), score=name)
    expected = score(entry, member, stats, entry.defaults(context))
    torch.testing.assert_close(state.confidence(name).double(), expected.double())


def test_the_score_table_lists_every_score(with_plugin):
    table = score_table()
    for name in SCORES:
        assert f"| `{name}` |" in table


def test_the_registry_refuses_what_cannot_work(with_plugin):
    with pytest.raises(ValueError, match="registered twice"):
        register_score("knn", "again", inputs="features")(lambda m, s: m.features[:, 0])
    with pytest.raises(ValueError, match="combined as 'probs'"):
        register_score("bad_rule", "x", inputs="probs", ensemble="mean")
    with pytest.raises(ValueError, match="unknown statistic"):
        register_score("no_stat", "x", inputs="features", statistics=("nope",))(lambda m, s: 0)
    with pytest.raises(ValueError, match="lower case"):
        register_score("Bad Name", "x")
    with pytest.raises(ValueError, match="parameters named twice"):
        p = ScoreParameter("t", 1.0, (1.0,), "t")
        register_score("twice", "x", parameters=(p, p))
    with pytest.raises(ValueError, match="unknown confidence score 'margin'"):
        score_entry("margin")
    assert "no_stat" not in score_names() and "bad_rule" not in score_names()


def test_a_parameter_value_outside_its_check_is_named():
    context = ScoreContext(CLASSES, DIM, TRAIN)
    with pytest.raises(ValueError, match="k 5000: the feature bank holds 600"):
        score_entry("knn").parameter("k").validate(5000, context)
    with pytest.raises(ValueError, match="dim 32: the principal subspace"):
        score_entry("vim").parameter("dim").validate(32, context)
    assert score_entry("gen").parameter("M").validate(100, context) == CLASSES  # at most C
    with pytest.raises(ValueError, match="expected a int"):
        score_entry("knn").parameter("k").validate("ten", context)
