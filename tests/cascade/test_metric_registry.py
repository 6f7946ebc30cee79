"""The metric registry: every registered metric's forms agree. The plain form (``compute``),
the resampled form with unit weights (each sample drawn once) and, for the metrics a
torchmetrics wrapper reports, the wrapper's value are one metric, not three definitions."""

from __future__ import annotations

import pytest
import torch

from window_cascades.cascade.bootstrap import resampled_values
from window_cascades.cascade.metric_registry import MetricInputs, MetricSettings, metric_entries
from window_cascades.cascade.operating_point import fit_operating_point
from window_cascades.cascade.resampled import Resampled
from window_cascades.cascade.sample_outputs import SampleOutputs
from window_cascades.lightning_modules.metric_wrappers import (
    CalibrationMetrics,
    SelectiveClassificationMetrics,
)

N_ID, N_OOD, CLASSES = 240, 160, 5


def _data(n: int, gen: torch.Generator, labelled: bool, ties: bool):
    """(probs, confidence, exit stages, targets) of n samples; confidence informative."""
    probs = torch.softmax(2 * torch.randn(n, CLASSES, generator=gen), -1)
    keep = torch.rand(n, generator=gen) < 0.7
    targets = torch.where(keep, probs.argmax(-1), torch.randint(CLASSES, (n,), generator=gen))
    if not labelled:
        targets = torch.full((n,), -1)
    conf = probs.max(-1).values.double()
    if ties:
        conf = (conf * 10).round() / 10
    stages = torch.randint(1, 3, (n,), generator=gen)
    return probs, conf, stages, targets


def _outputs(data) -> SampleOutputs:
    probs, conf, stages, targets = data
    return SampleOutputs.from_probs(probs, conf, stages, targets)


def _unit_draws(n: int) -> torch.Tensor:
    """Two resamples that draw every sample exactly once (all weights 1)."""
    return torch.arange(n).repeat(2, 1)


CASES = [
    pytest.param("standard", "cov@50", None, False, id="standard-cov-target"),
    pytest.param("standard", "fpr@90", None, True, id="standard-fpr-target-ties"),
    pytest.param("standard", "risk@80", 0.1, False, id="standard-guaranteed-risk-target"),
    pytest.param("paper", "cov@50", None, False, id="paper-definitions"),
]


@pytest.mark.parametrize(("definitions", "target", "guarantee", "ties"), CASES)
def test_plain_and_unit_weight_resampled_forms_agree_for_every_metric(
    definitions, target, guarantee, ties
):
    gen = torch.Generator().manual_seed(4)
    ids = _outputs(_data(N_ID, gen, labelled=True, ties=ties))
    ood = _outputs(_data(N_OOD, gen, labelled=False, ties=ties))
    settings = MetricSettings(
        risks=(0.05, 0.3),
        coverages=(0.5, 0.9),
        definitions=definitions,
        target=target,
        guarantee=guarantee,
    )
    point = fit_operating_point(ids, target, definitions, guarantee)
    id_draws, ood_draws = _unit_draws(N_ID), _unit_draws(N_OOD)
    reported = set()
    roles = (("id", ids, id_draws), ("heldout", ids, id_draws), ("ood", ood, ood_draws))
    for role, out, draws in roles:
        inputs = MetricInputs(out, ids, [1.0, 2.5], settings, point)
        every = resampled_values(inputs, role, draws, id_draws)
        resampled = Resampled(inputs, draws, id_draws)
        for name, entry in metric_entries().items():
            if role not in entry.roles:
                continue
            plain = entry.compute(inputs)
            fast = entry.resampled(resampled) if entry.resampled is not None else None
            assert set(every) >= set(plain), (role, name)
            for key, value in plain.items():
                reported.add(name)
                for b in range(2):
                    assert every[key][b].item() == pytest.approx(value, abs=1e-10, nan_ok=True)
                    if fast is not None:
                        got = fast[key][b].item()
                        assert got == pytest.approx(value, abs=1e-10, nan_ok=True), (role, key)
    # every registered metric reported a value in one of the cases above
    expected = set(metric_entries()) - ({"op_bound"} if guarantee is None else set())
    expected -= {"op_risk", "op_cov"} if target.startswith("fpr") else {"op_fpr", "op_tpr"}
    assert reported == expected


@pytest.mark.parametrize("definitions", ["standard", "paper"])
def test_torchmetrics_wrappers_report_the_registered_metrics_to_the_last_bit(definitions):
    gen = torch.Generator().manual_seed(5)
    data = _data(700, gen, labelled=True, ties=False)  # > 500: the paper's cov@r has points
    probs, conf, stages, targets = data
    settings = MetricSettings(risks=(0.05, 0.3), coverages=(0.8,), definitions=definitions)
    inputs = MetricInputs(_outputs(data), _outputs(data), [1.0], settings)
    sc = SelectiveClassificationMetrics((0.05, 0.3), (0.8,), definitions)
    cal = CalibrationMetrics()
    for s in range(0, 700, 64):
        p, t = probs[s : s + 64], targets[s : s + 64]
        sc.update(conf[s : s + 64], p.argmax(-1), t)
        cal.update(p, t)
    entries = metric_entries()
    for wrapper in (sc, cal):
        expected: dict[str, float] = {}
        for name in wrapper.METRICS:
            expected.update(entries[name].compute(inputs))
        assert wrapper.compute() == expected
