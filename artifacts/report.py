"""``report.md``: what a run found, on one page (written beside ``metrics.csv``).

The key table of every dataset (cost and the lead metrics per policy, with the bootstrap
interval under each value when one was computed), the plots by relative path, the fitted
policies, and one line per significant paired difference against ``single`` and ``ensemble``.
"""

from __future__ import annotations

import json

from artifacts.result_labels import lead_columns, policy_labels, run_key, same_as
from cascade.orders import spread_across_orders

SIGNIFICANT_METRICS_FIRST = ("expected_macs",)


def _cell(row: dict | None) -> str:
    if row is None:
        return "-"
    text = f"{row['value']:.4f}"
    if row.get("ci_low") is not None:
        text += f" [{row['ci_low']:.4f}, {row['ci_high']:.4f}]"
    return text


def _in_units(row: dict, unit: float) -> dict:
    """A cost row with its value and interval divided by ``unit`` (first-member MACs)."""
    return {k: (None if row.get(k) is None else row[k] / unit)
            for k in ("value", "ci_low", "ci_high")}  # fmt: skip


def _table_head(title: str, cols: list[str]) -> list[str]:
    """A dataset table's heading and Markdown header (policy, cost, then ``cols``)."""
    return [f"### {title}", "", "| policy | cost | " + " | ".join(cols) + " |",
            "| --- " * (len(cols) + 2) + "|"]  # fmt: skip


def _dataset_tables(rows: list[dict], unit: float) -> list[str]:
    labels, identical = policy_labels(rows), same_as(rows)
    by: dict = {}
    for r in rows:
        by.setdefault(r["dataset"], {}).setdefault(labels[run_key(r)], {})[r["metric"]] = r
    roles = {r["dataset"]: r["role"] for r in rows}
    lines = []
    for dataset, per_policy in by.items():
        role = roles[dataset]
        cols = lead_columns(next(iter(per_policy.values())), role)
        lines += _table_head(f"{dataset} ({role})", cols)
        for label, metrics in per_policy.items():
            macs = metrics.get("expected_macs")
            cost = "-" if macs is None else _cell(_in_units(macs, unit))
            cells = [_cell(metrics.get(c)) for c in cols]
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
        cols = lead_columns(next(iter(per_policy.values())), role)
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


def _significant_lines(rows: list[dict], deltas: list[dict], unit: float) -> list[str]:
    labels = policy_labels(rows)
    lines = []
    for d in deltas:
        if not d["significant"]:
            continue
        label = labels[run_key(d)]
        scale = unit if d["metric"] == "expected_macs" else 1.0
        name = "cost" if d["metric"] == "expected_macs" else d["metric"]
        lines.append(
            f"- {d['dataset']}: {label} vs {d['baseline']}, {name} {d['delta'] / scale:+.4f} "
            f"[{d['ci_low'] / scale:+.4f}, {d['ci_high'] / scale:+.4f}]"
        )
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
        "members: " + ", ".join(
            f"{m.get('member') or m.get('checkpoint')} ({float(m['macs']):.4g} MACs)"
            for m in members
        )
    )  # fmt: skip
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
    lines += ["## Results", ""] + _dataset_tables(rows, unit)
    if any(r.get("members") for r in rows):
        lines += ["## Across member orders", ""] + _order_tables(rows, unit)
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    if deltas is not None:
        sig = _significant_lines(rows, deltas, unit)
        lines += ["## Significant differences (interval excludes 0)", ""]
        lines += sig or ["None: every paired difference's interval contains 0."]
        lines += ["", f"({len(sig)} of {len(deltas)} paired differences; all in deltas.csv)", ""]
    lines += ["## Fitted policies", "", "```json"]
    lines += [json.dumps(summary.get("policies", {}), indent=1), "```", ""]
    return "\n".join(lines)
