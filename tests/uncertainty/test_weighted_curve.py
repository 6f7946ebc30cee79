"""The weighted forms' shared machinery: OOD detection from the ID and OOD sets' own sorts
equals the same metrics over the two sets sorted together."""

from __future__ import annotations

import pytest
import torch

from window_cascades.uncertainty.weighted_curve import (
    OodCounts,
    OodRanks,
    SortedGroups,
    cumulative_from_zero,
    draw_counts,
    ood_from_counts,
)


@pytest.mark.parametrize("ties", [False, True])
def test_ood_metrics_from_separate_sorts_equal_those_of_the_merged_sort(ties):
    gen = torch.Generator().manual_seed(2)
    id_conf, ood_conf = torch.rand(400, generator=gen), 0.8 * torch.rand(150, generator=gen)
    if ties:  # shared values inside each set and between the sets
        id_conf, ood_conf = (id_conf * 10).round() / 10, (ood_conf * 10).round() / 10
    id_w = draw_counts(torch.randint(400, (7, 400), generator=gen), 400, torch.float32)
    ood_w = draw_counts(torch.randint(150, (7, 150), generator=gen), 150, torch.float32)
    ood_w[0] = 0  # a resample without OOD draws: NaN in both forms
    ood_w[0, 3] = 0
    merged = SortedGroups(torch.cat([id_conf, ood_conf]))
    is_ood = merged.sorted_mask(torch.cat([torch.zeros(400), torch.ones(150)]), torch.float32)
    sorted_w = torch.cat([id_w, ood_w], 1).index_select(1, merged.order)
    total = merged.cumulate_sorted(sorted_w)
    ood_count = merged.cumulate_sorted(sorted_w, is_ood)
    ranks = OodRanks(id_conf, ood_conf)
    fast = OodCounts(
        ranks, cumulative_from_zero(ranks.id, id_w), cumulative_from_zero(ranks.ood, ood_w)
    )
    pairs = [(fast.auroc(), "auroc", None), (fast.aupr(), "aupr", None)]
    pairs += [(fast.fpr(t), "fpr", t) for t in (0.01, 0.5, 0.95, 1.0)]
    for values, metric, tpr in pairs:
        args = (metric,) if tpr is None else (metric, tpr)
        expected = ood_from_counts(total - ood_count, ood_count, *args)
        torch.testing.assert_close(values, expected, atol=1e-12, rtol=0, equal_nan=True)
        assert values[0].isnan() and not values[1:].isnan().any(), metric
