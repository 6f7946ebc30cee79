"""Selective classification with OOD data (SCOD).

ID and OOD samples are mixed at a ratio alpha (OOD : ID, default 1:1) by fixed-seed
subsampling of whichever side is too large. A sample is accepted when its confidence is >= t.
An accepted ID sample costs 1 if misclassified, an accepted OOD sample costs beta (default 1):

    coverage(t) = accepted ID / all ID   (coverage is set on ID samples)
    risk(t)     = (errors among accepted ID + beta * accepted OOD) / all accepted

Curves are tie-aware over the mixture's distinct confidence values.
"""

from __future__ import annotations

import torch

from window_cascades.uncertainty.selective import RiskCoverageCurve, generalized_risk_area


def scod_mixture(
    n_id: int, n_ood: int, ratio: float = 1.0, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the ID and OOD samples kept so that #OOD = round(ratio * #ID) (or as close).

    The side that is too large is subsampled without replacement with a generator seeded by
    ``seed``; both index tensors are sorted.

    Args:
        n_id: the number of ID samples.
        n_ood: the number of OOD samples.
        ratio: the wanted OOD : ID ratio (1: as many OOD samples as ID ones).
        seed: seed of the subsampling.
    """
    if ratio <= 0:
        raise ValueError(f"SCOD mixing ratio must be > 0, got {ratio}")
    gen = torch.Generator().manual_seed(seed)
    keep_id, keep_ood = n_id, n_ood
    if n_ood > round(ratio * n_id):
        keep_ood = round(ratio * n_id)
    else:
        keep_id = min(n_id, max(1, round(n_ood / ratio)))
    id_idx = torch.sort(torch.randperm(n_id, generator=gen)[:keep_id]).values
    ood_idx = torch.sort(torch.randperm(n_ood, generator=gen)[:keep_ood]).values
    return id_idx, ood_idx


def scod_curve(
    id_conf: torch.Tensor, id_correct: torch.Tensor, ood_conf: torch.Tensor, beta: float = 1.0
) -> RiskCoverageCurve:
    """Tie-aware SCOD risk-coverage curve; coverage is the fraction of ID samples accepted.

    Args:
        id_conf: N_id confidences of the ID samples.
        id_correct: N_id bools, whether each ID prediction is correct.
        ood_conf: N_ood confidences of the OOD samples.
        beta: the loss of an accepted OOD sample (a misclassified ID sample costs 1).
    """
    if id_conf.numel() == 0:
        raise ValueError("SCOD needs at least one ID sample")
    conf = torch.cat([id_conf.flatten(), ood_conf.flatten()]).double()
    loss = torch.cat(
        [
            (~id_correct.flatten().bool()).double(),
            torch.full((ood_conf.numel(),), beta, dtype=torch.float64),
        ]
    )
    is_id = torch.cat([torch.ones(id_conf.numel()), torch.zeros(ood_conf.numel())]).double()
    order = torch.argsort(conf, descending=True, stable=True)
    c = conf[order]
    last = torch.ones_like(c, dtype=torch.bool)
    last[:-1] = c[1:] != c[:-1]
    idx = torch.nonzero(last).flatten()
    count = idx + 1
    return RiskCoverageCurve(
        coverage=torch.cumsum(is_id[order], 0)[idx] / id_conf.numel(),
        risk=torch.cumsum(loss[order], 0)[idx] / count.double(),
        threshold=c[idx],
        count=count,
    )


def scod_aurc(
    id_conf: torch.Tensor, id_correct: torch.Tensor, ood_conf: torch.Tensor, beta: float = 1.0
) -> float:
    """Area under the SCOD risk-(ID-)coverage curve, extended flat to coverage 0.

    Args:
        id_conf: N_id confidences of the ID samples.
        id_correct: N_id bools, whether each ID prediction is correct.
        ood_conf: N_ood confidences of the OOD samples.
        beta: the loss of an accepted OOD sample (a misclassified ID sample costs 1).
    """
    curve = scod_curve(id_conf, id_correct, ood_conf, beta)
    cov = torch.cat([curve.coverage.new_zeros(1), curve.coverage])
    risk = torch.cat([curve.risk[:1], curve.risk])
    return float(torch.trapezoid(risk, cov))


def scod_augrc(
    id_conf: torch.Tensor, id_correct: torch.Tensor, ood_conf: torch.Tensor, beta: float = 1.0
) -> float:
    """AUGRC of the ID + OOD mixture: the generalized risk at a threshold is the loss of the
    accepted samples (1 per misclassified ID sample, ``beta`` per OOD sample) over all samples
    of the mixture, integrated over the mixture's coverage (tie-aware, from (0, 0)).

    Args:
        id_conf: N_id confidences of the ID samples.
        id_correct: N_id bools, whether each ID prediction is correct.
        ood_conf: N_ood confidences of the OOD samples.
        beta: the loss of an accepted OOD sample (a misclassified ID sample costs 1).
    """
    conf = torch.cat([id_conf.flatten(), ood_conf.flatten()])
    loss = torch.cat(
        [
            (~id_correct.flatten().bool()).double(),
            torch.full((ood_conf.numel(),), beta, dtype=torch.float64),
        ]
    )
    return generalized_risk_area(conf, loss)


def scod_risk_at_coverage(
    id_conf: torch.Tensor,
    id_correct: torch.Tensor,
    ood_conf: torch.Tensor,
    min_coverage: float,
    beta: float = 1.0,
) -> float:
    """SCOD risk at the first point (most confident first) whose ID coverage is >= c.

    Args:
        id_conf: N_id confidences of the ID samples.
        id_correct: N_id bools, whether each ID prediction is correct.
        ood_conf: N_ood confidences of the OOD samples.
        min_coverage: the ID coverage c, a fraction in (0, 1].
        beta: the loss of an accepted OOD sample (a misclassified ID sample costs 1).
    """
    curve = scod_curve(id_conf, id_correct, ood_conf, beta)
    j = int(torch.nonzero(curve.coverage >= min_coverage - 1e-12).flatten()[0])
    return float(curve.risk[j])
