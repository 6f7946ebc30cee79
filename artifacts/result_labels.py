"""How a results table names its rows: one label per evaluated policy, the columns shown per
dataset role, which policies coincide, and which fitted windows were clamped to an end of the
held-out scores. Shared by ``results`` (tables, summary.json), ``report`` (report.md) and
``result_plots`` (the plots), below all three so none imports another's module for them.
"""

from __future__ import annotations

from window_cascades.uncertainty.definitions import window_clamp

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


OPERATING = {"ood": ("op_fpr", "op_tpr"), "labelled": ("op_risk", "op_cov")}


def lead_columns(values: dict, role: str) -> list[str]:
    """The columns shown for a dataset of ``role`` (of the metrics in ``values``): the lead
    metrics, each set's own ``cov@``/``risk@`` (or ``fpr@``/``scod_``) figures, then what the
    threshold fitted for the run's target on the held-out split gives on it (``op_risk`` and
    ``op_cov``, or ``op_fpr`` and ``op_tpr``), where the window is compared at equal cost."""
    if role == "ood":
        lead, tail = OOD_LEAD, [m for m in values if m.startswith(("fpr@", "scod_"))]
    else:
        lead, tail = LABELLED_LEAD, [m for m in values if m.startswith(("cov@", "risk@"))]
    operating = OPERATING["ood" if role == "ood" else "labelled"]
    return [m for m in lead if m in values] + tail + [m for m in operating if m in values]


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


def _showing_target(width: float) -> str:
    """A target whose tau lies at held-out quantile 2w (``risk@C`` has q = 1 - C)."""
    coverage = round(100 * (1 - 2 * width))
    return f"risk@{coverage}" if 0 < coverage < 100 else "a target with q between 2w and 1 - 2w"


def clamp_notes(policies: dict) -> list[str]:
    """One line per fitted window whose band was clamped at an end of the held-out scores
    ([`window_cascades.uncertainty.definitions.window_clamp`][]): it then does not surround
    tau and is no longer the paper's window (the standard window becomes the least or most
    confident 2w, the same samples as ``single_threshold`` at pass fraction 2w), saying why
    and which target would show a window.

    Args:
        policies: label -> a fitted policy's JSON-safe form (summary.json's ``policies``);
            the window-type ones have ``stages`` with ``q``, ``width`` and ``target``.

    Returns:
        The lines (``note: ...``), none when no window was clamped.
    """
    lines = []
    for label, policy in policies.items():
        stages = [s for s in policy.get("stages") or [] if "q" in s and "width" in s]
        for k, stage in enumerate(stages, 1):
            side = window_clamp(float(stage["q"]), float(stage["width"]))
            if side is None:
                continue
            q, w = float(stage["q"]), float(stage["width"])
            where = f", stage {k}" if len(stages) > 1 else ""
            paper = "paper" in str(policy.get("setting", "")).split(",")
            scores = "test-mixture" if policy.get("name") == "window_adjusted" else "held-out"
            head = f"note: {label} ({stage.get('target', 'target')}, w = {w:g}{where}): tau sits"
            if side == "low":
                band = (
                    f"cut to {scores} quantiles [0, q + w] = [0, {q + w:.2f}]"
                    if paper
                    else f"the least confident 2w = {2 * w:.0%} of {scores} scores, the samples "
                    f"single_threshold at pass fraction {2 * w:g} passes on"
                )
                lines.append(
                    f"{head} at {scores} quantile q = {q:.3f} < w, so its band is {band}; a "
                    f"target whose tau lies at q >= 2w shows a window: {_showing_target(w)} "
                    f"(q = {2 * w:g}) at this w, or a smaller w"
                )
            else:
                band = (
                    f"cut to {scores} quantiles [q - w, 1] = [{q - w:.2f}, 1]"
                    if paper
                    else f"the most confident 2w = {2 * w:.0%} of {scores} scores"
                )
                lines.append(
                    f"{head} at {scores} quantile q = {q:.3f} > 1 - w, so its band is {band}; "
                    f"a target whose tau lies at q <= 1 - 2w shows a window: "
                    f"{_showing_target(w)} (q = {2 * w:g}) at this w, or a smaller w"
                )
    return lines
