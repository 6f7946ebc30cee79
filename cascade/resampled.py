"""B bootstrap resamples of one dataset's metric inputs: what a metric's resampled form reads.

A metric's resampled form (``resampled=`` of its registry entry, beside its plain form in the
``builtin_*metrics`` module of its family) takes a [`Resampled`][] and returns {key: B
values}, equal to the plain form evaluated on each resample's repeated samples. What several
metrics share is computed here once per block of resamples and kept:

- the counts of the draws (B x N; the bootstrap computes them once per dataset and block and
  shares them between every policy evaluated on the dataset: [`DrawCounts`][]);
- one sort of the outputs' confidences ([`OutputSorts`][], kept across blocks of one
  dataset under one policy) and the cumulative counts over it, which every curve metric reads
  (AURC, AUGRC, cov@R, risk@C, the failure metrics; AUROC, AUPR and fpr@P of an OOD set from
  the ID and OOD sets' own sorts,
  [`window_cascades.uncertainty.weighted_curve.OodCounts`][]; the SCOD curves over the ID and OOD
  samples sorted together, whose subsampled counts are made once per block and dataset);
- the means of every per-sample quantity the built-in mean-type metrics read (accuracy, NLL,
  Brier, cost, exit fractions, the operating point, ECE's bins), in one matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import torch

from window_cascades.cascade.metric_registry import MetricInputs
from window_cascades.uncertainty.probability_metrics import calibration_bin_gaps
from window_cascades.uncertainty.scod import scod_mixture
from window_cascades.uncertainty.weighted_curve import (
    CountCurve,
    OodCounts,
    OodRanks,
    SortedGroups,
    cumulative_from_zero,
    draw_counts,
)


@dataclass
class DrawCounts:
    """The counts of one block of B resamples of one dataset (shared by the policies).

    Attributes:
        draws: B x N indices (each resample's N draws with replacement).
        counts: B x N float32 counts (exact integers below 2^24 draws), for the cumulative sums.
        weights: B x N float64 counts, for the weighted means.
    """

    draws: torch.Tensor
    counts: torch.Tensor
    weights: torch.Tensor
    subsamples: dict = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, draws: torch.Tensor, n: int) -> DrawCounts:
        """The counts of ``draws`` (B x k indices into n samples)."""
        exact = torch.float32 if draws.shape[1] < 2**24 else torch.float64
        counts = draw_counts(draws, n, exact)
        return cls(draws, counts, counts.double())

    def subsample_counts(self, key: tuple, positions: torch.Tensor, n: int) -> torch.Tensor:
        """B x n counts of the draws at ``positions`` of each resample (the SCOD mixture's
        fixed-seed subsample of the draws), made once per block and shared by the policies.

        Args:
            key: what fixes ``positions`` (e.g. the mixture's sizes, ratio and seed).
            positions: the kept draw positions (indices into a resample's draws).
            n: the number of samples the draws index.
        """
        if key not in self.subsamples:
            kept = self.draws.index_select(1, positions)
            self.subsamples[key] = draw_counts(kept, n, self.counts.dtype)
        return self.subsamples[key]


@dataclass
class OutputSorts:
    """What does not change from one block of resamples to the next for one dataset under one
    policy: the sorts of its confidences (alone, and with the ID set's for an OOD set) and the
    per-position factors the cumulative sums read. Filled on first use."""

    found: dict = field(default_factory=dict)

    def get(self, key: str, make):
        """The value stored under ``key``, made by ``make()`` the first time."""
        if key not in self.found:
            self.found[key] = make()
        return self.found[key]


@dataclass
class Resampled:
    """One dataset under one policy, and B resamples of it and of the ID test set.

    Attributes:
        inputs: the metric inputs of the whole sample (outputs, ID outputs, settings, ...).
        index: B x N draws (indices into the dataset) of the dataset's resamples.
        id_index: B x N_id draws of the ID set's resamples (the ones of the ID set's rows).
        drawn: the counts of ``index`` when already computed (shared between policies).
        id_drawn: the counts of ``id_index`` when already computed.
        sorts: the sorts kept from an earlier block of the same dataset and policy.
    """

    inputs: MetricInputs
    index: torch.Tensor
    id_index: torch.Tensor | None
    drawn: DrawCounts | None = None
    id_drawn: DrawCounts | None = None
    sorts: OutputSorts = field(default_factory=OutputSorts)

    def __post_init__(self):
        if self.drawn is None:
            self.drawn = DrawCounts.of(self.index, self.inputs.outputs.num_samples)
        if self.id_drawn is None and self.id_index is not None:
            self.id_drawn = DrawCounts.of(self.id_index, self.inputs.id_outputs.num_samples)

    @property
    def weights(self) -> torch.Tensor:
        """B x N float64: how often each sample of the dataset appears in each resample."""
        return self.drawn.weights

    @property
    def id_weights(self) -> torch.Tensor:
        """B x N_id float64: how often each ID sample appears in each ID resample."""
        return self.id_drawn.weights

    @property
    def num_resamples(self) -> int:
        """B."""
        return self.index.shape[0]

    @cached_property
    def curve(self) -> CountCurve:
        """The tie-aware risk-coverage curves (loss 1 per error) of the B resamples."""
        out = self.inputs.outputs
        groups = self.sorts.get("groups", lambda: SortedGroups(out.confidence))
        wrong = self.sorts.get(
            "wrong", lambda: groups.sorted_mask(~out.correct.bool(), self.drawn.counts.dtype)
        )
        sorted_counts = self.drawn.counts.index_select(1, groups.order)
        count = groups.cumulate_sorted(sorted_counts)
        return CountCurve(count, groups.cumulate_sorted(sorted_counts, wrong), None)

    @cached_property
    def ood_counts(self) -> OodCounts:
        """The OOD set's AUROC, AUPR and fpr@P of the B resamples
        ([`window_cascades.uncertainty.weighted_curve.OodCounts`][]): the ID and
        OOD draws cumulated over their own sorts."""
        ids, ood = self.inputs.id_outputs, self.inputs.outputs
        ranks = self.sorts.get("ood_ranks", lambda: OodRanks(ids.confidence, ood.confidence))
        return OodCounts(
            ranks,
            cumulative_from_zero(ranks.id, self.id_drawn.counts),
            cumulative_from_zero(ranks.ood, self.drawn.counts.to(self.id_drawn.counts)),
        )

    def _merged(self) -> tuple[SortedGroups, torch.Tensor]:
        ids, ood = self.inputs.id_outputs, self.inputs.outputs

        def make():
            groups = SortedGroups(torch.cat([ids.confidence, ood.confidence]))
            flags = torch.cat([torch.zeros(ids.num_samples), torch.ones(ood.num_samples)])
            return groups, groups.sorted_mask(flags, torch.float64)

        return self.sorts.get("merged", make)

    @cached_property
    def scod_curve(self) -> CountCurve:
        """The SCOD mixture of each resample: the fixed-seed subsample taken of its draws."""
        s, ids, ood = self.inputs.settings, self.inputs.id_outputs, self.inputs.outputs
        n_id, n_ood = ids.num_samples, ood.num_samples
        mixture = (n_id, n_ood, s.scod_ratio, s.scod_seed)
        keep_id, keep_ood = self.sorts.get("scod_mixture", lambda: scod_mixture(*mixture))
        groups, is_ood = self._merged()
        wrong_id = self.sorts.get(
            "scod_wrong",
            lambda: groups.sorted_mask(
                torch.cat([~ids.correct.bool(), torch.zeros(n_ood, dtype=torch.bool)]),
                torch.float64,
            ),
        )
        dtype = self.drawn.counts.dtype
        kept = torch.cat(
            [
                self.id_drawn.subsample_counts(("scod id", *mixture), keep_id, n_id),
                self.drawn.subsample_counts(("scod ood", *mixture), keep_ood, n_ood),
            ],
            1,
        ).index_select(1, groups.order)
        count = groups.cumulate_sorted(kept)
        if s.scod_beta == 1:  # loss = errors + OOD draws and the ID draws: exact integer sums
            id_mask, loss_mask = self.sorts.get(
                "scod_masks", lambda: ((1 - is_ood).to(dtype), (wrong_id + is_ood).to(dtype))
            )
            loss = groups.cumulate_sorted(kept, loss_mask)
            return CountCurve(count, loss, groups.cumulate_sorted(kept, id_mask))
        ood_count = groups.cumulate_sorted(kept, is_ood.to(dtype))
        errors = groups.cumulate_sorted(kept, wrong_id.to(dtype))
        return CountCurve(count, errors + s.scod_beta * ood_count, count - ood_count)

    @cached_property
    def means(self) -> dict[str, torch.Tensor]:
        """B weighted means of the per-sample quantities the built-in mean-type metrics read,
        in one matrix product: ``correct``, ``nll`` (nats), ``brier``, ``macs`` (the MACs spent
        on the sample), ``exit@k`` (1 where it exits after stage k), and with an operating
        point on a labelled target ``accepted`` and ``accepted_wrong``; for an fpr target
        ``accepted`` only."""

        def make():
            columns = _mean_columns(self.inputs)
            return list(columns), torch.stack(list(columns.values()), 1)

        names, matrix = self.sorts.get("mean_columns", make)
        values = self.weights @ matrix / self.weights.sum(1, keepdim=True)
        return dict(zip(names, values.unbind(1), strict=True))

    @cached_property
    def calibration_gaps(self) -> torch.Tensor:
        """B x bins: per bin of the top-label probability, the weighted mean of (correct -
        top probability) over each resample (ECE is the sum of their absolute values)."""
        out = self.inputs.outputs
        gaps = self.sorts.get("ece_bins", lambda: calibration_bin_gaps(out.top_prob, out.correct))
        return self.weights @ gaps / self.weights.sum(1, keepdim=True)

    @property
    def standard(self) -> bool:
        """Whether the standard definitions apply (the paper's have no resampled forms: their
        per-sample curves count every repeat as its own point)."""
        return self.inputs.definitions.name == "standard"

    def constant(self, value: float) -> torch.Tensor:
        """B copies of ``value`` (float64): a quantity the resampling does not change."""
        return torch.full((self.index.shape[0],), float(value), dtype=torch.float64)


def _mean_columns(inputs: MetricInputs) -> dict[str, torch.Tensor]:
    """N per-sample columns of [`Resampled.means`][] (float64)."""
    out = inputs.outputs
    stage = out.exit_stage
    macs = torch.tensor(inputs.stage_macs, dtype=torch.float64)
    reach = torch.stack([(stage >= k + 1).double() for k in range(len(inputs.stage_macs))], 1)
    columns = {
        "correct": out.correct.double(),
        "nll": -torch.log(out.target_prob.double().clamp_min(1e-12)),
        "brier": out.sum_sq.double() - 2 * out.target_prob.double() + 1,
        "macs": reach @ macs,
    }
    for k in range(len(inputs.stage_macs)):
        columns[f"exit@{k + 1}"] = (stage == k + 1).double()
    point = inputs.operating_point
    if point is not None:
        accepted = out.confidence.double() >= point.threshold
        columns["accepted"] = accepted.double()
        columns["accepted_wrong"] = (accepted & ~out.correct.bool()).double()
    return columns


# what a resampled form returns: {key: B values}, or None where it has no fast form for these
# inputs (the bootstrap then computes the plain form on each resample)
ResampledValues = dict[str, torch.Tensor] | None
