"""Out-of-distribution detection metrics.

OOD samples are the positive class and the OOD score is ``-confidence``. All metrics are
tie-aware (tied scores count half in AUROC and form one threshold in AUPR and FPR).

Each metric's weighted form (``weighted_*``: B bootstrap resamples at once, see
``window_cascades.uncertainty.weighted_curve``) sits beside its plain form, so the two are read and
changed together.
"""

from __future__ import annotations

import math

import torch

from window_cascades.uncertainty.weighted_curve import SortedGroups, draw_counts, ood_from_counts


def _labels_and_scores(id_conf: torch.Tensor, ood_conf: torch.Tensor):
    if id_conf.numel() == 0 or ood_conf.numel() == 0:
        raise ValueError("OOD metrics need at least one ID and one OOD sample")
    scores = -torch.cat([id_conf.flatten(), ood_conf.flatten()]).double()
    labels = torch.cat([torch.zeros(id_conf.numel()), torch.ones(ood_conf.numel())]).double()
    return scores, labels


def auroc(id_conf: torch.Tensor, ood_conf: torch.Tensor) -> float:
    """Area under the ROC curve for separating OOD (positive) from ID by ``-confidence``.

    Equals P(score_ood > score_id) + 0.5 P(score_ood = score_id) (Mann-Whitney U).

    Args:
        id_conf: N_id confidence scores of the in-distribution samples.
        ood_conf: N_ood confidence scores of the OOD samples (the positive class).
    """
    scores, labels = _labels_and_scores(id_conf, ood_conf)
    uniq, inverse, counts = torch.unique(scores, return_inverse=True, return_counts=True)
    # average rank (1-based) of every distinct value
    ends = torch.cumsum(counts, 0).double()
    avg_rank = ends - (counts.double() - 1) / 2
    ranks = avg_rank[inverse]
    n_pos = float(labels.sum())
    n_neg = labels.numel() - n_pos
    u = float(ranks[labels == 1].sum()) - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def aupr(id_conf: torch.Tensor, ood_conf: torch.Tensor) -> float:
    """Average precision with OOD as the positive class: sum_n (R_n - R_{n-1}) P_n.

    Thresholds are the distinct OOD scores, from the highest down (as scikit-learn's
    ``average_precision_score``).

    Args:
        id_conf: N_id confidence scores of the in-distribution samples.
        ood_conf: N_ood confidence scores of the OOD samples (the positive class).
    """
    scores, labels = _labels_and_scores(id_conf, ood_conf)
    order = torch.argsort(scores, descending=True, stable=True)
    s, y = scores[order], labels[order]
    last = torch.ones_like(s, dtype=torch.bool)
    last[:-1] = s[1:] != s[:-1]
    tp = torch.cumsum(y, 0)[last]
    n_pred = (torch.nonzero(last).flatten() + 1).double()
    precision = tp / n_pred
    recall = tp / y.sum()
    recall_prev = torch.cat([recall.new_zeros(1), recall[:-1]])
    return float(((recall - recall_prev) * precision).sum())


def id_acceptance_threshold(id_conf: torch.Tensor, tpr: float) -> float:
    """The largest confidence threshold that accepts (conf >= t) at least ``tpr`` of ID.

    Args:
        id_conf: N_id confidence scores of the in-distribution samples.
        tpr: the fraction of ID samples to accept, in (0, 1] (0.95 for fpr@95).
    """
    if not 0 < tpr <= 1:
        raise ValueError(f"ID acceptance rate must be in (0, 1], got {tpr}")
    conf = torch.sort(id_conf.flatten().double(), descending=True).values
    k = max(1, math.ceil(tpr * conf.numel() - 1e-9))
    return float(conf[k - 1])


def fpr_at_threshold(ood_conf: torch.Tensor, threshold: float) -> float:
    """Fraction of OOD samples accepted (confidence >= ``threshold``).

    Args:
        ood_conf: N_ood confidence scores of the OOD samples (the positive class).
        threshold: the confidence threshold; a sample is accepted when its confidence is at least
            this.
    """
    if ood_conf.numel() == 0:
        raise ValueError("fpr needs at least one OOD sample")
    return float((ood_conf.double() >= threshold).double().mean())


def _against_id(
    id_conf: torch.Tensor, ood_conf: torch.Tensor, id_draws: torch.Tensor, ood_draws: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(ID, OOD) cumulative draws over the ID and OOD confidences sorted together."""
    groups = SortedGroups(torch.cat([id_conf.flatten(), ood_conf.flatten()]))
    counts = torch.cat(
        [draw_counts(id_draws, id_conf.numel()), draw_counts(ood_draws, ood_conf.numel())], 1
    )
    is_ood = torch.cat([torch.zeros(id_conf.numel()), torch.ones(ood_conf.numel())])
    sorted_counts = counts.index_select(1, groups.order)
    total = groups.cumulate_sorted(sorted_counts)
    ood = groups.cumulate_sorted(sorted_counts, groups.sorted_mask(is_ood, torch.float64))
    return total - ood, ood


def weighted_auroc(
    id_conf: torch.Tensor, ood_conf: torch.Tensor, id_draws: torch.Tensor, ood_draws: torch.Tensor
) -> torch.Tensor:
    """[`auroc`][] of B resamples at once: P(conf_ood < conf_id) + half the ties, sample i
    counted as often as it is drawn.

    Args:
        id_conf: N_id ID confidences.
        ood_conf: N_ood OOD confidences.
        id_draws: B x k_id indices into the ID samples (each resample's draws with replacement).
        ood_draws: B x k_ood indices into the OOD samples.

    Returns:
        B AUROC values (fractions, float64), OOD the positive class.
    """
    return ood_from_counts(*_against_id(id_conf, ood_conf, id_draws, ood_draws), "auroc")


def weighted_aupr(
    id_conf: torch.Tensor, ood_conf: torch.Tensor, id_draws: torch.Tensor, ood_draws: torch.Tensor
) -> torch.Tensor:
    """[`aupr`][] of B resamples at once: average precision, OOD positive, thresholds at the
    distinct scores (-confidence), sample i counted as often as it is drawn.

    Args:
        id_conf: N_id ID confidences.
        ood_conf: N_ood OOD confidences.
        id_draws: B x k_id indices into the ID samples (each resample's draws with replacement).
        ood_draws: B x k_ood indices into the OOD samples.

    Returns:
        B average precisions (fractions, float64).
    """
    return ood_from_counts(*_against_id(id_conf, ood_conf, id_draws, ood_draws), "aupr")


def weighted_fpr(
    id_conf: torch.Tensor,
    ood_conf: torch.Tensor,
    id_draws: torch.Tensor,
    ood_draws: torch.Tensor,
    tpr: float,
) -> torch.Tensor:
    """fpr@p of B resamples at once: the fraction of the resampled OOD draws whose confidence
    is at least the largest threshold that accepts a share ``tpr`` of the resampled ID draws.

    Args:
        id_conf: N_id ID confidences.
        ood_conf: N_ood OOD confidences.
        id_draws: B x k_id indices into the ID samples (each resample's draws with replacement).
        ood_draws: B x k_ood indices into the OOD samples.
        tpr: the ID acceptance rate p, a fraction in (0, 1].

    Returns:
        B fractions (float64).
    """
    return ood_from_counts(*_against_id(id_conf, ood_conf, id_draws, ood_draws), "fpr", tpr)
