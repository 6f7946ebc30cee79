"""budget_window's selection rules against each other, on synthetic members with known test
sets: how much of the ensemble's gain each keeps, and how far below the window it can fall.

    python benchmarks/budget/benchmark_rule.py [--seeds 0 1 2] [--resamples 200] > out.md

Two members per case, their top-1 probability (MSP) and correctness only (what the fit reads):

- ``imagenet``: the generator of ``benchmarks/eval/benchmark_eval.py`` (1000 classes, a shared
  class signal of 3-5 logits, member noise 0.7, scale 2), target cov@5, held-out 1k/2k/10k;
- ``notmnist-like``: 10 classes, signal 8 (0.3 + u) with 7% junk samples (signal 0.5), member
  noise 0.7 (top-1 about .90, cov@1 about .83/.85 single/ensemble), cov@1 and cov@2, held-out
  2k/5k (synthetic: the real notMNIST members' logits are not cached here).

Each seed draws a held-out pool and an independent 40,000-sample test set; per budget
(1.1/1.2/1.3, equal-cost members) each rule (``budget_select``: window, search, cv, ose) is
fitted on the first n held-out samples and scored on test; ``ceiling`` is the plain search
fitted on the test split itself (its own 200-point grid, at its own cost): about the most one
pass-interval of member 1's confidence can keep on that draw, a bound no held-out rule can
beat. Printed per case, n and budget: the share of the test ensemble gain kept ((policy -
single) / (ensemble - single) of the target, mean over seeds), and for ``ose`` and ``search``
the worst (policy - window) test difference
over the seeds with its 95% paired bootstrap interval over the test samples.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from window_cascades.cascade.output_objective import cascade_output, output_value
from window_cascades.cascade.policy_registry import FitInputs, PolicySettings, fit_policies

RULES = ("window", "search", "cv", "ose")
COLUMNS = (*RULES, "ceiling")  # ceiling: the search fitted on the test split itself


def members(kind: str, n: int, seed: int) -> FitInputs:
    """Member-1 and 2-member-ensemble MSP and correctness of n samples (generated in chunks)."""
    gen = torch.Generator().manual_seed(seed)
    classes = 1000 if kind == "imagenet" else 10
    parts: list[list[torch.Tensor]] = [[], [], [], []]
    for first in range(0, n, 5000):
        m = min(5000, n - first)
        y = torch.randint(classes, (m,), generator=gen)
        shared = torch.randn(m, classes, generator=gen)
        if kind == "imagenet":
            shared[torch.arange(m), y] += 3.0 + 2.0 * torch.rand(m, generator=gen)
            logits = [2.0 * (shared + 0.7 * torch.randn(m, classes, generator=gen)) for _ in "ab"]
        else:
            signal = 8.0 * (0.3 + torch.rand(m, generator=gen))
            signal[torch.rand(m, generator=gen) < 0.07] = 0.5
            shared[torch.arange(m), y] += signal
            logits = [shared + 0.7 * torch.randn(m, classes, generator=gen) for _ in "ab"]
        probs = [z.softmax(-1) for z in logits]
        c1, k1 = probs[0].max(-1)
        ce, ke = ((probs[0] + probs[1]) / 2).max(-1)
        for part, value in zip(parts, (c1.double(), k1 == y, ce.double(), ke == y), strict=True):
            part.append(value)
    c1, k1, ce, ke = (torch.cat(p) for p in parts)
    return FitInputs([c1], [k1], None, "held", ce, ke, [1.0, 1.0])


def head(inputs: FitInputs, n: int) -> FitInputs:
    return FitInputs(
        [inputs.stage_confidence[0][:n]],
        [inputs.stage_correct[0][:n]],
        None,
        "held",
        inputs.final_confidence[:n],
        inputs.final_correct[:n],
        [1.0, 1.0],
    )


def case(kind: str, target: str, sizes: list[int], seeds: list[int], resamples: int):
    task, level = target.split("@")
    objective = (task, float(level) / 100)
    results = []  # (n, budget, seed, rule, share, diff to window, lo, hi)
    for seed in seeds:
        pool, test = members(kind, max(sizes), 1000 + seed), members(kind, 40_000, 5000 + seed)
        single = float(output_value(test.stage_confidence[0], ~test.stage_correct[0], objective))
        ensemble = float(output_value(test.final_confidence, ~test.final_correct, objective))
        n_test = test.final_confidence.numel()
        draws = torch.randint(
            n_test, (resamples, n_test), generator=torch.Generator().manual_seed(9)
        )
        weights = torch.zeros(resamples, n_test, dtype=torch.float64)
        weights.scatter_add_(1, draws, torch.ones_like(draws, dtype=torch.float64))
        ceiling = {}  # what the interval family can reach at all: fitted on test, at test's cost
        for budget in (1.1, 1.2, 1.3):
            settings = PolicySettings(target, budget=budget, budget_select="search")
            policy = fit_policies(["budget_window"], test, settings)["budget_window"]
            ceiling[budget] = cascade_output(test, policy)
        for n in sizes:
            held = head(pool, n)
            for budget in (1.1, 1.2, 1.3):
                outs = {}
                for rule in RULES:
                    settings = PolicySettings(target, budget=budget, budget_select=rule)
                    policy = fit_policies(["budget_window"], held, settings)["budget_window"]
                    outs[rule] = cascade_output(test, policy)
                outs["ceiling"] = ceiling[budget]
                window_boot = output_value(*outs["window"], objective, weights)
                window_value = float(output_value(*outs["window"], objective))
                for rule, out in outs.items():
                    value = float(output_value(*out, objective))
                    diff = output_value(*out, objective, weights) - window_boot
                    lo, hi = torch.quantile(diff, torch.tensor([0.025, 0.975], dtype=torch.float64))
                    share = (value - single) / (ensemble - single)
                    row = (n, budget, seed, rule, share, value - window_value, float(lo), float(hi))
                    results.append(row)
    return results


def table(kind: str, target: str, results) -> list[str]:
    lines = [
        f"\n#### {kind}, {target}: share of the ensemble's test gain kept (mean over seeds); "
        "worst test difference to the window over seeds [95% paired bootstrap]\n",
        "| held-out | budget | " + " | ".join(COLUMNS) + " | ose - window (worst) | "
        "search - window (worst) |",
        "| --- | --- | " + " | ".join("---" for _ in COLUMNS) + " | --- | --- |",
    ]
    keys = sorted({(r[0], r[1]) for r in results})
    for n, budget in keys:
        rows = [r for r in results if r[0] == n and r[1] == budget]
        shares = [f"{statistics.mean(r[4] for r in rows if r[3] == rule):.0%}" for rule in COLUMNS]
        worst = {}
        for rule in ("ose", "search"):
            w = min((r for r in rows if r[3] == rule), key=lambda r: r[5])
            worst[rule] = f"{w[5]:+.4f} [{w[6]:+.4f}, {w[7]:+.4f}]"
        lines.append(
            f"| {n:,} | {budget:g} | " + " | ".join(shares) + f" | {worst['ose']} | "
            f"{worst['search']} |"
        )
    overall = {rule: statistics.mean(r[4] for r in results if r[3] == rule) for rule in COLUMNS}
    lines.append(
        "\nMean share over every n, budget and seed: "
        + ", ".join(f"{rule} {v:.0%}" for rule, v in overall.items())
    )
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--resamples", type=int, default=200)
    args = p.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"load average at start {os.getloadavg()}"
    )
    print(
        "command: python benchmarks/budget/benchmark_rule.py "
        + " ".join(["--seeds", *map(str, args.seeds), "--resamples", str(args.resamples)])
    )
    for kind, target, sizes in (
        ("imagenet", "cov@5", [1000, 2000, 10000]),
        ("notmnist-like", "cov@1", [2000, 5000]),
        ("notmnist-like", "cov@2", [2000, 5000]),
    ):
        results = case(kind, target, sizes, args.seeds, args.resamples)
        print("\n".join(table(kind, target, results)), flush=True)
    print(f"\n{time.perf_counter() - start:.0f} s; load average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
