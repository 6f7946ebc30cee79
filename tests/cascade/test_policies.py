"""Cascade stages are numbered from 1 in the policies as in the engine and the docs: stage k
decides, on the confidence of the first k members, which samples member k + 1 sees."""

from __future__ import annotations

import math

import pytest
import torch

from window_cascades.cascade.engine import exit_stages
from window_cascades.cascade.policies import IntervalPolicy, RandomPolicy, policy_from_dict


def test_stage_k_uses_the_kth_row_of_bounds():
    # three members: stage 1 passes confidences <= 0.5, stage 2 those in [0.2, 0.3]
    bounds = torch.tensor([[-math.inf, 0.5], [0.2, 0.3]], dtype=torch.float64)
    policy = IntervalPolicy("two_rules", bounds)
    conf = torch.tensor([0.1, 0.25, 0.4, 0.9])
    assert policy.passes(1, conf).tolist() == [True, True, True, False]
    assert policy.passes(2, conf).tolist() == [False, True, False, False]
    # the engine asks stage 1, then stage 2: 0.9 exits at 1, 0.25 reaches member 3
    assert exit_stages([conf, conf, conf], policy).tolist() == [2, 3, 2, 1]


def test_the_random_policy_passes_the_samples_it_always_passed():
    # pinned: a seed passes the same samples in every version (the hash's inputs are fixed),
    # so results of earlier runs with the random policy are reproduced
    policy = RandomPolicy(num_stages=3, fraction=0.3, seed=7)
    ids, conf = torch.arange(20), torch.zeros(20)
    assert ids[policy.passes(1, conf, ids)].tolist() == [2, 5, 7, 9, 10, 12, 15]
    assert ids[policy.passes(2, conf, ids)].tolist() == [0, 2, 6, 15, 18]
    back = policy_from_dict(policy.to_dict())
    assert back.passes(2, conf, ids).tolist() == policy.passes(2, conf, ids).tolist()


@pytest.mark.parametrize("stage", [0, 3, -1])
def test_a_stage_outside_1_to_m_minus_1_is_refused(stage):
    # a caller that still counts from 0 fails loudly instead of reading another stage's row
    bounds = torch.tensor([[-math.inf, 0.5], [0.2, 0.3]], dtype=torch.float64)
    conf, ids = torch.zeros(4), torch.arange(4)
    for policy in (IntervalPolicy("two_rules", bounds), RandomPolicy(3, 0.5)):
        with pytest.raises(ValueError, match=r"stages 1\.\.2 \(stages are numbered from 1\)"):
            policy.passes(stage, conf, ids)
