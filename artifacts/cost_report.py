"""The report's "cost to reach the ensemble's gain" section
(``window_cascades.cascade.cost_to_target``).

For each policy family with a cost knob and each asked share of the ensemble's gain: the
setting chosen on the held-out split (the cheapest there that keeps the share), its held-out
cost and share, and what it delivers on the ID test set (cost and the target's metric with their
bootstrap intervals when computed, and the share of the test gain it keeps).
"""

from __future__ import annotations

from window_cascades.artifacts.report_cells import interval_cell
from window_cascades.cascade.policy_registry import FIRST_MEMBER, FULL_ENSEMBLE, reference_policy


def cost_to_target_lines(rows: list[dict], summary: dict, unit: float) -> list[str]:
    """The section's Markdown lines ([] when the run fitted no cost-to-target setting).

    Args:
        rows: the run's metric rows.
        summary: the run's summary (its ``cost_to_target`` records and ``target``).
        unit: the first member's MACs (costs are shown in its units).
    """
    records = summary.get("cost_to_target") or []
    if not records:
        return []
    first = (records[0]["score"], records[0]["members"])  # one score and order on the page
    shown = [r for r in records if (r["score"], r["members"]) == first]
    target = summary.get("target")
    id_name = next((r["dataset"] for r in rows if r["role"] == "id"), None)
    index = {
        (r["policy"], r["setting"], r["metric"]): r
        for r in rows
        if r["dataset"] == id_name and (r["score"], r.get("members") or "") == first
    }

    def value(policy: str, setting: str, metric: str) -> dict | None:
        return index.get((policy, setting, metric))

    low, high = reference_policy(FIRST_MEMBER), reference_policy(FULL_ENSEMBLE)
    single, full = value(low, "", target), value(high, "", target)
    gain = None if single is None or full is None else full["value"] - single["value"]
    lines = [
        f"The cheapest setting of each policy family that keeps a share of the ensemble's "
        f"{target} gain over member 1 on the held-out split, and what it delivers on the ID "
        f"test set ({id_name}). Share = (policy - {low}) / ({high} - {low}) of {target}; "
        "cost in member-1 units.",
        "",
        f"| policy | share asked | setting | held-out cost | held-out share | test cost | "
        f"test {target} | test share |",
        "| --- " * 8 + "|",
    ]
    for r in shown:
        asked = f"{r['share']:.0%}"
        if r["setting"] is None:
            lines.append(f"| {r['policy']} | {asked} | not reached on held-out |" + " - |" * 5)
            continue
        cost = interval_cell(value(r["name"], r["setting"], "expected_macs"), unit, 3)
        metric = value(r["name"], r["setting"], target)
        share = "-"
        if metric is not None and gain:
            share = f"{(metric['value'] - single['value']) / gain:.0%}"
        lines.append(
            f"| {r['policy']} | {asked} | {r['setting']} | {r['heldout_cost']:.3f} | "
            f"{r['heldout_share']:.0%} | {cost} | {interval_cell(metric)} | {share} |"
        )
    if len(shown) < len(records):
        lines += ["", "Other scores and member orders: summary.json (cost_to_target)."]
    return lines + [""]


def headroom_lines(summary: dict) -> list[str]:
    """The report's headroom lines: beside each costed policy's held-out share of the gain,
    what a deferral rule learned on member 1's logits reaches at the same held-out cost
    (cross-fitted), and the outcome-aware ceiling ([] when not computed)."""
    records = summary.get("headroom") or []
    if not records:
        return []
    first = (records[0]["score"], records[0]["members"])
    shown = [r for r in records if (r["score"], r["members"]) == first]

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.0%}"

    lines = [
        "Could a better rule that sees only member 1 pay? At each policy's held-out cost: the "
        "policy's share of the ensemble's held-out gain (fitted and scored on held-out), a "
        "deferral rule learned on member 1's logits (top-1 probability, margin, entropy, "
        "largest logit, log-sum-exp; a small network cross-fitted over 5 folds, so scored on "
        "samples it was not fitted on), and the share reached by passing on the samples whose "
        "outcome improves most (knows the outcome: a ceiling, not attainable). A learned rule "
        "well above the policy says a richer rule is worth looking for on these data.",
        "",
        "| policy | setting | held-out cost | policy | learned rule | outcome-aware ceiling |",
        "| --- " * 6 + "|",
    ]
    lines += [
        f"| {r['policy']} | {r['setting']} | {r['heldout_cost']:.3f} | {pct(r['policy_share'])} "
        f"| {pct(r['learned_share'])} | {pct(r['outcome_share'])} |"
        for r in shown
    ]
    return lines + [""]
