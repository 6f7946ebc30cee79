"""The public Python API (``window_cascades``): light to import, the same numbers as the
commands, and one set of decisions for logits in memory and for a deployed cascade."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import window_cascades as wc
from tests.regression_case import write_case
from window_cascades.artifacts.results import read_metrics_csv
from window_cascades.cascade.policy_registry import policy_names, unregister_policy
from window_cascades.commands.offline import main as evaluate_logits

ROLES = {"held": "heldout", "test": "id", "noisy": "shift", "far": "ood"}
POLICIES = ["single", "ensemble", "single_threshold", "window", "window_adjusted", "random"]


def test_import_window_cascades_imports_no_torch():
    code = (
        "import sys, window_cascades as w\n"
        "heavy = sorted(m for m in ('torch', 'lightning', 'numpy') if m in sys.modules)\n"
        "print(heavy, w.__version__, 'evaluate' in dir(w))\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split()[0] == "[]"
    assert shown.stdout.split()[-1] == "True"


def test_every_public_name_resolves_and_an_unknown_one_is_refused():
    for name in wc.__all__:
        assert getattr(wc, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'evaluat'"):
        wc.evaluat  # noqa: B018


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return write_case(tmp_path_factory.mktemp("case") / "logits")


def test_evaluate_in_memory_gives_the_rows_of_the_evaluate_logits_command(case, tmp_path):
    out = tmp_path / "out"
    args = [
        "--logits-dir",
        str(case),
        "--members",
        "m0",
        "m1",
        "m2",
        *("--heldout", "held", "--id", "test", "--shift", "noisy", "--ood", "far"),
        *("--policies", ",".join(POLICIES), "--target", "cov@10"),
        *("--width", "0.15", "--pass-fraction", "0.3", "--temperature-scaling"),
        *("--gain-shares", "--no-headroom", "--no-plots", "--quiet", "--out", str(out)),
    ]
    assert evaluate_logits(args) == 0
    command = {
        (r["dataset"], r["policy"], r["setting"], r["metric"]): r["value"]
        for r in read_metrics_csv(out / "metrics.csv")
    }
    logits = wc.load_logits(case, ["m0", "m1", "m2"], ROLES)
    assert logits.member_macs == [1e6, 2e6, 4e6]  # from each member's meta.json
    result = wc.evaluate(
        logits,
        POLICIES,
        target="cov@10",
        parameters={"width": 0.15, "pass_fraction": 0.3},
        temperature_scaling=True,
    )
    mine = {(r["dataset"], r["policy"], r["setting"], r["metric"]): r["value"] for r in result.rows}
    assert mine.keys() == command.keys()
    for key, value in command.items():
        assert mine[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert sorted(result.fitted.policies) == sorted(POLICIES)
    assert result.fitted.temperatures is not None


def test_logits_through_the_outputs_cache_give_the_rows_of_logits_in_memory(case, tmp_path):
    kwargs = dict(target="cov@10", parameters={"width": 0.15}, temperature_scaling=True)
    in_memory = wc.evaluate(wc.load_logits(case, ["m0", "m1", "m2"], ROLES), POLICIES, **kwargs)
    folder = wc.load_logits(case, ["m0", "m1", "m2"], ROLES, outputs_cache=tmp_path / "cache")
    assert isinstance(folder, wc.LogitsFolder) and folder.member_macs == [1e6, 2e6, 4e6]
    cached = wc.evaluate(folder, POLICIES, **kwargs)
    assert cached.rows == in_memory.rows
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(ROLES)
    fitted = wc.fit_cascade(folder, ["window"], **kwargs)
    assert fitted.policies["window"].to_dict() == in_memory.fitted.policies["window"].to_dict()
    with pytest.raises(ValueError, match="--score gen: its parameters"):
        wc.evaluate(folder, ["window"], score="gen")


def test_numpy_and_torch_inputs_give_the_same_rows():
    rng = np.random.default_rng(0)
    y = {"a": rng.integers(0, 4, 250), "b": rng.integers(0, 4, 250)}
    z = {d: [rng.normal(size=(250, 4)) + 2 * np.eye(4)[y[d]] for _ in range(2)] for d in y}
    roles = {"a": "heldout", "b": "id"}
    from_numpy = wc.evaluate(wc.Logits(z, roles, y), ["single", "window"])
    tensors = {d: [torch.from_numpy(m).float() for m in ms] for d, ms in z.items()}
    labels = {d: torch.from_numpy(v) for d, v in y.items()}
    from_torch = wc.evaluate(wc.Logits(tensors, roles, labels), ["single", "window"])
    assert from_numpy.rows == from_torch.rows
    assert wc.Logits(z, roles, y).data["a"].logits[0].dtype == torch.float32


def small_logits(**changes):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 250)
    z = [rng.normal(size=(250, 3)) for _ in range(2)]
    given = {
        "logits": {"val": z, "test": z},
        "roles": {"val": "heldout", "test": "id"},
        "labels": {"val": y, "test": y},
    }
    return wc.Logits(**{**given, **changes})


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"roles": {"val": "heldout", "test": "id", "far": "ood"}}, r"datasets \['far'\]"),
        ({"labels": {"val": np.zeros(250, dtype=int)}}, "dataset 'test' has role 'id' but 250"),
        ({"labels": {"val": np.zeros(250), "test": np.zeros(250)}}, "labels must be integers"),
        ({"member_macs": [1.0]}, "expected 2 costs > 0"),
        ({"members": ["a", "a"]}, "expected 2 distinct names"),
        (
            {"logits": {"val": [np.zeros((250, 3))] * 2, "test": [np.zeros((250, 3))]}},
            "every dataset needs the same members",
        ),
        (
            {"logits": {"val": [np.zeros((250, 3))] * 2, "test": [np.zeros((99, 3))] * 2}},
            r"logits\['test'\]\[0\].*targets must have shape \(99,\)",
        ),
        (
            {"logits": {"val": [np.full((250, 3), np.nan)] * 2, "test": [np.zeros((250, 3))] * 2}},
            r"logits\['val'\]\[0\].*NaN/Inf",
        ),
    ],
)
def test_logits_that_do_not_fit_are_refused_naming_the_field(changes, message):
    with pytest.raises(ValueError, match=message):
        small_logits(**changes)


def test_two_identical_members_are_refused():
    z = np.random.default_rng(2).normal(size=(250, 3))
    with pytest.raises(ValueError, match="identical held-out logits"):
        small_logits(logits={"val": [z, z], "test": [z, z]})


def test_fit_save_load_and_decide_on_logits(case, tmp_path):
    logits = wc.load_logits(case, ["m0", "m1"], ROLES)
    fitted = wc.fit_cascade(logits, ["window", "random"], target="cov@10")
    path = wc.save_fitted(fitted, tmp_path / "new" / "folder")
    assert path.name == "fitted_cascade.json"
    loaded = wc.load_fitted(path.parent, members=2)
    assert loaded.to_dict() == fitted.to_dict()
    test = logits.data["test"].logits
    for policy in ("window", "random"):
        decided, again = wc.decide(fitted, test, policy), wc.decide(loaded, test, policy)
        for key, value in decided.items():
            assert torch.equal(value, again[key]), (policy, key)
    with pytest.raises(ValueError, match="fitted for 2 member"):
        wc.load_fitted(path, members=3)


def test_decide_accepts_what_the_evaluation_reports_at_the_operating_point(case):
    """The operating point ``evaluate`` reports (``op_cov``: the share of a dataset above the
    threshold fitted on the held-out output) is the share ``decide`` accepts there, or flags as
    OOD first (the one outcome's precedence)."""
    logits = wc.load_logits(case, ["m0", "m1", "m2"], ROLES)
    result = wc.evaluate(logits, ["window", "single_threshold"], target="cov@10")
    for policy in ("window", "single_threshold"):
        for dataset in ("test", "noisy"):
            decided = wc.decide(result.fitted, logits.data[dataset].logits, policy)
            point = result.fitted.info["operating_points"][policy]
            above = decided["confidence"] >= point["accept"]  # accepted, or flagged OOD first
            assert torch.equal(decided["accepted"], above & ~decided["ood"])
            accepted = float(above.double().mean())
            assert accepted == pytest.approx(result.value("op_cov", policy, dataset), abs=1e-12)
            cost = float(
                decided["exit_stage"].sub(1).bincount(minlength=3).double()
                @ torch.tensor([1e6, 3e6, 7e6], dtype=torch.float64)
            ) / len(decided["exit_stage"])
            assert cost == pytest.approx(result.value("expected_macs", policy, dataset))


def test_a_policy_registered_by_an_import_is_evaluated(tmp_path):
    plugin = tmp_path / "my_policies.py"
    plugin.write_text(
        "from window_cascades import register_policy\n"
        "from window_cascades.cascade.builtin_policies import interval_policy\n\n"
        "@register_policy('below_median_api', 'the less confident half of held-out scores')\n"
        "def fit(inputs, settings):\n"
        "    stages = [{'lower': None, 'upper': float(c.median())} "
        "for c in inputs.stage_confidence]\n"
        "    return interval_policy('below_median_api', stages, 'median')\n"
    )
    try:
        (module,) = wc.load_plugins([plugin])
        assert module.fit is not None and "below_median_api" in policy_names()
        result = wc.evaluate(small_logits(), ["single", "below_median_api"])
        # half of the held-out samples reach the second member
        assert result.value("exit_frac@1", "below_median_api", "val") == pytest.approx(0.5)
        assert "below_median_api" in result.fitted.policies
    finally:
        if "below_median_api" in policy_names():
            unregister_policy("below_median_api")


def test_every_registered_policy_by_default_and_unknown_names_refused():
    result = wc.evaluate(small_logits(), target="risk@80")
    with_mixture = {"window_adjusted", "budget_window_adjusted"}  # no ood set: left out
    assert set(result.fitted.policies) == set(policy_names()) - with_mixture
    with pytest.raises(ValueError, match="unknown policy 'windw'"):
        wc.evaluate(small_logits(), ["windw"])
    with pytest.raises(ValueError, match="unknown policy parameter 'widht'"):
        wc.evaluate(small_logits(), ["window"], parameters={"widht": 0.1})


def test_load_cascade_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="cascade checkpoint not found"):
        wc.load_cascade(tmp_path / "cascade.ckpt")
