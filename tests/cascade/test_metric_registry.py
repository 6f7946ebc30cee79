"""The metric registry's contract, one test per registered metric: its forms agree (the plain
form (``compute``), the resampled form with unit weights (each sample drawn once), the
bootstrap's value and, for the metrics a torchmetrics wrapper reports, the wrapper's value are
one metric, not several definitions), every key it reports has its direction, and the driver
reports it on exactly its dataset roles."""

from __future__ import annotations

import pytest
import torch

from window_cascades.cascade.bootstrap import resampled_values
from window_cascades.cascade.metric_registry import (
    MetricInputs,
    MetricSettings,
    higher_is_better,
    metric_entries,
)
from window_cascades.cascade.offline import EnsembleLogits, evaluate_experiment
from window_cascades.cascade.operating_point import fit_operating_point
from window_cascades.cascade.policy_registry import PolicySettings, reference_policies
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


METRICS = list(metric_entries())  # every registered metric, one test each


def _case_forms(definitions, target, guarantee, ties) -> dict[str, list]:
    """Per metric, (role, key, plain value, value of each unit-weight resample by the
    bootstrap, the resampled form's or None) for one case, every role it applies to."""
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
    found: dict[str, list] = {name: [] for name in METRICS}
    roles = (("id", ids, id_draws), ("heldout", ids, id_draws), ("ood", ood, ood_draws))
    for role, out, draws in roles:
        inputs = MetricInputs(out, ids, [1.0, 2.5], settings, point)
        every = resampled_values(inputs, role, draws, id_draws)
        resampled = Resampled(inputs, draws, id_draws)
        for name, entry in metric_entries().items():
            if role not in entry.roles:
                continue
            fast = entry.resampled(resampled) if entry.resampled is not None else None
            for key, value in entry.compute(inputs).items():
                boot = every.get(key)
                found[name].append((role, key, value, boot, None if fast is None else fast[key]))
    return found


@pytest.fixture(scope="module")
def forms() -> dict[str, list]:
    """Per metric, what ``_case_forms`` found over every case (the case's id first)."""
    found: dict[str, list] = {name: [] for name in METRICS}
    for case in CASES:
        for name, values in _case_forms(*case.values).items():
            found[name] += [(case.id, *v) for v in values]
    return found


@pytest.mark.parametrize("name", METRICS)
def test_plain_and_unit_weight_resampled_forms_agree(forms, name):
    # every metric reports a value in some case (no guarantee: no bound; an OOD target: no
    # risk or coverage operating point; the cases together cover them all)
    assert forms[name], f"{name}: no value in any case"
    for case, role, key, value, every, fast in forms[name]:
        assert every is not None, (case, role, key)  # the bootstrap reports it too
        for b in range(2):
            assert every[b].item() == pytest.approx(value, abs=1e-10, nan_ok=True), (case, key)
            if fast is not None:
                assert fast[b].item() == pytest.approx(value, abs=1e-10, nan_ok=True), (case, key)


@pytest.mark.parametrize("name", METRICS)
def test_every_key_a_metric_reports_has_its_direction(forms, name):
    entry = metric_entries()[name]
    for _, _, key, _, _, _ in forms[name]:
        assert higher_is_better(key) == entry.higher_is_better, key


def _ensemble_case(seed: int = 6) -> dict[str, EnsembleLogits]:
    """Two members on every dataset role (the OOD set unlabelled, without a signal)."""
    gen = torch.Generator().manual_seed(seed)
    data = {}
    for name, n in (("held", 400), ("test", 300), ("shifted", 200), ("far", 200)):
        targets = torch.randint(CLASSES, (n,), generator=gen)
        signal = torch.nn.functional.one_hot(targets, CLASSES).float() * 3
        if name == "far":
            signal, targets = torch.zeros(n, CLASSES), torch.full((n,), -1)
        noise = 1.5 if name != "shifted" else 3.0
        logits = [signal + noise * torch.randn(n, CLASSES, generator=gen) for _ in range(2)]
        data[name] = EnsembleLogits(logits, targets)
    return data


@pytest.fixture(scope="module")
def reported_roles() -> dict[str, set[str]]:
    """Per metric, the roles of the datasets the offline driver reported it on, over a
    guaranteed risk target and an OOD target."""
    roles = {"held": "heldout", "test": "id", "shifted": "shift", "far": "ood"}
    found: dict[str, set[str]] = {name: set() for name in METRICS}
    families = {name.split("@")[0]: name for name in METRICS}
    for target, guarantee in (("risk@80", 0.1), ("fpr@90", None)):
        rows, _, _ = evaluate_experiment(
            _ensemble_case(),
            roles,
            [1.0, 2.0],
            list(reference_policies()),
            policy_settings=PolicySettings(target, guarantee=guarantee),
            metric_settings=MetricSettings(target=target, guarantee=guarantee),
        )
        for r in rows:
            found[families[r["metric"].split("@")[0]]].add(r["role"])
    return found


@pytest.mark.parametrize("name", METRICS)
def test_a_metric_is_reported_on_exactly_its_roles(reported_roles, name):
    assert reported_roles[name] == set(metric_entries()[name].roles)


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
