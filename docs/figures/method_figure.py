"""The method figure (docs/concepts/method.md), drawn from a small deterministic run.

Two members' logits on a held-out split and a test set (synthetic and seeded: 10 classes,
members that agree on easy samples and disagree on hard ones, about 85% accurate, so that the
cov@5 threshold lies inside the range of confidences, as on real data). The window policy is
fitted on the held-out split with the public API (``window_cascades.fit_cascade``); the left
panel shows the held-out stage-1 confidences, the operating threshold tau and the window
around it; the right panel what the fitted cascade does with the test set
(``window_cascades.decide``), every figure measured.

    python docs/figures/method_figure.py method.png     # the figure as a file
"""

from __future__ import annotations

import sys

import numpy as np
import torch

import window_cascades as wc
from window_cascades.uncertainty.selective import coverage_at_risk

CLASSES = 10
WIDTH = 0.1
TARGET = "cov@5"


def member_logits(n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Two members' logits on ``n`` samples and the labels: a shared signal whose strength
    varies from sample to sample (easy and hard samples) plus each member's own noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    strength = rng.gamma(2.0, 1.8, n)
    shared = rng.normal(size=(n, CLASSES))
    shared[np.arange(n), labels] += strength
    return [shared + rng.normal(scale=0.9, size=(n, CLASSES)) for _ in range(2)], labels


def fitted_window():
    """The logits, the fitted cascade and the test decisions of every policy drawn."""
    held, held_labels = member_logits(4000, seed=0)
    test, test_labels = member_logits(4000, seed=1)
    logits = wc.Logits(
        {"heldout": held, "test": test},
        roles={"heldout": "heldout", "test": "id"},
        labels={"heldout": held_labels, "test": test_labels},
    )
    fitted = wc.fit_cascade(
        logits, ["single", "window", "ensemble"], target=TARGET, parameters={"width": WIDTH}
    )
    decisions = {p: wc.decide(fitted, test, policy=p) for p in ("single", "window", "ensemble")}
    return held, held_labels, test_labels, fitted, decisions


def draw():
    """The two panels, as a matplotlib figure."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    held, _, test_labels, fitted, decisions = fitted_window()
    stage = fitted.policies["window"].details[0]
    lower, upper = fitted.policies["window"].bounds[0].tolist()
    confidence = torch.softmax(torch.as_tensor(held[0]), dim=1).max(dim=1).values.numpy()

    fig, (left, right) = plt.subplots(1, 2, figsize=(11.5, 4.2), width_ratios=(1.15, 1))
    bins = np.linspace(confidence.min(), 1.0, 61)
    inside = (confidence >= lower) & (confidence <= upper)
    left.hist(confidence[~inside], bins=bins, color="0.6", label="exits after member 1")
    left.hist(confidence[inside], bins=bins, color="C1", label="passed on to member 2")
    left.axvspan(lower, upper, color="C1", alpha=0.15, lw=0)
    left.axvline(stage["tau"], color="C3", lw=2, label=f"tau ({TARGET} on held-out)")
    top = left.get_ylim()[1]
    left.annotate(
        "",
        xy=(lower, 0.9 * top),
        xytext=(upper, 0.9 * top),
        arrowprops={"arrowstyle": "<->", "color": "C1"},
    )
    left.text(
        (lower + upper) / 2,
        0.93 * top,
        f"window: quantiles q ± w\n(q = {stage['q']:.2f}, w = {WIDTH:g})",
        ha="center",
        va="bottom",
        color="C1",
        fontsize=9,
        bbox={"fc": "white", "ec": "none", "alpha": 0.85},
    )
    left.set_ylim(0, 1.12 * top)
    left.set(
        xlabel="stage-1 confidence (maximum softmax probability of member 1)",
        ylabel="held-out samples",
        title="Fitting the window on the held-out split",
    )
    left.legend(loc="upper left", fontsize=8.5, frameon=False)

    window = decisions["window"]
    passed = float((window["exit_stage"] == 2).float().mean())
    labels = torch.as_tensor(test_labels)

    def cov(policy: str) -> float:
        d = decisions[policy]
        return coverage_at_risk(d["confidence"], d["prediction"] == labels, 0.05)[0]

    right.set_xlim(0, 10)
    right.set_ylim(0, 6)
    right.axis("off")
    right.set_title("The cascade on the test set")

    def box(x, y, text, color):
        right.add_patch(
            FancyBboxPatch(
                (x, y), 2.6, 1.1, boxstyle="round,pad=0.08", fc=color, ec="0.3", alpha=0.9
            )
        )
        right.text(x + 1.3, y + 0.55, text, ha="center", va="center", fontsize=9)

    def arrow(a, b, text, color="0.3", offset=(0, 0.25)):
        right.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=14, color=color))
        mid = ((a[0] + b[0]) / 2 + offset[0], (a[1] + b[1]) / 2 + offset[1])
        right.text(*mid, text, ha="center", fontsize=8.5, color=color)

    box(0.1, 4.3, "every sample\n(100%)", "0.92")
    box(3.7, 4.3, "member 1", "0.85")
    box(7.3, 4.3, "exit: member 1's\nprediction", "0.92")
    box(3.7, 1.6, "member 2", "#fdd9b5")
    box(7.3, 1.6, "exit: ensemble of\nmembers 1 and 2", "#fdd9b5")
    arrow((2.75, 4.85), (3.65, 4.85), "")
    arrow((6.35, 4.85), (7.25, 4.85), f"{1 - passed:.0%}", offset=(0, 0.2))
    arrow((5.0, 4.25), (5.0, 2.75), f"{passed:.0%} inside\nthe window", "C1", offset=(1.0, 0))
    arrow((6.35, 2.15), (7.25, 2.15), "")
    cost = 1 + passed
    right.text(
        5.0,
        0.55,
        f"cost {cost:.2f} member evaluations per sample (single 1, ensemble 2)\n"
        f"{TARGET}: single {cov('single'):.3f}, window {cov('window'):.3f}, "
        f"ensemble {cov('ensemble'):.3f}",
        ha="center",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def html() -> str:
    """The figure as HTML, for the page's hidden block to print."""
    from embed import figure_html

    return figure_html(
        draw(),
        alt="Histogram of held-out stage-1 confidences with tau and the window shaded, and "
        "the flow of test samples: most exit after member 1, those in the window go on to "
        "member 2",
        caption="Left: member 1's confidences on the held-out split; tau reaches cov@5 "
        "there, and the window is the band of held-out quantiles q - w to q + w around it. "
        "Right: the fitted cascade on a test set, with the measured share passed on, the "
        "cost and the cov@5 of the single model, the window cascade and the ensemble. "
        "Drawn when this site is built from seeded synthetic logits of two members "
        "(<code>docs/figures/method_figure.py</code>).",
    )


if __name__ == "__main__":
    if len(sys.argv) > 1:
        draw().savefig(sys.argv[1], dpi=110, bbox_inches="tight")
    else:
        print(html())
