"""Early exit across batches: the same outputs as the per-batch engine, in input order, with
every later member run on full batches (but the last)."""

import pytest
import torch

from window_cascades.cascade.builtin_policies import interval_policy
from window_cascades.cascade.engine import run_cascade
from window_cascades.cascade.policies import RandomPolicy
from window_cascades.cascade.streaming import StreamingCascade


class Recording(torch.nn.Module):
    """A linear member that records the batch sizes it is called with."""

    def __init__(self, seed: int):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.weight = torch.nn.Parameter(torch.randn(8, 5, generator=gen))
        self.sizes: list[int] = []

    def forward(self, x):
        self.sizes.append(x.shape[0])
        return x @ self.weight


def policies():
    window = interval_policy(
        "window", [{"lower": 0.35, "upper": 0.7}, {"lower": 0.3, "upper": 0.8}], "w"
    )
    return [window, RandomPolicy(3, 0.3, seed=1)]


@pytest.mark.parametrize("policy", policies(), ids=["window", "random"])
def test_streaming_equals_the_per_batch_engine_in_input_order(policy):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1000, 8, generator=gen)
    members = [Recording(s) for s in range(3)]
    stream = StreamingCascade(members, policy, "msp", batch_size=64)
    for start in range(0, 1000, 96):  # batches that do not divide the queue's batch
        stream.push(x[start : start + 96])
    result = stream.finish()
    reference = run_cascade(lambda k, i: members[k](x[i]), 1000, policy, "msp")
    assert torch.equal(result.exit_stage, reference.exit_stage)
    assert torch.allclose(result.probs, reference.probs, atol=1e-6)
    assert torch.allclose(result.confidence, reference.confidence, atol=1e-6)
    # later members: full batches of 64 but the flush at the end (the stream alone counted)
    members = [Recording(s) for s in range(3)]
    stream = StreamingCascade(members, policy, "msp", batch_size=64)
    for start in range(0, 1000, 96):
        stream.push(x[start : start + 96])
    result = stream.finish()
    for k in (1, 2):
        sizes = members[k].sizes
        assert all(s == 64 for s in sizes[:-1]) and 0 < sizes[-1] <= 64, sizes
        assert sum(sizes) == int((result.exit_stage > k).sum()) == stream.calls[k]
    assert members[0].sizes == [96] * 10 + [40]


def test_samples_ids_drive_the_random_policy_and_bad_batch_sizes_are_refused():
    x = torch.randn(50, 8)
    members = [Recording(s) for s in range(3)]
    policy = RandomPolicy(3, 0.5, seed=3)
    a = StreamingCascade(members, policy, "msp", 16)
    a.push(x, torch.arange(100, 150))
    b = run_cascade(lambda k, i: members[k](x[i]), 50, policy, "msp", torch.arange(100, 150))
    assert torch.equal(a.finish().exit_stage, b.exit_stage)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        StreamingCascade(members, policy, "msp", 0)
