"""``report.md``: what a run found, on one page (written beside ``metrics.csv``).

The key table of every dataset (cost and the lead metrics per policy, with the bootstrap
interval beside each value when one was computed; over several member orders, the mean and
spread across the orders instead, each order's values staying in ``metrics.csv``), the plots
by relative path, the fitted policies (one line each), and the paired differences that
matter: random quantities only, one direction per pair, Benjamini-Hochberg corrected, at most
[`MAX_DIFFERENCES`][] lines (the full list is ``deltas.csv``).
"""

from __future__ import annotations

import json

from window_cascades.artifacts.cost_report import cost_to_target_lines, headroom_lines
from window_cascades.artifacts.report_cells import interval_cell
from window_cascades.artifacts.result_labels import lead_columns, policy_labels, run_key, same_as
from window_cascades.cascade.cost_to_target import is_cost_to_target
from window_cascades.cascade.orders import spread_across_orders
from window_cascades.cascade.policy_registry import reference_policies
from window_cascades.cascade.significance import FDR

MAX_DIFFERENCES = 20
"""Lines of significant differences in the report (every one is in ``deltas.csv``)."""
REPORT_ONLY_COLUMNS = ("fail_auroc",)  # shown in the report's tables, not the printed one


def _columns(values: dict, role: str) -> list[str]:
    """The printed table's columns of a dataset, then the report-only ones it has."""
    return lead_columns(values, role) + [c for c in REPORT_ONLY_COLUMNS if c in values]


def _table_head(title: str, cols: list[str]) -> list[str]:
    """A dataset table's heading and Markdown header (policy, cost, then ``cols``)."""
    return [
        f"### {title}",
        "",
        "| policy | cost | " + " | ".join(cols) + " |",
        "| --- " * (len(cols) + 2) + "|",
    ]


def _dataset_tables(rows: list[dict], unit: float) -> list[str]:
    labels, identical = policy_labels(rows), same_as(rows)
    by: dict = {}
    for r in rows:
        by.setdefault(r["dataset"], {}).setdefault(labels[run_key(r)], {})[r["metric"]] = r
    roles = {r["dataset"]: r["role"] for r in rows}
    lines = []
    for dataset, per_policy in by.items():
        role = roles[dataset]
        cols = _columns(next(iter(per_policy.values())), role)
        lines += _table_head(f"{dataset} ({role})", cols)
        for label, metrics in per_policy.items():
            macs = metrics.get("expected_macs")
            cost = interval_cell(macs, unit)
            cells = [interval_cell(metrics.get(c)) for c in cols]
            lines.append(
                f"| {label}{identical.get(label, '')} | {cost} | " + " | ".join(cells) + " |"
            )
        lines.append("")
    return lines


def _order_tables(rows: list[dict], unit: float) -> list[str]:
    """Mean +- sd across member orders of the lead metrics, per dataset and policy."""
    spread = spread_across_orders(rows)
    orders = sorted({r["members"] for r in rows})
    lines = [
        f"Over {len(orders)} member orders ({', '.join(orders)}): mean +- sample standard "
        "deviation across orders (each order's rows are in the tables above; orders.csv has "
        "min and max).",
        "",
    ]
    by: dict = {}
    several_scores = len({s["score"] for s in spread}) > 1
    for s in spread:
        parts = [s["score"]] if several_scores else []
        parts += [s["setting"]] if s["setting"] else []
        label = s["policy"] + (f"[{','.join(parts)}]" if parts else "")
        by.setdefault((s["dataset"], s["role"]), {}).setdefault(label, {})[s["metric"]] = s
    for (dataset, role), per_policy in by.items():
        cols = _columns(next(iter(per_policy.values())), role)
        lines += _table_head(f"{dataset} ({role}), across orders", cols)
        for label, metrics in per_policy.items():
            macs = metrics.get("expected_macs")
            cost = "-" if macs is None else f"{macs['mean'] / unit:.3f} +- {macs['sd'] / unit:.3f}"
            cells = " | ".join(
                f"{metrics[c]['mean']:.4f} +- {metrics[c]['sd']:.4f}" if c in metrics else "-"
                for c in cols
            )
            lines.append(f"| {label} | {cost} | {cells} |")
        lines.append("")
    return lines


def _delta_line(d: dict, label: str) -> str:
    p = f", p = {d['p_value']:.3g}" if d.get("p_value") is not None else ""
    return (
        f"- {d['dataset']}: {label} vs {d['baseline']}, {d['metric']} {d['delta']:+.4f} "
        f"[{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]{p}"
    )


def _differences(rows: list[dict], deltas: list[dict]) -> list[str]:
    """The differences that matter: the Benjamini-Hochberg discoveries of the tested family
    (random quantities, one direction per pair), smallest p-value first (then the largest
    effect relative to its interval), at most [`MAX_DIFFERENCES`][] lines."""
    labels = policy_labels(rows)
    family = [d for d in deltas if d.get("p_value") is not None]
    found = [d for d in family if d.get("significant_bh")]
    found.sort(
        key=lambda d: (d["p_value"], -abs(d["delta"]) / max(d["ci_high"] - d["ci_low"], 1e-12))
    )
    low, high = reference_policies()
    lines = [
        f"Paired differences against `{low}` and `{high}` on the same resamples, for the "
        "quantities that vary with the test sample (not cost or exit fractions, which the "
        "fitted policy fixes), one direction per pair of policies: two-sided p-values from "
        "the bootstrap standard error (normal approximation), Benjamini-Hochberg correction "
        f"for multiple comparisons at a {FDR:.0%} false discovery rate over the {len(family)} "
        "tested differences.",
        "",
    ]
    shown = found[:MAX_DIFFERENCES]
    lines += [_delta_line(d, labels[run_key(d)]) for d in shown] or [
        "None: no tested difference is significant after the correction."
    ]
    more = f"; the {len(shown)} smallest p-values shown" if len(found) > len(shown) else ""
    lines += [
        "",
        f"({len(found)} of {len(family)} tested differences significant{more}; all "
        f"{len(deltas)} paired differences in deltas.csv, columns p_value and significant_bh.)",
        "",
    ]
    return lines


def report_text(
    rows: list[dict],
    summary: dict,
    plots: list[str],
    deltas: list[dict] | None = None,
) -> str:
    """The Markdown text of ``report.md``.

    Args:
        rows: the tidy metric rows (with ``ci_low``/``ci_high`` when bootstrapped).
        summary: the run's summary (members, fitted policies, score, target, bootstrap, ...).
        plots: file names of the plots beside the report.
        deltas: the paired differences (``deltas.csv``), or None without a bootstrap.
    """
    members = summary.get("members", [])
    unit = float(members[0]["macs"]) if members else 1.0
    boot = summary.get("bootstrap")
    lines = ["# Cascade evaluation report", ""]
    facts = {k: summary.get(k) for k in ("score", "target", "definitions", "cost_unit")}
    facts = {k: v for k, v in facts.items() if v is not None}
    lines.append(", ".join(f"{k}: {v}" for k, v in facts.items()) or "")
    lines.append(
        "members: "
        + ", ".join(
            f"{m.get('member') or m.get('checkpoint')} ({float(m['macs']):.4g} MACs)"
            for m in members
        )
    )
    lines.append("")
    if boot:
        lines.append(
            f"Intervals: 95% percentile bootstrap over {boot['resamples']} resamples of each "
            f"test set (seed {boot['seed']}); the policies stay as fitted on the held-out split, "
            "so they are intervals over the test sample, not over the calibration."
        )
    else:
        lines.append("No intervals: run with a bootstrap (--bootstrap N) to get them.")
    lines += ["", "Cost: expected MACs per sample in units of the first member's MACs.", ""]
    key_rows = [r for r in rows if not is_cost_to_target(r["policy"])]  # their own section
    if any(r.get("members") for r in rows):  # one key table: across the orders
        lines += ["## Across member orders", ""] + _order_tables(key_rows, unit)
        lines += ["Each order's values, with their intervals: metrics.csv (column members).", ""]
    else:
        lines += ["## Results", ""] + _dataset_tables(key_rows, unit)
    costs = cost_to_target_lines(rows, summary, unit)
    if costs:
        lines += ["## Cost to reach the ensemble's gain", ""] + costs
    headroom = headroom_lines(summary)
    if headroom:
        lines += ["## Headroom", ""] + headroom
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    if deltas is not None:
        lines += ["## Differences that matter", ""] + _differences(rows, deltas)
    lines += ["## Fitted policies", "", "```"]
    lines += [
        f'"{label}": {json.dumps(value)}' for label, value in summary.get("policies", {}).items()
    ]
    lines += ["```", ""]
    return "\n".join(lines)
