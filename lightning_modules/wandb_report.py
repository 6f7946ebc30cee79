"""What a cascade evaluation shows on a wandb dashboard, beyond the scalar metric keys.

- ``<role>/<dataset>/<policy>/exit_stage``: histogram of the stage (1..M) each sample exited at;
- ``test/sc/risk_coverage``: risk-coverage curves of the ID set, one line per policy (table + plot);
- ``tradeoff/<dataset>/<metric>``: expected MACs (in first-member units) vs the metric, one
  point per policy (table + scatter), for the ID set's selective-classification metrics and
  each OOD set's AUROC and FPR;
- ``test/results``: the whole tidy results table (the rows of ``metrics.csv``, with the
  bootstrap interval); ``test/deltas``: the paired differences of ``deltas.csv`` (bootstrap);
- run summary ``members/m<k>/macs`` and ``/params``; run config: the fitted policies.

Only called on global rank 0 with a ``WandbLogger``; nothing here reads an API key.
"""

from __future__ import annotations

import torch
from lightning.pytorch.loggers import Logger, WandbLogger

from window_cascades.cascade.bootstrap import DELTA_FIELDS
from window_cascades.cascade.evaluation import ROW_FIELDS
from window_cascades.vocabulary.roles import DatasetRoles

CURVE_POINTS = 200
ID_TRADEOFF = ("aurc", "cov@", "risk@", "ece", "nll", "acc")
OOD_TRADEOFF = ("auroc", "fpr@")


def wandb_runs(loggers: list[Logger]) -> list:
    """The wandb runs among a Trainer's loggers."""
    return [lg.experiment for lg in loggers if isinstance(lg, WandbLogger)]


def _thin(x: torch.Tensor, y: torch.Tensor, points: int = CURVE_POINTS) -> list[tuple]:
    """At most ``points`` evenly spaced points of a curve (its ends kept)."""
    idx = torch.linspace(0, x.numel() - 1, min(points, x.numel())).round().long().unique()
    return list(zip(x[idx].tolist(), y[idx].tolist(), strict=True))


def log_cascade_report(
    run,
    rows: list[dict],
    curves: dict[str, tuple[torch.Tensor, torch.Tensor]],
    exit_stages: dict[tuple[str, str], torch.Tensor],
    roles: dict[str, str],
    stage_macs: list[float],
    member_params: list[int],
    policies: dict[str, dict],
    deltas: list[dict] | None = None,
) -> None:
    """Log histograms, curves, trade-off plots, the results table and member costs to ``run``.

    Args:
        run: a ``wandb`` run (``WandbLogger.experiment``).
        rows: tidy result rows (dataset, role, policy, setting, score, metric, value).
        curves: policy -> {dataset: (coverage, risk)} (the ID set's are logged).
        exit_stages: (dataset, policy) -> N exit stages (1-based).
        roles: dataset -> role.
        stage_macs: per member, MACs of one sample.
        member_params: per member, parameter count.
        policies: policy -> its fitted parameters (``to_dict``).
        deltas: paired differences against single and ensemble (with a bootstrap).
    """
    import wandb

    num_stages = len(stage_macs)
    payload = {}
    for (dataset, policy), stages in exit_stages.items():
        payload[f"{roles[dataset]}/{dataset}/{policy}/exit_stage"] = wandb.Histogram(
            np_histogram=_stage_histogram(stages, num_stages)
        )
    points = [
        (p, c, r)
        for p, per_set in curves.items()
        for c, r in _thin(*per_set[DatasetRoles(roles).id])
    ]  # the ID set's curves
    table = wandb.Table(columns=["policy", "coverage", "risk"], data=points)
    payload["test/sc/risk_coverage"] = wandb.plot.line(
        table, "coverage", "risk", stroke="policy", title="Risk-coverage (ID)"
    )
    cost = {
        (r["dataset"], r["policy"]): r["value"] / stage_macs[0]
        for r in rows
        if r["metric"] == "expected_macs"
    }
    for row_filter, prefixes in (("id", ID_TRADEOFF), ("ood", OOD_TRADEOFF)):
        by_key: dict[tuple[str, str], list] = {}
        for r in rows:
            if r["role"] == row_filter and r["metric"].startswith(prefixes):
                key = (r["dataset"], r["metric"])
                by_key.setdefault(key, []).append(
                    [r["policy"], cost[r["dataset"], r["policy"]], r["value"]]
                )
        for (dataset, metric), data in by_key.items():
            t = wandb.Table(columns=["policy", "expected_macs", metric], data=data)
            payload[f"tradeoff/{dataset}/{metric}"] = wandb.plot.scatter(
                t, "expected_macs", metric, title=f"{dataset}: cost vs {metric}"
            )
    columns = list(ROW_FIELDS)
    payload["test/results"] = wandb.Table(
        columns=columns, data=[[r.get(c) for c in columns] for r in rows]
    )
    if deltas is not None:
        payload["test/deltas"] = wandb.Table(
            columns=list(DELTA_FIELDS), data=[[d[c] for c in DELTA_FIELDS] for d in deltas]
        )
    run.log(payload)
    for k, (macs, params) in enumerate(zip(stage_macs, member_params, strict=True)):
        run.summary[f"members/m{k}/macs"] = macs
        run.summary[f"members/m{k}/params"] = params
    run.config.update({"fitted_policies": policies}, allow_val_change=True)


def _stage_histogram(stages: torch.Tensor, num_stages: int) -> tuple[list[int], list[float]]:
    """Counts of exit stages 1..M with bin edges 0.5, 1.5, ..., M + 0.5."""
    counts = torch.bincount(stages.long().flatten() - 1, minlength=num_stages)[:num_stages]
    edges = [k + 0.5 for k in range(num_stages + 1)]
    return counts.tolist(), edges
