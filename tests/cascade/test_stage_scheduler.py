"""Stage-aware scheduling of a served cascade: for any arrival pattern the decisions equal the
per-batch engine's on the same images; a request whose images exit at stage 1 completes at
once while others wait; the stage-2 queue runs when full, when its oldest image has waited
``stage_timeout`` (a fake clock) or when the server is idle; naive mode answers a batch only
after every stage it needs; a failing member fails exactly the requests it held."""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from window_cascades.cascade.builtin_policies import interval_policy
from window_cascades.cascade.engine import run_cascade
from window_cascades.cascade.operating_point import decision_flags
from window_cascades.cascade.policies import RandomPolicy, ensemble_policy, single_policy
from window_cascades.cascade.stage_scheduler import StageScheduler
from window_cascades.cascade.stage_scores import Temperatures

POINT = {"accept": 0.55, "ood": 0.3}


class Clock:
    """A fake monotonic clock: ``clock.now`` seconds."""

    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class Member(torch.nn.Module):
    """A linear classifier of 2 x 3 x 3 images into 4 classes, recording its batch sizes."""

    def __init__(self, seed: int):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.weight = torch.nn.Parameter(torch.randn(18, 4, generator=gen))
        self.sizes: list[int] = []

    def forward(self, x):
        self.sizes.append(x.shape[0])
        return x.flatten(1) @ self.weight


def window(num_stages: int = 3):
    stages = [{"lower": 0.4, "upper": 0.75}, {"lower": 0.35, "upper": 0.8}][: num_stages - 1]
    return interval_policy("window", stages, "w")


def reference(members, policy, x, temperatures=None) -> list[dict]:
    """The per-batch engine's decisions on all images at once (ids = positions); the members'
    recorded batch sizes are left as they were."""
    sizes = [list(m.sizes) for m in members]
    with torch.no_grad():
        result = run_cascade(
            lambda k, i: members[k](x[i]), x.shape[0], policy, "msp", None, temperatures
        )
    for member, kept in zip(members, sizes, strict=True):
        member.sizes = kept
    accepted, ood = decision_flags(result.confidence, POINT)
    return [
        {
            "prediction": int(result.probs[i].argmax()),
            "confidence": float(result.confidence[i]),
            "exit_stage": int(result.exit_stage[i]),
            "accepted": bool(accepted[i]),
            "ood": bool(ood[i]),
        }
        for i in range(x.shape[0])
    ]


def same(found: list[dict], expected: list[dict]) -> None:
    assert len(found) == len(expected)
    for f, e in zip(found, expected, strict=True):
        assert f["confidence"] == pytest.approx(e["confidence"], abs=1e-6)
        assert {k: v for k, v in f.items() if k != "confidence"} == {
            k: v for k, v in e.items() if k != "confidence"
        }


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 4), min_size=1, max_size=25),
    batch=st.integers(1, 6),
    stage_batch=st.integers(1, 7),
    seed=st.integers(0, 10**6),
    mode=st.sampled_from(["stage", "naive"]),
    use_random=st.booleans(),
)
def test_any_arrival_pattern_gives_the_engine_s_decisions(
    sizes, batch, stage_batch, seed, mode, use_random
):
    rng = random.Random(seed)
    x = torch.randn(sum(sizes), 2, 3, 3, generator=torch.Generator().manual_seed(seed))
    members = [Member(s) for s in range(3)]
    policy = RandomPolicy(3, 0.4, seed=2) if use_random else window()
    temperatures = Temperatures([1.3, 0.8, 1.1], {2: 0.9, 3: 1.2})
    clock = Clock()
    scheduler = StageScheduler(
        members, policy, "msp", POINT, temperatures, stage_batch, 0.5, mode, clock
    )
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    requests = [(f"r{i}", x[s : s + n]) for i, (s, n) in enumerate(zip(starts, sizes, strict=True))]
    done = {}
    while requests or scheduler.open_requests:
        clock.now += rng.choice([0.0, 0.1, 0.3, 0.6])
        take = rng.randint(1, batch)
        if requests and rng.random() < 0.7:
            outcomes = scheduler.submit(requests[:take])
            requests = requests[take:]
        else:
            k = scheduler.due(idle=not requests)
            outcomes = scheduler.run_stage(k) if k is not None else []
        for outcome in outcomes:
            assert outcome.key not in done and outcome.error is None
            done[outcome.key] = outcome.decisions
    expected = reference(members, policy, x, temperatures)
    assert sorted(done) == sorted(f"r{i}" for i in range(len(sizes)))
    found = [d for i in range(len(sizes)) for d in done[f"r{i}"]]
    same(found, expected)
    assert scheduler.waiting == 0 and scheduler.calls[0] == x.shape[0]
    assert scheduler.calls[1] == sum(e["exit_stage"] >= 2 for e in expected)
    assert scheduler.exits == [sum(e["exit_stage"] == k for e in expected) for k in (1, 2, 3)]
    # every later member ran on batches of at most stage_batch images
    assert all(0 < s <= stage_batch for m in members[1:] for s in m.sizes)


def test_an_exited_request_completes_at_once_while_a_passed_one_waits_for_its_deadline():
    members = [Member(0), Member(1)]
    x = torch.randn(40, 2, 3, 3, generator=torch.Generator().manual_seed(3))
    policy = window(2)
    ref = reference(members, policy, x)
    exits = [i for i, r in enumerate(ref) if r["exit_stage"] == 1]
    passes = [i for i, r in enumerate(ref) if r["exit_stage"] == 2]
    assert len(exits) >= 2 and len(passes) >= 3
    order = [exits[0], passes[0], exits[1], passes[1], passes[2]]
    clock = Clock(10.0)
    scheduler = StageScheduler(
        members, policy, "msp", POINT, stage_batch=3, stage_timeout=0.05, clock=clock
    )
    done = scheduler.submit([(f"r{i}", x[i : i + 1]) for i in order[:4]])
    # the two exited requests answer now; member 2 has not run
    assert [o.key for o in done] == [f"r{exits[0]}", f"r{exits[1]}"] and members[1].sizes == []
    assert scheduler.waiting == 2 and scheduler.next_deadline() == pytest.approx(10.05)
    clock.now = 10.04
    assert scheduler.due() is None  # not full, not old enough, not idle
    assert scheduler.due(idle=True) == 1  # idle: run it now
    clock.now = 10.05
    assert scheduler.due() == 1  # its deadline
    clock.now = 10.01
    done = scheduler.submit([(f"r{order[4]}", x[order[4] : order[4] + 1])])
    assert done == [] and scheduler.due() == 1  # full: 3 images wait
    done = scheduler.run_stage(1)
    assert sorted(o.key for o in done) == sorted(f"r{i}" for i in passes[:3])
    assert members[1].sizes == [3] and scheduler.waiting == 0 and scheduler.next_deadline() is None
    for outcome in done:
        same(outcome.decisions, [ref[int(outcome.key[1:])]])


def test_a_request_of_several_images_completes_when_its_last_image_exits():
    members = [Member(0), Member(1)]
    x = torch.randn(40, 2, 3, 3, generator=torch.Generator().manual_seed(3))
    ref = reference(members, window(2), x)
    first_pass = next(i for i, r in enumerate(ref) if r["exit_stage"] == 2)
    scheduler = StageScheduler(members, window(2), "msp", POINT, stage_batch=8)
    done = scheduler.submit([("many", x[: first_pass + 1])])
    assert done == [] and scheduler.open_requests == 1
    (outcome,) = scheduler.run_stage(1)
    assert outcome.key == "many"
    same(outcome.decisions, ref[: first_pass + 1])


def test_naive_mode_answers_a_batch_only_after_every_stage_it_needs():
    members = [Member(0), Member(1)]
    x = torch.randn(12, 2, 3, 3, generator=torch.Generator().manual_seed(3))
    ref = reference(members, window(2), x)
    assert {r["exit_stage"] for r in ref} == {1, 2}
    scheduler = StageScheduler(members, window(2), "msp", POINT, stage_batch=5, mode="naive")
    done = scheduler.submit([(i, x[i : i + 1]) for i in range(12)])
    assert sorted(o.key for o in done) == list(range(12)) and scheduler.waiting == 0
    same([o.decisions[0] for o in sorted(done, key=lambda o: o.key)], ref)


@pytest.mark.parametrize("make, stages", [(single_policy, {1}), (ensemble_policy, {2})])
def test_single_and_ensemble_policies_are_served_by_the_same_scheduler(make, stages):
    members = [Member(0), Member(1)]
    x = torch.randn(6, 2, 3, 3, generator=torch.Generator().manual_seed(1))
    scheduler = StageScheduler(members, make(2), "msp", POINT)
    done = scheduler.submit([(i, x[i : i + 1]) for i in range(6)])
    while (k := scheduler.due(idle=True)) is not None:
        done += scheduler.run_stage(k)
    assert {o.decisions[0]["exit_stage"] for o in done} == stages and len(done) == 6


class Failing(Member):
    def forward(self, x):
        raise RuntimeError("out of memory")


def test_a_failing_later_member_fails_exactly_the_requests_it_held():
    members = [Member(0), Failing(1)]
    x = torch.randn(30, 2, 3, 3, generator=torch.Generator().manual_seed(3))
    ref = reference([Member(0), Member(1)], window(2), x)
    scheduler = StageScheduler(members, window(2), "msp", POINT, stage_batch=2)
    done = scheduler.submit([(i, x[i : i + 1]) for i in range(30)])
    assert sorted(o.key for o in done) == [i for i, r in enumerate(ref) if r["exit_stage"] == 1]
    failed = scheduler.run_stage(1)
    passed = [i for i, r in enumerate(ref) if r["exit_stage"] == 2]
    assert [o.key for o in failed] == passed[:2]
    assert all(o.decisions is None and "member 2 failed: RuntimeError" in o.error for o in failed)
    assert scheduler.open_requests == len(passed) - 2
    with pytest.raises(RuntimeError, match="out of memory"):  # member 1: the caller's batch
        StageScheduler([Failing(0), Member(1)], window(2), "msp", POINT).submit([(0, x[:1])])


def test_bad_settings_and_reused_keys_are_refused():
    members = [Member(0), Member(1)]
    for kwargs, message in [
        ({"stage_batch": 0}, "stage_batch must be an integer >= 1"),
        ({"stage_timeout": 0}, "stage_timeout must be > 0"),
        ({"mode": "eager"}, "mode must be one of"),
    ]:
        with pytest.raises(ValueError, match=message):
            StageScheduler(members, window(2), "msp", POINT, **kwargs)
    with pytest.raises(ValueError, match="the policy has 3 stage"):
        StageScheduler(members, window(3), "msp", POINT)
    scheduler = StageScheduler(members, ensemble_policy(2), "msp", POINT)
    x = torch.randn(1, 2, 3, 3)
    scheduler.submit([("a", x)])
    with pytest.raises(ValueError, match="unique among open requests"):
        scheduler.submit([("a", x)])
