"""The quick start's results on Getting started (docs/getting-started.md), computed when the
site is built.

``examples/quickstart_logits/`` holds the cached logits of one run of ``bash
scripts/quickstart.sh`` (two resnet10t members on every dataset of the quick start; 350 KB).
The offline evaluator (``window-cascades evaluate-logits``) evaluates them with the quick
start's own settings, read from ``configs/quickstart/`` (policies, target, width, pass fraction,
reported risks and coverages, bootstrap resamples). On cached logits it makes the same numbers
as the quick start's evaluation step, so the table and plots are the quick start's:
``tradeoff.png`` and ``risk_coverage.png`` exactly as the run writes them, and the exit
fractions per dataset from its ``metrics.csv``. About 5 s on 2 CPU cores.

    python docs/figures/quickstart_results.py OUT    # the results folder, into OUT
"""

from __future__ import annotations

import csv
import sys
import tempfile
from pathlib import Path

import yaml

from window_cascades.commands import offline, readme_table
from window_cascades.datamodules.specs import parse_dataset_specs

ROOT = Path(__file__).resolve().parents[2]
LOGITS = ROOT / "examples" / "quickstart_logits"
CONFIGS = ROOT / "configs" / "quickstart"


def evaluate(out: Path) -> Path:
    """Run the offline evaluator on the committed logits with the quick start's settings;
    returns the results folder (``out``)."""
    cascade = yaml.safe_load((CONFIGS / "cascade.yaml").read_text())
    data = yaml.safe_load((CONFIGS / "data.yaml").read_text())
    specs = parse_dataset_specs(data["init_args"]["datasets"])
    by_role = {role: [s.name for s in specs if s.role == role] for role in ("shift", "ood")}
    model, calibration = cascade["model"], cascade["calibration"]
    argv = [
        "--logits-dir",
        str(LOGITS),
        "--members",
        *sorted(p.name for p in LOGITS.iterdir() if p.is_dir()),
        "--heldout",
        next(s.name for s in specs if s.role == "heldout"),
        "--id",
        next(s.name for s in specs if s.role == "id"),
        "--shift",
        *by_role["shift"],
        "--ood",
        *by_role["ood"],
        "--policies",
        ",".join(model["policies"]),
        "--score",
        model["score"],
        "--target",
        calibration["target"],
        "--width",
        str(calibration["width"]),
        "--pass-fraction",
        str(calibration["pass_fraction"]),
        "--risks",
        *map(str, model["risks"]),
        "--coverages",
        *map(str, model["coverages"]),
        "--bootstrap",
        str(model["bootstrap"]),
        "--gain-shares",
        "--no-headroom",
        "--quiet",
        "--no-progress",
        "--out",
        str(out),
    ]  # fmt: skip - one option with its values per line, as on a command line
    if offline.main(argv) != 0:
        raise RuntimeError(f"the offline evaluator failed on {LOGITS}")
    return out


def table(results: Path) -> str:
    """The printed results table of the datasets the README shows, as a code block."""
    datasets, _ = readme_table.find_table((ROOT / "README.md").read_text())
    return "```\n" + readme_table.render_table(results, datasets).rstrip("\n") + "\n```"


def exit_fraction_figure(results: Path):
    """Per dataset, the share of samples passed on to member 2 under each policy that chooses
    (not ``single``, which passes none, nor ``ensemble``, which passes all), with 95%
    intervals."""
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader((results / "metrics.csv").open()))
    passed = [
        r
        for r in rows
        if r["metric"] == "exit_frac@2" and r["policy"] not in ("single", "ensemble")
    ]
    datasets = list(dict.fromkeys(r["dataset"] for r in passed if r["role"] != "heldout"))
    policies = list(dict.fromkeys(r["policy"] for r in passed))
    role = {r["dataset"]: r["role"] for r in rows}
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(datasets) * len(policies) / 2 + 1.2))
    height = 0.8 / len(policies)
    for k, policy in enumerate(policies):
        values = {r["dataset"]: r for r in passed if r["policy"] == policy}
        ys = [i + k * height for i in range(len(datasets))]
        shares = [float(values[d]["value"]) for d in datasets]
        errors = [
            [s - float(values[d]["ci_low"] or s) for s, d in zip(shares, datasets, strict=True)],
            [float(values[d]["ci_high"] or s) - s for s, d in zip(shares, datasets, strict=True)],
        ]
        ax.barh(ys, shares, height * 0.9, xerr=errors, capsize=2, label=policy, color=f"C{k}")
        for y, s, up in zip(ys, shares, errors[1], strict=True):
            ax.text(s + up + 0.015, y, f"{s:.0%}", va="center", fontsize=8)
    ax.set_yticks(
        [i + height * (len(policies) - 1) / 2 for i in range(len(datasets))],
        [f"{d} ({role[d]})" for d in datasets],
    )
    ax.invert_yaxis()
    ax.set_xlim(0, 1.05)
    ax.set_xlabel("share of samples passed on to member 2 (the rest exit after member 1)")
    ax.set_title("Where samples exit, per dataset")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def evaluate_here() -> Path:
    """Evaluate into a new temporary folder; returns the results folder (the page's first
    hidden block, whose later blocks draw from it)."""
    return evaluate(Path(tempfile.mkdtemp(prefix="quickstart-results-")) / "results")


if __name__ == "__main__":
    folder = evaluate(Path(sys.argv[1]))
    print(table(folder))
    exit_fraction_figure(folder).savefig(folder / "exit_fractions.png", dpi=110)
