"""A cascade test run's results: the metric rows, curves and exit stages of every policy on
every dataset, computed from the outputs the online cascade gathered."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from window_cascades.cascade.bootstrap import Bootstrap
from window_cascades.cascade.evaluation import policy_rows
from window_cascades.cascade.fitted import FittedCascade
from window_cascades.cascade.metric_registry import MetricSettings
from window_cascades.cascade.offline import test_curves


@dataclass
class CascadeEvaluation:
    """What one ``test`` run of the cascade produced (read by the results writer).

    Attributes:
        rows: the tidy metric rows.
        curves: policy -> {dataset: (coverage, risk)} on the ID and shifted sets.
        exit_stages: (dataset, policy) -> exit stage per sample.
        member_calls: dataset -> samples each member processed (all processes).
        stage_macs: per member, MACs of one sample.
        member_params: per member, parameter count.
        deltas: paired differences against single and ensemble (with a bootstrap), else None.
    """

    rows: list[dict] = field(default_factory=list)
    deltas: list[dict] | None = None
    curves: dict = field(default_factory=dict)
    exit_stages: dict = field(default_factory=dict)
    member_calls: dict = field(default_factory=dict)
    stage_macs: list[float] | None = None
    member_params: list[int] | None = None


def evaluate_policies(
    ev: CascadeEvaluation,
    policies: list,
    outputs,
    roles: dict,
    score: str,
    settings: MetricSettings,
    fitted: FittedCascade | None,
    bootstrap: Bootstrap,
) -> None:
    """Fill ``ev`` (rows, curves, exit stages; deltas with a bootstrap) from the gathered
    ``outputs`` (``"<dataset>/<policy>"`` -> ``CascadeOutputs``, reset after), at the operating
    point of the calibrated target.

    Args:
        ev: the run's evaluation, with its member calls and stage MACs already counted.
        policies: the fitted policies, in configured order.
        outputs: the cascade module's gathered outputs.
        roles: dataset name -> role, in the datamodule's order.
        score: the confidence score.
        settings: the metric settings (the target and guarantee are taken from ``fitted``).
        fitted: the calibrated cascade (None: no target).
        bootstrap: resamples for intervals and paired differences (``num`` 0: none).
    """
    ev.rows = []
    info = fitted.info if fitted else {}
    settings = replace(
        settings,
        target=info.get("target"),
        guarantee=info.get("guarantee"),
        guarantee_method=info.get("guarantee_method", "ltt"),
    )  # the operating point of the calibrated target
    for policy in policies:
        results, targets = {}, {}
        for name in roles:
            metric = outputs[f"{name}/{policy.name}"]
            results[name], targets[name] = metric.compute()
            metric.reset()
            ev.exit_stages[name, policy.name] = results[name].exit_stage.cpu()
        ev.rows.extend(
            policy_rows(policy, score, results, targets, roles, ev.stage_macs, settings, bootstrap)
        )
        ev.curves[policy.name] = test_curves(results, roles)
    if bootstrap.num:
        ev.rows = bootstrap.annotate(ev.rows)
        ev.deltas = bootstrap.delta_rows(ev.rows)
