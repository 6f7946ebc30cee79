"""The registries keep their promise: every registered policy (and a plugin's, with a swept
cost knob of its own) runs through the offline evaluator with its default options at each kind
of target and is reported in metrics.csv and report.md; ``--list-policies`` lists them all."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import re

import pytest

from tests.regression_case import write_case
from window_cascades.artifacts.results import read_metrics_csv
from window_cascades.cascade.cost_to_target import has_cost_knob
from window_cascades.cascade.policy_registry import policy_names, policy_table, unregister_policy
from window_cascades.commands.offline import main as evaluate_logits

PLUGIN = "lowest_share"  # tests/policy_with_parameter.py: a one-file policy with a swept knob
POLICIES = [*(name for name in policy_names() if name != PLUGIN), PLUGIN]
TARGETS = ("cov@5", "cov@10", "risk@80", "fpr@95")
DATASETS = {"held": "heldout", "test": "id", "noisy": "shift", "far": "ood"}


@pytest.fixture(scope="module")
def with_plugin():
    """The registry with the plugin's policy in it, for this module's tests."""
    import tests.policy_with_parameter as plugin

    if PLUGIN not in policy_names():
        importlib.reload(plugin)
    yield
    unregister_policy(PLUGIN)


@pytest.fixture(scope="module")
def runs(with_plugin, tmp_path_factory):
    """One evaluate-logits run per target, of every registered policy, with the default
    options otherwise: target -> (exit status, output folder, what it printed on stderr)."""
    logits = write_case(tmp_path_factory.mktemp("contract") / "logits")
    found = {}
    for target in TARGETS:
        out = logits.parent / target.replace("@", "")
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            status = evaluate_logits(
                [
                    "--logits-dir",
                    str(logits),
                    "--members",
                    "m0",
                    "m1",
                    "--heldout",
                    "held",
                    "--id",
                    "test",
                    "--shift",
                    "noisy",
                    "--ood",
                    "far",
                    "--policies",
                    ",".join(policy_names()),
                    "--target",
                    target,
                    "--out",
                    str(out),
                    "--quiet",
                ]
            )
        found[target] = (status, out, err.getvalue())
    return found


@pytest.mark.slow  # four evaluate-logits runs of every policy, cost-to-target included (~1 min)
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("policy", POLICIES)
def test_every_policy_runs_with_the_default_options_and_is_reported(runs, policy, target):
    status, out, err = runs[target]
    assert status == 0, err
    rows = read_metrics_csv(out / "metrics.csv")
    mine = [r for r in rows if r["policy"] == policy]
    assert {r["dataset"] for r in mine} == set(DATASETS), policy
    target_set = "far" if target.startswith("fpr") else "test"
    assert any(r["dataset"] == target_set and r["metric"] == target for r in mine)
    report = (out / "report.md").read_text()
    results = report.split("## Results")[1].split("\n## ")[0]
    # one row per dataset table: its own, or one shared with the policies that gave identical
    # results ("single_threshold = window"), with an alias in brackets ("(= ...)")
    labels = re.findall(r"^\| ([^|]+?) \|", results, re.M)
    mine_rows = [lab for lab in labels if policy in re.sub(r" \(= [^)]*\)$", "", lab).split(" = ")]
    assert len(mine_rows) == len(DATASETS), (policy, labels)
    fitted = report.split("## Fitted policies")[1]
    assert re.search(rf"\b{re.escape(policy)}\b", fitted)
    # a family whose sweep declares a cost grid gets its cheapest settings per share of the
    # ensemble's held-out gain (an OOD target has no held-out gain: none)
    costs = json.loads((out / "summary.json").read_text())["cost_to_target"] or []
    families = {c["policy"] for c in costs}
    assert (policy in families) == (has_cost_knob(policy) and not target.startswith("fpr"))


def test_list_policies_shows_every_registered_policy(with_plugin, capsys):
    assert evaluate_logits(["--list-policies"]) == 0
    printed = capsys.readouterr().out
    assert policy_table() in printed
    for policy in POLICIES:
        assert f"| `{policy}` |" in printed
