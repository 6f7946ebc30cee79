"""How a results table names its rows: one label per evaluated policy, the columns shown per
dataset role, and which policies coincide. Shared by ``results`` (tables, summary.json),
``report`` (report.md) and ``result_plots`` (the plots), below all three so none imports
another's module for them.
"""

from __future__ import annotations

LABELLED_LEAD = ("acc", "nll", "ece", "aurc", "augrc")
OOD_LEAD = ("auroc", "aupr")


def run_key(row: dict) -> tuple[str, str, str, str]:
    """What one evaluated policy is: (policy, setting, score, members), ``members`` the
    cascade's member order (``m1>m0``) in a run over several orders, else empty."""
    return row["policy"], row["setting"], row["score"], row.get("members") or ""


def policy_labels(rows: list[dict]) -> dict[tuple[str, str, str, str], str]:
    """[`run_key`][] -> label, the one key scheme of summary.json, tables and plots (online
    and offline): the policy name, followed in brackets by what tells its rows apart, the
    member order when the rows have several, the score when they have several scores and the
    setting when the policy has several settings (``window``, ``window[cov@5,w=0.2]``,
    ``window[energy,cov@5,w=0.2]``, ``window[m1>m0]``)."""
    orders = {r.get("members") or "" for r in rows}
    scores = {r["score"] for r in rows}
    settings: dict[str, set] = {}
    for r in rows:
        settings.setdefault(r["policy"], set()).add(r["setting"])
    labels = {}
    for r in rows:
        parts = [r["members"]] if len(orders) > 1 else []
        parts += [r["score"]] if len(scores) > 1 else []
        parts += [r["setting"]] if len(settings[r["policy"]]) > 1 else []
        labels[run_key(r)] = f"{r['policy']}[{','.join(parts)}]" if parts else r["policy"]
    return labels


def lead_columns(values: dict, role: str) -> list[str]:
    """The columns shown for a dataset of ``role`` (of the metrics in ``values``)."""
    if role == "ood":
        lead, tail = OOD_LEAD, [m for m in values if m.startswith(("fpr@", "scod_"))]
    else:
        lead, tail = LABELLED_LEAD, [m for m in values if m.startswith(("cov@", "risk@"))]
    return [m for m in lead if m in values] + tail


def identical_policies(rows: list[dict]) -> list[list[str]]:
    """Groups of policy labels with identical values for every metric on every dataset (e.g.
    the standard window and ``single_threshold`` when tau's quantile is below w: they fit the
    same band)."""
    labels = policy_labels(rows)
    values: dict[str, list] = {}
    for r in rows:
        values.setdefault(labels[run_key(r)], []).append((r["dataset"], r["metric"], r["value"]))
    groups: dict[tuple, list[str]] = {}
    for label, vals in values.items():
        groups.setdefault(tuple(sorted(vals)), []).append(label)
    return [g for g in groups.values() if len(g) > 1]


def same_as(rows: list[dict]) -> dict[str, str]:
    """label -> ' (= other, ...)' for policies that coincide with others."""
    out = {}
    for group in identical_policies(rows):
        for label in group:
            out[label] = f" (= {', '.join(g for g in group if g != label)})"
    return out
