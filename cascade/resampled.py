"""B bootstrap resamples of one dataset's metric inputs: what a metric's resampled form reads.

A metric's resampled form (``resampled=`` of its registry entry, beside its plain form in the
``builtin_*metrics`` module of its family) takes a [`Resampled`][] and returns {key: B
values}, equal to the plain form evaluated on each resample's repeated samples. The draws and
their counts, and the weighted risk-coverage curves that several metrics share, are computed
here once per resample chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from window_cascades.cascade.metric_registry import MetricInputs
from window_cascades.uncertainty.scod import scod_mixture
from window_cascades.uncertainty.weighted_curve import WeightedCurve, draw_counts


@dataclass
class Resampled:
    """One dataset under one policy, and B resamples of it and of the ID test set.

    Attributes:
        inputs: the metric inputs of the whole sample (outputs, ID outputs, settings, ...).
        index: B x N draws (indices into the dataset) of the dataset's resamples.
        id_index: B x N_id draws of the ID set's resamples (the ones of the ID set's rows).
    """

    inputs: MetricInputs
    index: torch.Tensor
    id_index: torch.Tensor

    @cached_property
    def weights(self) -> torch.Tensor:
        """B x N float64: how often each sample of the dataset appears in each resample."""
        return draw_counts(self.index, self.inputs.outputs.num_samples)

    @cached_property
    def id_weights(self) -> torch.Tensor:
        """B x N_id float64: how often each ID sample appears in each ID resample."""
        return draw_counts(self.id_index, self.inputs.id_outputs.num_samples)

    @cached_property
    def curve(self) -> WeightedCurve:
        """The tie-aware risk-coverage curves (loss 1 per error) of the B resamples."""
        out = self.inputs.outputs
        return WeightedCurve(out.confidence, ~out.correct.bool(), self.index)

    @cached_property
    def scod_curve(self) -> WeightedCurve:
        """The SCOD mixture of each resample: the fixed-seed subsample taken of its draws."""
        s, ids, ood = self.inputs.settings, self.inputs.id_outputs, self.inputs.outputs
        n_id, n_ood = ids.num_samples, ood.num_samples
        keep_id, keep_ood = scod_mixture(n_id, n_ood, s.scod_ratio, s.scod_seed)
        draws = torch.cat([self.id_index[:, keep_id], self.index[:, keep_ood] + n_id], 1)
        conf = torch.cat([ids.confidence, ood.confidence])
        loss = torch.cat(
            [(~ids.correct.bool()).double(), torch.full((ood.num_samples,), s.scod_beta).double()]
        )
        is_id = torch.cat([torch.ones(ids.num_samples), torch.zeros(ood.num_samples)]).bool()
        return WeightedCurve(conf, loss, draws, coverage_mask=is_id)

    @property
    def standard(self) -> bool:
        """Whether the standard definitions apply (the paper's have no resampled forms: their
        per-sample curves count every repeat as its own point)."""
        return self.inputs.definitions.name == "standard"

    def constant(self, value: float) -> torch.Tensor:
        """B copies of ``value`` (float64): a quantity the resampling does not change."""
        return torch.full((self.index.shape[0],), float(value), dtype=torch.float64)


# what a resampled form returns: {key: B values}, or None where it has no fast form for these
# inputs (the bootstrap then computes the plain form on each resample)
ResampledValues = dict[str, torch.Tensor] | None
