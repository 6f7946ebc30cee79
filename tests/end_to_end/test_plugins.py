"""A user's own policy and metric, in their own file outside the repository, run through the
command (``python -m window_cascades``, as the installed ``window-cascades``) with ``--plugin``;
and a plugin installed with an entry point, with none.

The policy and metric files are CONTRIBUTING.md's own examples ("Add a policy", "Add a
metric"), read from it, so the recipe cannot drift from what works.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.regression_case import write_case

CASE = ["--members", "m0", "m1", "m2", "--heldout", "held", "--id", "test"]
CASE += ["--shift", "noisy", "--ood", "far"]


def contributing_example(section: str) -> str:
    """The first Python block of CONTRIBUTING.md's ``## <section>``."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    part = text[text.index(f"## {section}") :]
    block = re.search(r"```python\n(.*?)```", part, re.S).group(1)
    lines = block.splitlines()
    indent = min(len(s) - len(s.lstrip()) for s in lines if s.strip())
    return "\n".join(s[indent:] for s in lines) + "\n"


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder outside the repository with the regression case's cached logits."""
    assert ROOT not in tmp_path.parents
    write_case(tmp_path / "logits")
    return tmp_path


def command(folder: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "window_cascades", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def metric_rows(out: Path) -> list[dict]:
    with open(out / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def evaluate(folder: Path, plugin: str, *extra: str) -> subprocess.CompletedProcess:
    return command(
        folder,
        "evaluate-logits",
        "--plugin",
        plugin,
        "--logits-dir",
        "logits",
        *CASE,
        "--out",
        "out",
        "--quiet",
        *extra,
    )


POLICIES = ["--policies", "single,ensemble,window,lowest_share"]


def check_lowest_share_reported(folder: Path, settings: set[str]) -> None:
    rows = [r for r in metric_rows(folder / "out") if r["policy"] == "lowest_share"]
    assert {r["setting"] for r in rows} == settings
    assert {r["dataset"] for r in rows} == {"held", "test", "noisy", "far"}
    held_cost = {
        r["setting"]: float(r["value"])
        for r in rows
        if r["dataset"] == "held" and r["metric"] == "exit_frac@1"
    }
    # the least confident top_share of the held-out split is passed on at stage 1
    for setting, exits in held_cost.items():
        share = float(setting.removeprefix("share="))
        assert exits == pytest.approx(1 - share, abs=0.01)
    assert "lowest_share" in (folder / "out" / "report.md").read_text()


def test_the_contributing_policy_runs_from_a_folder_outside_the_repository(outside):
    (outside / "my_policies.py").write_text(contributing_example("Add a policy"))
    listed = command(outside, "evaluate-logits", "--plugin", "my_policies.py", "--list-policies")
    assert listed.returncode == 0, listed.stderr
    assert (
        "| `lowest_share` | the least confident `top_share` of held-out scores | `top_share` |"
        in (listed.stdout)
    )
    shown = command(outside, "evaluate-logits", "--plugin", "my_policies.py", "--help")
    assert "--top-share TOP_SHARE [TOP_SHARE ...]" in shown.stdout
    assert "--plugin PATH_OR_MODULE" in shown.stdout
    # fpr@95: cost-to-target, which the defaults run, takes no part at an OOD target
    done = evaluate(outside, "my_policies.py", *POLICIES, "--target", "fpr@95")
    assert done.returncode == 0, done.stderr
    check_lowest_share_reported(outside, {"share=0.25"})


SLOW = "subprocess runs of the evaluator, about 7 s each: the fast loop runs the first one"


@pytest.mark.slow  # see SLOW
@pytest.mark.parametrize("target", ["cov@5", "cov@10"])
def test_the_contributing_policy_at_a_labelled_target_with_its_cost_grid(outside, target):
    """Swept (at the default target) or with its defaults (at cov@10): cost-to-target, run by
    the default --gain-shares, tries the values of the policy's declared cost grid."""
    (outside / "my_policies.py").write_text(contributing_example("Add a policy"))
    swept = target == "cov@5"
    sweep = ["--top-share", "0.1", "0.3"] if swept else []
    done = evaluate(outside, "my_policies.py", *POLICIES, "--target", target, *sweep)
    assert done.returncode == 0, done.stderr
    check_lowest_share_reported(outside, {"share=0.1", "share=0.3"} if swept else {"share=0.25"})
    summary = json.loads((outside / "out" / "summary.json").read_text())
    found = [c for c in summary["cost_to_target"] if c["policy"] == "lowest_share"]
    assert [c["share"] for c in found] == [0.5, 0.75, 0.9] and found[0]["knob"] == "top_share"


@pytest.mark.slow  # see SLOW
def test_a_plugin_policy_with_its_own_parameter_unswept_at_the_default_target(outside):
    text = contributing_example("Add a policy").replace('    sweep="top_share",\n', "")
    assert "sweep=" not in text
    (outside / "my_policies.py").write_text(text)
    done = evaluate(outside, "my_policies.py", *POLICIES, "--top-share", "0.4")
    assert done.returncode == 0, done.stderr
    check_lowest_share_reported(outside, {"share=0.4"})


@pytest.mark.slow  # see SLOW
def test_a_plugin_metric_is_reported_for_its_roles(outside):
    (outside / "my_metric.py").write_text(contributing_example("Add a metric"))
    done = evaluate(outside, "my_metric.py", "--bootstrap", "20")
    assert done.returncode == 0, done.stderr
    rows = [r for r in metric_rows(outside / "out") if r["metric"] == "mean_confidence"]
    assert {r["dataset"] for r in rows} == {"held", "test", "noisy"}  # labelled roles only
    assert {"single", "ensemble", "single_threshold", "window"} <= {r["policy"] for r in rows}
    for r in rows:
        assert 1 / 5 <= float(r["value"]) <= 1  # msp of 5 classes
        assert float(r["ci_low"]) <= float(r["value"]) <= float(r["ci_high"])


def test_a_plugin_that_fails_stops_the_command_in_one_line(outside):
    (outside / "broken.py").write_text("import torch\n\nraise ImportError('needs my_lib')\n")
    done = evaluate(outside, "broken.py")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --plugin broken.py: importing it raised ImportError: needs my_lib (broken.py:3)"
    ]
    assert not (outside / "out").exists()


@pytest.mark.slow  # see SLOW
def test_an_installed_plugin_loads_from_its_entry_point(outside):
    site = outside / "site"
    (site / "my_policies_dist-1.0.dist-info").mkdir(parents=True)
    (site / "my_policies_dist-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: my-policies-dist\nVersion: 1.0\n"
    )
    (site / "my_policies_dist-1.0.dist-info" / "entry_points.txt").write_text(
        "[window_cascades.plugins]\nlowest = installed_lowest_share\n"
    )
    (site / "installed_lowest_share.py").write_text(contributing_example("Add a policy"))
    env = {"PYTHONPATH": str(site)}
    listed = command(outside, "evaluate-logits", "--list-policies", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "`lowest_share`" in listed.stdout
    code = "import window_cascades as w; print(w.evaluate.__module__)"
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            code + "; from window_cascades.cascade.policy_registry import "
            "policy_names; print('lowest_share' in policy_names())",
        ],
        cwd=outside,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )
    assert shown.stdout.split() == ["window_cascades.api", "True"], shown.stderr


@pytest.mark.ddp
def test_the_online_cascade_runs_a_plugin_policy_in_every_ddp_process(
    tiny_members, tmp_path, cascade_test_args
):
    """The calibration callback fits the plugin policy with its parameter from
    ``--calibration.parameters``, and Lightning's DDP launch, which re-runs the command line,
    loads the plugin in the second process too (it would refuse the unknown policy)."""
    (tmp_path / "my_policies.py").write_text(contributing_example("Add a policy"))
    out = tmp_path / "results"
    args = cascade_test_args(
        tiny_members["data_cfg"],
        tiny_members["ckpts"],
        out,
        "--model.policies=[single, window, lowest_share]",
        "--calibration.parameters={top_share: 0.3}",
        "--trainer.strategy=ddp",
        "--trainer.devices=2",
        "--trainer.accelerator=cpu",
    )
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "evaluate_cascade.py"),
            "--plugin",
            "my_policies.py",
            *args,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    rows = [r for r in metric_rows(out) if r["policy"] == "lowest_share"]
    assert {r["setting"] for r in rows} == {"share=0.3"}
    held = next(
        float(r["value"])
        for r in rows
        if r["dataset"] == "digits_heldout" and r["metric"] == "exit_frac@1"
    )
    assert held == pytest.approx(0.7, abs=0.01)
