"""Figures of the notMNIST benchmark drawn from its committed per-set summaries
(``benchmarks/notmnist/shift_summary.csv``, ``ood_summary.csv``) when the site is built: the
landing page's headline and the benchmark page's figures under shift and out of distribution.

Every point is the mean over a model's member orders, every bar or band the mean 95% bootstrap
interval over the test sample (``benchmarks/notmnist/set_summaries.py``).

    python docs/figures/notmnist_figures.py OUT_FOLDER   # the figures as files
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "notmnist"
REPRODUCE = "python benchmarks/notmnist/benchmark_notmnist.py --out benchmarks/notmnist"
WINDOW = ("window", "cov@2,w=0.1", "msp")
SINGLE = ("single", "", "msp")
ENSEMBLE = ("ensemble", "", "msp")
CORRUPTIONS = ("gaussian_noise", "gaussian_blur", "contrast")


def read(name: str) -> list[dict]:
    """The rows of a committed summary file of ``benchmarks/notmnist/``."""
    with (RESULTS / name).open() as f:
        return list(csv.DictReader(f))


def _pick(rows, model: str, family: tuple[str, str, str], dataset: str) -> dict | None:
    for r in rows:
        if (r["model"], r["policy"], r["setting"], r["score"], r["dataset"]) == (
            model,
            *family,
            dataset,
        ):
            return r
    return None


def _triple(row: dict, metric: str) -> tuple[float, float, float]:
    return tuple(float(row[metric + s]) for s in ("", "_low", "_high"))


def sizes(rows) -> list[str]:
    """The single-architecture models, cheapest first."""
    single = [r for r in rows if r["role"] == "id" and (r["policy"], r["score"]) == SINGLE[::2]]
    single = [r for r in single if ">" not in r["model"]]
    return [r["model"] for r in sorted(single, key=lambda r: float(r["expected_macs"]))]


def headline() -> dict:
    """The landing page's result: the window cascade of two members of the smallest size
    against the single model of the next size, on the ID test set (cov@2, cost)."""
    rows = read("shift_summary.csv")
    small, larger = sizes(rows)[:2]
    test = next(r["dataset"] for r in rows if r["role"] == "id")
    window = _pick(rows, small, WINDOW, test)
    return {
        "small": small,
        "larger": larger,
        "orders": window["orders"],
        "window": window,
        "ensemble": _pick(rows, small, ENSEMBLE, test),
        "single_small": _pick(rows, small, SINGLE, test),
        "single_larger": _pick(rows, larger, SINGLE, test),
    }


def headline_markdown() -> str:
    """The headline in words, every figure with its interval, and the command."""
    h = headline()

    def cov(row) -> str:
        value, low, high = _triple(row, "cov@2")
        return f"{value:.3f} [{low:.3f}, {high:.3f}]"

    cost = {k: float(h[k]["expected_macs"]) for k in ("window", "ensemble", "single_larger")}
    share = float(h["window"]["exit_frac@2"])
    window, larger = _triple(h["window"], "cov@2"), _triple(h["single_larger"], "cov@2")
    overlap = window[1] <= larger[2] and larger[1] <= window[2]
    compared = "higher" if window[0] > larger[0] else "not higher"
    return (
        f"On notMNIST (real images, 3,000 test glyphs), a window cascade of two {h['small']} "
        f"members reaches a coverage at 2% selective risk (cov@2) of **{cov(h['window'])}** "
        f"at **{cost['window']:.1f} MMACs** per sample: {share:.0%} of the test images go on "
        f"to the second member, and the full ensemble reaches {cov(h['ensemble'])} at "
        f"{cost['ensemble']:.1f} MMACs. Scaling up instead, a single {h['larger']} reaches "
        f"{cov(h['single_larger'])} at {cost['single_larger']:.1f} MMACs (one {h['small']}: "
        f"{cov(h['single_small'])}): the cascade's cov@2 is {compared} at "
        f"{cost['window'] / cost['single_larger']:.0%} of the larger model's cost"
        + (
            ", though the intervals overlap (on 3,000 test images the difference is within the "
            "test-sample uncertainty). "
            if overlap
            else ", and the intervals do not overlap. "
        )
        + f"Means over {h['orders']} member orders with their 95% bootstrap intervals over the "
        f"test set. Reproduce: `{REPRODUCE}`."
    )


def headline_figure():
    """Cost against cov@2 on the ID test set: single models, ensembles of two, window
    cascades of two members of one size and of a small then a larger member."""
    import matplotlib.pyplot as plt

    rows = read("shift_summary.csv")
    test = next(r["dataset"] for r in rows if r["role"] == "id")
    ordered = sizes(rows)
    pairs = [m for m in dict.fromkeys(r["model"] for r in rows) if m.startswith(ordered[0] + ">")]
    families = {
        "single model": (SINGLE, ordered),
        "ensemble of 2": (ENSEMBLE, ordered),
        "window cascade of 2 (w = 0.1)": (WINDOW, ordered),
        f"window cascade, {ordered[0]} then a larger model": (WINDOW, pairs),
    }
    fig, ax = plt.subplots(figsize=(7.2, 4.3))
    for k, (label, (family, models)) in enumerate(families.items()):
        points = []
        for model in models:
            row = _pick(rows, model, family, test)
            if row is not None:
                points.append((float(row["expected_macs"]), *_triple(row, "cov@2"), model))
        points.sort()
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        errors = [[p[1] - p[2] for p in points], [p[3] - p[1] for p in points]]
        ax.errorbar(
            xs,
            ys,
            yerr=errors,
            marker="os^D"[k],
            linestyle=["-", "--", "-", ":"][k],
            color=f"C{k}",
            capsize=3,
            label=label,
            markerfacecolor="none" if k != 2 else f"C{k}",
        )
        if k == 0:
            for x, y, *_, model in points:
                ax.annotate(model, (x, y), textcoords="offset points", xytext=(6, -12), fontsize=8)
    ax.set_xscale("log")
    ax.set(
        xlabel="expected MMACs per sample (log scale)",
        ylabel="cov@2 on the notMNIST test set",
        title="Cascaded ensembles against scaling up a single model",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def shift_figure(model: str | None = None):
    """Per corruption, cov@2 against severity (0: the ID test set) for the single model, the
    ensemble, the window cascade of ``model`` (default: the smallest size) and the single
    model of the next size; below, the window's cost per set."""
    import matplotlib.pyplot as plt

    rows = read("shift_summary.csv")
    ordered = sizes(rows)
    model = model or ordered[0]
    larger = ordered[ordered.index(model) + 1]
    test = next(r["dataset"] for r in rows if r["role"] == "id")
    lines = {
        f"single {model}": (model, SINGLE),
        f"ensemble of 2 {model}": (model, ENSEMBLE),
        f"window cascade of 2 {model}": (model, WINDOW),
        f"single {larger}": (larger, SINGLE),
    }
    fig, axes = plt.subplots(
        2, len(CORRUPTIONS), figsize=(12, 6.2), sharex=True, height_ratios=(2, 1)
    )
    for c, corruption in enumerate(CORRUPTIONS):
        datasets = [test] + [f"{corruption}_s{s}" for s in range(1, 6)]
        for k, (label, (name, family)) in enumerate(lines.items()):
            found = [_pick(rows, name, family, d) for d in datasets]
            values = [_triple(r, "cov@2") for r in found]
            severity = range(len(datasets))
            axes[0, c].plot(
                severity,
                [v[0] for v in values],
                "os^D"[k] + "-",
                color=f"C{k}",
                label=label,
                markerfacecolor="none",
            )  # fmt: skip - one call per line
            axes[0, c].fill_between(
                severity, [v[1] for v in values], [v[2] for v in values], color=f"C{k}", alpha=0.12
            )
            if family == WINDOW:
                share = [float(r["exit_frac@2"]) for r in found]
                cost = [float(r["expected_macs"]) for r in found]
                axes[1, c].bar(severity, share, color=f"C{k}", alpha=0.8)
                for s, (p, m) in enumerate(zip(share, cost, strict=True)):
                    axes[1, c].text(s, p + 0.02, f"{m:.0f}", ha="center", fontsize=7.5)
        axes[0, c].set_title(corruption.replace("_", " "))
        axes[0, c].grid(alpha=0.3)
        axes[1, c].set_ylim(0, 1.05)
        axes[1, c].set_xlabel("severity (0: the ID test set)")
    axes[0, 0].set_ylabel("cov@2")
    axes[1, 0].set_ylabel("share passed on\n(label: MMACs)")
    axes[0, 0].legend(fontsize=7.5, loc="lower left")
    fig.suptitle(
        f"Under shift: the window cascade of two {model} members (calibrated for cov@2 on the "
        "ID held-out split)",
        fontsize=11,
    )
    fig.tight_layout()
    return fig


def ood_figure(model: str | None = None):
    """Per OOD set, fpr@95 (energy score) of the single model, the ensemble and the fpr@95
    window cascade for every size; the window's share passed on above each bar."""
    import matplotlib.pyplot as plt

    rows = read("ood_summary.csv")
    shift_rows = read("shift_summary.csv")
    ordered = sizes(shift_rows)
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    families = {
        "single (energy)": ("single", "", "energy"),
        "ensemble of 2 (energy)": ("ensemble", "", "energy"),
        "window cascade [fpr@95] (energy)": ("window", "fpr@95,w=0.1", "energy"),
    }
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.6 * len(datasets), 3.8), squeeze=False)
    width = 0.8 / len(families)
    for d, dataset in enumerate(datasets):
        ax = axes[0, d]
        for k, (label, family) in enumerate(families.items()):
            found = [_pick(rows, m, family, dataset) for m in ordered]
            values = [_triple(r, "fpr@95") for r in found]
            xs = [i + k * width for i in range(len(ordered))]
            ax.bar(
                xs,
                [v[0] for v in values],
                width * 0.95,
                yerr=[[v[0] - v[1] for v in values], [v[2] - v[0] for v in values]],
                capsize=2,
                color=f"C{k}",
                label=label,
            )
            if family[0] == "window":
                for x, r, v in zip(xs, found, values, strict=True):
                    share = float(r["exit_frac@2"])
                    ax.text(x, v[2] + 0.02, f"{share:.0%}", ha="center", fontsize=7)
        ax.set_xticks([i + width for i in range(len(ordered))], ordered)
        ax.set(title=f"{dataset} (OOD)", ylabel="fpr@95 (lower is better)", ylim=(0, 1.1))
        ax.grid(alpha=0.3, axis="y")
    axes[0, 0].legend(fontsize=7.5, loc="upper left")
    fig.tight_layout()
    return fig


def figure(name: str) -> str:
    """One figure as HTML, for a page's hidden block to print: ``headline``, ``shift`` or
    ``ood``."""
    from embed import figure_html

    draw, alt, caption = {
        "headline": (
            headline_figure,
            "Expected cost against cov@2 on notMNIST: single models of four sizes, ensembles "
            "of two and window cascades",
            "Cost against cov@2 on the notMNIST test set, with 95% bootstrap intervals. Drawn "
            "when this site is built from <code>benchmarks/notmnist/shift_summary.csv</code>.",
        ),
        "shift": (
            shift_figure,
            "cov@2 against corruption severity for the single model, the ensemble, the window "
            "cascade and the next larger single model, with the window's share passed on",
            "Top: cov@2 per corruption and severity (bands: 95% bootstrap intervals). Bottom: "
            "the share of each set the window cascade passes on to member 2, labelled with its "
            "cost in MMACs per sample. Drawn when this site is built from "
            "<code>benchmarks/notmnist/shift_summary.csv</code>.",
        ),
        "ood": (
            ood_figure,
            "fpr@95 on each OOD set for the single model, the ensemble and the fpr@95 window "
            "cascade of every size",
            "fpr@95 (energy score) on each OOD set against the ID test set, with 95% bootstrap "
            "intervals; above each window bar, the share of the OOD set it passes on to member "
            "2. Drawn when this site is built from "
            "<code>benchmarks/notmnist/ood_summary.csv</code>.",
        ),
    }[name]
    return figure_html(draw(), alt=alt, caption=caption)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, draw in (("headline", headline_figure), ("shift", shift_figure), ("ood", ood_figure)):
        draw().savefig(out / f"{name}.png", dpi=110, bbox_inches="tight")
    print(headline_markdown())
