"""Would a richer deferral rule than an interval of stage-1 confidence buy more at a budget?

    python benchmarks/budget/benchmark_deferral_rules.py --logits-dir DIR --members m0 m1 \\
        --heldout NAME --id NAME [--risk 0.05] [--budgets 1.1 1.2 1.3]

For two members of equal cost, the budget_window search (``window_cascades.cascade.budget_window``)
is run on other per-sample deferral scores of member 1 than its MSP: MSP + lambda x top-2 margin
(lambda in -1 .. 2), the margin alone, negative entropy, MSP - 0.1 x entropy (cf. Jitkrittum et
al., NeurIPS 2023, "When does confidence-based cascade deferral suffice?"). Each rule's interval
is chosen on held-out at the budget and scored on test (cov@R of the cascade's output, MSP
being the output's confidence); the rule with the best held-out value is the one a user would
pick. Prints a markdown table; nothing is asserted. An experiment: the rules are not policies.
"""

from __future__ import annotations

import argparse

import torch

from window_cascades.artifacts.experiment_logits import load_experiment
from window_cascades.cascade.budget_window import best_interval
from window_cascades.uncertainty.selective import coverage_at_risk


def member_features(data, name: str) -> dict[str, torch.Tensor]:
    first, second = (z.float().softmax(-1) for z in data[name].logits)
    ensemble = (first + second) / 2
    targets = data[name].targets
    top2 = first.topk(2, -1).values.double()
    entropy = -(first * first.clamp_min(1e-12).log()).sum(-1).double()
    return {
        "msp": top2[:, 0],
        "margin": top2[:, 0] - top2[:, 1],
        "entropy": entropy,
        "ok1": first.argmax(-1) == targets,
        "msp_ens": ensemble.max(-1).values.double(),
        "ok_ens": ensemble.argmax(-1) == targets,
    }


def _msp_plus_margin(lam: float):
    return lambda f: f["msp"] + lam * f["margin"]


RULES = {
    "msp (budget_window)": lambda f: f["msp"],
    **{f"msp {lam:+g} x margin": _msp_plus_margin(lam) for lam in (-1, -0.5, 0.5, 1, 2)},
    "margin": lambda f: f["margin"],
    "-entropy": lambda f: -f["entropy"],
    "msp - 0.1 x entropy": lambda f: f["msp"] - 0.1 * f["entropy"],
}


def cov(conf: torch.Tensor, correct: torch.Tensor, risk: float) -> float:
    try:
        return coverage_at_risk(conf, correct, risk)[0]
    except ValueError:
        return 0.0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--logits-dir", required=True)
    p.add_argument("--members", nargs=2, required=True)
    p.add_argument("--heldout", required=True)
    p.add_argument("--id", required=True)
    p.add_argument("--risk", type=float, default=0.05)
    p.add_argument("--budgets", type=float, nargs="+", default=[1.1, 1.2, 1.3])
    args = p.parse_args(argv)
    data, _ = load_experiment(
        args.logits_dir, args.members, {args.heldout: "heldout", args.id: "id"}
    )
    held, test = member_features(data, args.heldout), member_features(data, args.id)
    single = cov(test["msp"], test["ok1"], args.risk)
    ensemble = cov(test["msp_ens"], test["ok_ens"], args.risk)
    print(f"test cov@{args.risk * 100:g}: single {single:.4f}, ensemble {ensemble:.4f}\n")
    print("| budget | deferral rule | held-out | test | gain kept (test) |")
    print("| --- | --- | --- | --- | --- |")
    everyone = torch.ones_like(held["msp"], dtype=torch.bool)
    for budget in args.budgets:
        chosen = None
        for name, rule in RULES.items():
            fit = best_interval(
                rule(held),
                everyone,
                held["msp"],
                ~held["ok1"],
                held["msp_ens"],
                ~held["ok_ens"],
                budget - 1,
                ("cov", args.risk),
            )
            score = rule(test)
            passed = (score >= fit["lower"]) & (score <= fit["upper"])
            value = cov(
                torch.where(passed, test["msp_ens"], test["msp"]),
                torch.where(passed, test["ok_ens"], test["ok1"]),
                args.risk,
            )
            kept = (value - single) / (ensemble - single)
            print(f"| {budget:g} | {name} | {fit['value']:.4f} | {value:.4f} | {kept:.1%} |")
            if chosen is None or fit["value"] > chosen[0]:
                chosen = (fit["value"], name, kept)
        print(f"| {budget:g} | **chosen on held-out: {chosen[1]}** | | | {chosen[2]:.1%} |")


if __name__ == "__main__":
    main()
