"""The operating point a user deploys: the acceptance threshold fitted on a policy's own
held-out outputs, and what it gives on new data.

``cov@5``, ``risk@80`` and ``fpr@95`` summarise each dataset's own curve (an oracle figure: the
threshold is chosen on the data it is scored on). The operating point instead fits one
threshold per policy on the cascade's output on the held-out split, for the run's target (and,
with a guarantee, with [`window_cascades.uncertainty.guarantees`][]), and reports on every dataset
what that threshold does there (``op_risk``/``op_cov`` on labelled sets, ``op_fpr``/``op_tpr`` on
OOD sets; see ``window_cascades.cascade.builtin_operating_metrics``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from window_cascades.cascade.engine import exit_stages
from window_cascades.cascade.sample_outputs import SampleOutputs
from window_cascades.uncertainty.definitions import get_definitions
from window_cascades.uncertainty.guarantees import GuaranteeError, certified_threshold
from window_cascades.uncertainty.selective import UnreachableTargetError
from window_cascades.uncertainty.targets import parse_target, target_threshold


@dataclass(frozen=True)
class OperatingPoint:
    """Accept confidence >= ``threshold`` (inf: nothing is accepted, the target being
    unreachable or uncertifiable on the held-out split); ``bound``: the certified risk (or
    acceptance) bound with a guarantee, None without."""

    target: str
    threshold: float
    bound: float | None = None


DECISIONS = ("accept", "reject", "ood")
"""The one outcome of a deployed cascade for each sample, by code (``decision`` is the index):

- ``ood`` (2): confidence < the OOD threshold (the one accepting ``ood_tpr`` of the policy's
  held-out output): flagged as out-of-distribution, its prediction not used;
- ``reject`` (1): not flagged, confidence < the acceptance threshold (the target's operating
  point): in-distribution, but not confident enough to accept;
- ``accept`` (0): neither: the prediction is accepted.

Precedence ood > reject > accept: when the OOD threshold lies above the acceptance threshold
(e.g. a ``cov@5`` point at 0.45 and a 95% ID-acceptance OOD point at 0.87), the samples between
the two are flagged OOD, not accepted, so no sample is both accepted and flagged.
"""


def decision_flags(confidence: torch.Tensor, point: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """A deployed cascade's decisions at its fitted operating point, in the precedence of
    [`DECISIONS`][] (never both true for one sample).

    Args:
        confidence: N confidences at the exit stage (the cascade's score).
        point: a policy's entry of ``fitted.info["operating_points"]``: ``accept`` (the
            threshold fitted for the target; None: nothing is accepted) and ``ood`` (the
            threshold accepting ``ood_tpr`` of the policy's held-out output).

    Returns:
        ``accepted`` (confidence >= accept and not flagged OOD) and ``ood`` (confidence <
        ood), boolean masks.
    """
    accept = math.inf if point["accept"] is None else point["accept"]
    ood = confidence < point["ood"]
    return (confidence >= accept) & ~ood, ood


def decision_codes(confidence: torch.Tensor, point: dict) -> torch.Tensor:
    """The index into [`DECISIONS`][] of each sample's one outcome (int64, N values)."""
    accepted, ood = decision_flags(confidence, point)
    codes = torch.full(confidence.shape, DECISIONS.index("reject"), dtype=torch.int64)
    codes[accepted] = DECISIONS.index("accept")
    codes[ood] = DECISIONS.index("ood")
    return codes


def precedence_note(point: dict, policy: str) -> str | None:
    """One line when ``point``'s OOD threshold lies above its acceptance threshold (the samples
    between them are flagged OOD, not accepted: [`DECISIONS`][]), else None."""
    accept = point.get("accept")
    if accept is None or not point["ood"] > accept:
        return None
    tpr = point.get("ood_tpr", 0.95)
    return (
        f"note: {policy}: the OOD threshold {point['ood']:.4g} ({tpr:.0%} ID acceptance) is above "
        f"the acceptance threshold {accept:.4g} ({point.get('target', 'the target')}): samples "
        "between them are flagged OOD, not accepted (precedence ood > reject > accept)"
    )


def fit_operating_point(
    heldout: SampleOutputs,
    target: str,
    definitions: str = "standard",
    guarantee: float | None = None,
    guarantee_method: str = "ltt",
) -> OperatingPoint:
    """The threshold of ``target`` on a policy's held-out outputs (see the module docstring)."""
    parsed = parse_target(target)
    try:
        if guarantee is None:
            threshold = target_threshold(heldout.confidence, heldout.correct, parsed, definitions)
            return OperatingPoint(parsed.name, float(threshold))
        certified = certified_threshold(
            heldout.confidence,
            heldout.correct,
            parsed.task,
            parsed.value,
            guarantee,
            guarantee_method,
        )
        return OperatingPoint(parsed.name, certified.threshold, certified.bound)
    except (UnreachableTargetError, GuaranteeError):
        return OperatingPoint(parsed.name, math.inf, None if guarantee is None else 1.0)


def policy_operating_points(
    prefixes: list,
    policies: dict,
    target: str,
    definitions: str = "standard",
    guarantee: float | None = None,
    guarantee_method: str = "ltt",
    ood_tpr: float = 0.95,
) -> dict[str, dict]:
    """Per fitted policy, the thresholds a deployed cascade applies to its output: ``accept``
    (the operating point of ``target``, None when nothing can be accepted), its certified
    ``bound`` (with a guarantee), and ``ood`` (the threshold accepting ``ood_tpr`` of the
    held-out output: below it a sample is flagged OOD). ``prefixes``: the held-out
    ``SampleOutputs`` of the ensembles of the first 1..M members (JSON-safe result)."""
    out = {}
    for name, policy in policies.items():
        exits = exit_stages([p.confidence for p in prefixes], policy)
        held = SampleOutputs.by_exit_stage(prefixes, exits)
        point = fit_operating_point(held, target, definitions, guarantee, guarantee_method)
        ood = get_definitions(definitions).fpr_threshold(held.confidence, ood_tpr)
        out[name] = {
            "target": point.target,
            "accept": None if math.isinf(point.threshold) else point.threshold,
            "bound": point.bound,
            "ood": float(ood),
            "ood_tpr": ood_tpr,
        }
    return out
