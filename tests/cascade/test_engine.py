"""The cascade engine: exits, real early exit, M stages, cost."""

import math

import pytest
import torch

from window_cascades.cascade.cost import exit_fractions, expected_macs
from window_cascades.cascade.engine import run_cascade
from window_cascades.cascade.policies import IntervalPolicy, ensemble_policy, single_policy
from window_cascades.uncertainty.scores import EnsembleState


class RecordingSource:
    """Cached logits per stage; records which samples each stage was asked for."""

    def __init__(self, logits):
        self.logits, self.asked = logits, {k: [] for k in range(len(logits))}

    def __call__(self, k, index):
        self.asked[k].extend(index.tolist())
        return self.logits[k][index]


def make_logits(m=3, n=200, c=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(n, c, generator=gen) * 2 for _ in range(m)]


def test_single_and_ensemble_policies():
    logits = make_logits()
    single = run_cascade(RecordingSource(logits), 200, single_policy(3), "msp")
    torch.testing.assert_close(single.probs, logits[0].softmax(-1))
    assert single.exit_stage.eq(1).all()
    full = run_cascade(RecordingSource(logits), 200, ensemble_policy(3), "energy")
    state = EnsembleState.from_logits(logits[0]).add(logits[1]).add(logits[2])
    torch.testing.assert_close(full.probs, state.probs)
    torch.testing.assert_close(full.confidence, state.confidence("energy").double())
    assert full.exit_stage.eq(3).all()


def test_later_members_run_only_on_passed_samples():
    logits = make_logits()
    conf1 = logits[0].softmax(-1).max(-1).values
    lo, hi = conf1.quantile(0.3).item(), conf1.quantile(0.6).item()
    policy = IntervalPolicy(
        "window", torch.tensor([[lo, hi], [-math.inf, math.inf]], dtype=torch.float64)
    )
    source = RecordingSource(logits)
    result = run_cascade(source, 200, policy, "msp")
    passed = ((conf1 >= lo) & (conf1 <= hi)).nonzero().flatten().tolist()
    assert sorted(source.asked[1]) == passed
    assert sorted(source.asked[2]) == passed  # stage 2 passes everything it sees
    assert result.exit_stage[passed].eq(3).all()
    exited = [i for i in range(200) if i not in set(passed)]
    torch.testing.assert_close(result.probs[exited], logits[0][exited].softmax(-1))


def test_one_member_cascade_is_the_single_model():
    logits = make_logits(m=1)
    result = run_cascade(RecordingSource(logits), 200, ensemble_policy(1), "msp")
    torch.testing.assert_close(result.probs, logits[0].softmax(-1))
    assert result.exit_stage.eq(1).all()


def test_cost_and_exit_fractions():
    exit_stage = torch.tensor([1, 1, 2, 3])
    assert exit_fractions(exit_stage, 3).tolist() == [0.5, 0.25, 0.25]
    # all reach stage 1, half reach stage 2, a quarter reach stage 3
    assert expected_macs(exit_stage, [10.0, 20.0, 40.0]) == pytest.approx(10 + 10 + 10)


@pytest.mark.parametrize("score", ["msp", "energy"])
def test_decisions_from_known_stage_scores_equal_the_live_cascade(score):
    """The offline fast path (exit stages from every prefix's confidence, outputs gathered by
    exit stage) gives exactly the live engine's per-sample outputs, for every kind of policy."""
    from window_cascades.cascade.engine import exit_stages
    from window_cascades.cascade.offline import prefix_outputs
    from window_cascades.cascade.policies import RandomPolicy
    from window_cascades.cascade.sample_outputs import SampleOutputs
    from window_cascades.cascade.stage_scores import member_states

    logits = make_logits(m=3, n=300, c=6, seed=4)
    targets = torch.randint(6, (300,), generator=torch.Generator().manual_seed(1))
    states = member_states(logits, None, score)
    stages = prefix_outputs(states, score, targets)
    conf = [s.confidence for s in stages]
    q = [float(torch.quantile(c, 0.3)) for c in conf[:2]]
    policies = [
        single_policy(3),
        ensemble_policy(3),
        IntervalPolicy("band", torch.tensor([[q[0] - 0.2, q[0] + 0.3], [-math.inf, q[1]]])),
        RandomPolicy(3, 0.4, seed=2),
    ]
    for policy in policies:
        live = run_cascade(lambda k, i: logits[k][i], 300, policy, score)
        expected = SampleOutputs.from_probs(live.probs, live.confidence, live.exit_stage, targets)
        exits = exit_stages(conf, policy)
        assert torch.equal(exits, live.exit_stage), policy.name
        got = SampleOutputs.by_exit_stage(stages, exits)
        for name in ("confidence", "top_prob", "correct", "target_prob", "sum_sq"):
            assert torch.equal(getattr(got, name), getattr(expected, name)), (policy.name, name)
