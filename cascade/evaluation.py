"""Cascade outputs -> tidy metric rows (one value per row), shared by online and offline runs.

Row fields: ``dataset``, ``role``, ``policy``, ``setting``, ``score``, ``metric``, ``value``.
Which metrics a dataset gets is decided by its role and the metric registry
(``window_cascades.cascade.metric_registry``; the built-in metrics are in
``cascade.builtin_*metrics``).
"""

from __future__ import annotations

import torch

from window_cascades.cascade.bootstrap import Bootstrap
from window_cascades.cascade.metric_registry import MetricInputs, MetricSettings, metric_values
from window_cascades.cascade.operating_point import fit_operating_point
from window_cascades.cascade.sample_outputs import SampleOutputs
from window_cascades.vocabulary.roles import LABELLED_ROLES, DatasetRoles

ROW_FIELDS = (
    "dataset",
    "role",
    "policy",
    "setting",
    "score",
    "metric",
    "value",
    "ci_low",
    "ci_high",
)  # fmt: skip  (ci_low/ci_high: the bootstrap interval, empty without one)
"""The columns of ``metrics.csv``, in order: one metric value per row with its bootstrap
interval (``ci_low``, ``ci_high``; empty without a bootstrap)."""


def policy_rows(
    policy,
    score: str,
    outputs: dict[str, SampleOutputs],
    targets: dict[str, torch.Tensor],
    roles: DatasetRoles,
    stage_macs: list[float],
    settings: MetricSettings | None = None,
    bootstrap: Bootstrap | None = None,
) -> list[dict]:
    """All metric rows of one fitted policy over every evaluated dataset of ``roles``
    (``outputs``: each dataset's per-sample outputs under the policy; ``targets``: its targets,
    -1 unlabelled; the ``train`` and ``ood_val`` sets get no rows). With ``bootstrap``, every
    dataset's resampled values are added to it as well."""
    settings = settings or MetricSettings()
    roles = roles if isinstance(roles, DatasetRoles) else DatasetRoles(roles)
    roles = roles.evaluated()
    id_name = roles.id
    point = None
    if settings.target is not None:
        point = fit_operating_point(
            outputs[roles.heldout],
            settings.target,
            settings.definitions,
            settings.guarantee,
            settings.guarantee_method,
        )
    rows, role_inputs = [], {}
    for name, role in roles.items():
        if role in LABELLED_ROLES and bool((targets[name] < 0).any()):
            raise ValueError(
                f"dataset {name!r} has role {role!r} but unlabelled samples (target -1): "
                "labelled roles (heldout, id, shift) need every target; make it an 'ood' set"
            )
        inputs = MetricInputs(outputs[name], outputs[id_name], stage_macs, settings, point)
        role_inputs[name] = (role, inputs)
        for metric, value in metric_values(inputs, role).items():
            rows.append(
                {
                    "dataset": name,
                    "role": role,
                    "policy": policy.name,
                    "setting": policy.setting,
                    "score": score,
                    "metric": metric,
                    "value": float(value),
                }
            )
    if bootstrap is not None and bootstrap.num:
        bootstrap.add(policy, score, role_inputs)
    return rows
