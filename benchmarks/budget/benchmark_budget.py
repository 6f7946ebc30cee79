"""How much of the ensemble's gain each policy keeps at a compute budget, and whether
guaranteed thresholds hold on new data, from cached logits of two members.

    python benchmarks/budget/benchmark_budget.py --logits-dir DIR --members m0 m1 \\
        --heldout NAME --id NAME [--target cov@5] [--budgets 1.1 1.2 1.3] [--draws 300]

Prints markdown tables (nothing is asserted):

1. per budget B: ``window`` at w = (B - 1) / 2 x (m1 / m2), ``single_threshold`` at pass
   fraction (B - 1) x (m1 / m2) and ``budget_window`` at B, both as the plain search
   (``budget_select="search"``) and as the default cross-fitted choice (``cv``, with the rule
   it chose): the target on held-out and test, the test cost, the fraction of the ensemble's
   gain over the single model kept on test, and the 95% paired bootstrap interval (over the
   test samples, ``--resamples``) of the policy's test target minus the window's;
2. the fitting time of ``budget_window`` (median of 3, held-out as loaded);
3. the guarantee: the held-out and test outputs of the single model and of the ensemble are
   pooled, split again ``--draws`` times at the original sizes (seeded), and the threshold for
   the target risk is chosen on each held-out draw without a guarantee and with ``--guarantee``
   (LTT and SGR); reported: the fraction of draws whose test risk exceeds R and the mean test
   coverage. The "truth" is each draw's test split, so test-sampling noise adds to the
   violation rate.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from window_cascades.artifacts.experiment_logits import load_experiment
from window_cascades.cascade.engine import exit_stages
from window_cascades.cascade.metric_registry import MetricSettings
from window_cascades.cascade.offline import evaluate_policies, prepare_experiment
from window_cascades.cascade.output_objective import output_value
from window_cascades.cascade.policy_registry import FitInputs, PolicySettings, fit_policies
from window_cascades.cascade.sample_outputs import SampleOutputs
from window_cascades.uncertainty.guarantees import GuaranteeError, certified_threshold
from window_cascades.uncertainty.selective import coverage_at_risk
from window_cascades.uncertainty.targets import parse_target


def gain_table(
    prepared,
    target: str,
    budgets: list[float],
    macs: list[float],
    resamples: int = 1000,
    seed: int = 0,
) -> list[str]:
    ratio = macs[0] / macs[1]
    parsed = parse_target(target)
    reported = MetricSettings(
        risks=(parsed.value,) if parsed.task == "cov" else (0.05,),
        coverages=(parsed.value,) if parsed.task == "risk" else (0.8,),
    )
    rows, _ = evaluate_policies(prepared, ["single", "ensemble"], PolicySettings(target), reported)
    value = {(r["dataset"], r["policy"], r["metric"]): r["value"] for r in rows}
    held, test, metric = prepared.roles.heldout, prepared.roles.id, target
    single, ensemble = value[test, "single", metric], value[test, "ensemble", metric]
    lines = [
        f"single {metric} {single:.4f}, ensemble {ensemble:.4f} (test)",
        "",
        f"| budget | policy | setting | {metric} held-out | {metric} test | test cost | "
        "gain kept (test) | test - window (95% paired bootstrap) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    objective = (parsed.task, parsed.value)
    weights = resample_weights(prepared.data[test].num_samples, resamples, seed)
    for budget in budgets:
        extra = (budget - 1) * ratio
        reference = None
        for policy, label, settings in (
            ("window", "window", PolicySettings(target, width=min(extra / 2, 0.5))),
            (
                "single_threshold",
                "single_threshold",
                PolicySettings(target, pass_fraction=min(extra, 1.0)),
            ),
            (
                "budget_window",
                "budget_window (search)",
                PolicySettings(target, budget=budget, budget_select="search"),
            ),
            ("budget_window", "budget_window (cv)", PolicySettings(target, budget=budget)),
        ):
            rows, fitted = evaluate_policies(prepared, [policy], settings, reported)
            v = {(r["dataset"], r["metric"]): r["value"] for r in rows}
            kept = (v[test, metric] - single) / (ensemble - single)
            fit = fitted[policy]
            if "(cv)" in label:
                label = f"budget_window (cv: {fit.selection['chosen']})"
            # paired bootstrap over the test samples of (policy - window) on the target
            conf, wrong = test_output(prepared, fit)
            boot = output_value(conf, wrong, objective, weights)
            if reference is None:
                reference, diff = boot, "-"
            else:
                lo, hi = torch.quantile(boot - reference, torch.tensor([0.025, 0.975]).double())
                diff = f"{float(lo):+.4f} .. {float(hi):+.4f}"
            lines.append(
                f"| {budget:g} | {label} | {fit.setting} | {v[held, metric]:.4f} | "
                f"{v[test, metric]:.4f} | {v[test, 'expected_macs'] / macs[0]:.3f} | "
                f"{kept:.1%} | {diff} |"
            )
    return lines


def resample_weights(n: int, resamples: int, seed: int) -> torch.Tensor:
    """(resamples, n) bootstrap counts of n samples (seeded)."""
    draws = torch.randint(n, (resamples, n), generator=torch.Generator().manual_seed(seed))
    weights = torch.zeros(resamples, n, dtype=torch.float64)
    return weights.scatter_add_(1, draws, torch.ones_like(draws, dtype=torch.float64))


def test_output(prepared, policy) -> tuple[torch.Tensor, torch.Tensor]:
    """(confidence, wrong) of the cascade's output on the test set under ``policy``."""
    stages = prepared.prefix_outputs[prepared.roles.id]
    out = SampleOutputs.by_exit_stage(stages, exit_stages([s.confidence for s in stages], policy))
    return out.confidence, ~out.correct.bool()


def fit_time(prepared, target: str) -> float:
    final = prepared.prefix_outputs[prepared.roles.heldout][-1]
    inputs = FitInputs(
        prepared.heldout_confidence,
        prepared.heldout_correct,
        None,
        prepared.roles.heldout,
        final.confidence,
        final.correct,
        prepared.stage_macs,
    )
    times = []
    for _ in range(3):
        start = time.perf_counter()
        fit_policies(["budget_window"], inputs, PolicySettings(target, budget=1.2))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def guarantee_table(prepared, target: str, delta: float, draws: int, seed: int) -> list[str]:
    parsed = parse_target(target)
    if parsed.task != "cov":
        return [f"(the guarantee simulation needs a cov@R target, not {target})"]
    risk = parsed.value
    held, test = prepared.roles.heldout, prepared.roles.id
    lines = [
        f"| outputs | threshold | draws with test risk > {risk:g} | mean test coverage |",
        "| --- | --- | --- | --- |",
    ]
    gen = torch.Generator().manual_seed(seed)
    for prefix, name in ((0, "single"), (-1, "ensemble")):
        a, b = prepared.prefix_outputs[held][prefix], prepared.prefix_outputs[test][prefix]
        conf = torch.cat([a.confidence, b.confidence]).double()
        correct = torch.cat([a.correct, b.correct]).bool()
        n_held = a.confidence.numel()
        choose = {"empirical": lambda c, k: coverage_at_risk(c, k, risk)[1]}
        for method in ("ltt", "sgr"):
            choose[f"{method}, DELTA={delta:g}"] = lambda c, k, m=method: (
                certified_threshold(c, k, "cov", risk, delta, m).threshold
            )
        results = {label: ([], []) for label in choose}
        for _ in range(draws):
            perm = torch.randperm(conf.numel(), generator=gen)
            h, t = perm[:n_held], perm[n_held:]
            for label, rule in choose.items():
                try:
                    threshold = rule(conf[h], correct[h])
                except (GuaranteeError, ValueError):
                    threshold = float("inf")  # nothing certified: accept nothing
                accepted = conf[t] >= threshold
                test_risk = float((~correct[t][accepted]).double().mean()) if accepted.any() else 0
                results[label][0].append(test_risk > risk)
                results[label][1].append(float(accepted.double().mean()))
        for label, (violated, coverage) in results.items():
            lines.append(
                f"| {name} | {label} | {sum(violated) / draws:.1%} | "
                f"{statistics.mean(coverage):.4f} |"
            )
    return lines


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--logits-dir", required=True)
    p.add_argument("--members", nargs=2, required=True)
    p.add_argument("--heldout", required=True)
    p.add_argument("--id", required=True)
    p.add_argument("--target", default="cov@5")
    p.add_argument("--budgets", type=float, nargs="+", default=[1.1, 1.2, 1.3])
    p.add_argument("--draws", type=int, default=300)
    p.add_argument("--resamples", type=int, default=1000, help="paired bootstrap vs the window")
    p.add_argument("--skip-guarantee", action="store_true", help="only the gain table")
    p.add_argument("--delta", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    roles = {args.heldout: "heldout", args.id: "id"}
    data, macs = load_experiment(args.logits_dir, args.members, roles)
    prepared = prepare_experiment(data, roles, macs, "msp")
    print("\n".join(gain_table(prepared, args.target, args.budgets, macs, args.resamples)))
    if args.skip_guarantee:
        return
    held = data[args.heldout]
    seconds = fit_time(prepared, args.target)
    print(
        f"\nbudget_window fit (M = 2, held-out {held.num_samples} x {held.logits[0].shape[1]} "
        f"classes): {seconds:.2f} s (median of 3)\n"
    )
    print("\n".join(guarantee_table(prepared, args.target, args.delta, args.draws, args.seed)))


if __name__ == "__main__":
    main()
