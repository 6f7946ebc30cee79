"""Faults while a run writes its results: the output folder holds the earlier run or the new one
whole, the next run removes what a killed run left, and the next run succeeds.

Faults come from the test-only hook ``WINDOW_CASCADES_FAULT`` (a raise or a hard exit at a
named write phase) and from SIGKILL at random moments of a run (seeded: the same moments on
every run of the suite).
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.regression_case import ARGS, write_case
from window_cascades.artifacts.faults import FAULT_ENV

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore")]  # ~2 min: real runs


@pytest.fixture(scope="module")
def logits(tmp_path_factory) -> Path:
    return write_case(tmp_path_factory.mktemp("logits"))


def offline(logits: Path, out: Path, *extra: str, fault: str | None = None) -> subprocess.Popen:
    """The offline evaluator as a user runs it, in its own process."""
    env = {**os.environ}
    env.pop(FAULT_ENV, None)
    if fault:
        env[FAULT_ENV] = fault
    command = [
        sys.executable,
        str(ROOT / "scripts" / "evaluate_logits.py"),
        "--logits-dir",
        str(logits),
        *ARGS,
        "--out",
        str(out),
        "--overwrite",
        *extra,
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    _, err = proc.communicate(timeout=600)
    return proc.returncode, err.decode()


def unit(folder: Path) -> dict[str, str]:
    """The folder's files and their SHA-256 (a run's results are deterministic)."""
    if not folder.exists():
        return {}
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def leftovers(parent: Path, out: Path) -> list[str]:
    """Anything beside ``out`` that a run left: staging, lock, moved-aside folders."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{out.name}."))


def expected_units(logits: Path, root: Path, *extra: str) -> dict[str, dict[str, str]]:
    """The two units a faulted folder may hold: the earlier run (width 0.1) and the new one."""
    found = {}
    for name, width in (("old", "0.1"), ("new", "0.3")):
        code, err = finish(offline(logits, root / name, "--width", width, *extra))
        assert code == 0, err
        found[name] = unit(root / name)
    assert found["old"] != found["new"]
    return found


@pytest.fixture(scope="module")
def units(logits, tmp_path_factory) -> dict[str, dict[str, str]]:
    """Runs with plots (the random kills: more to write, more moments inside a write)."""
    return expected_units(logits, tmp_path_factory.mktemp("units"))


@pytest.fixture(scope="module")
def units_without_plots(logits, tmp_path_factory) -> dict[str, dict[str, str]]:
    """Runs without plots (the write phases: half the time per run)."""
    return expected_units(logits, tmp_path_factory.mktemp("units"), "--no-plots")


@pytest.mark.parametrize(
    "fault, expected",
    [
        ("swap:raise", "old"),
        ("swap:exit", "old"),
        ("swapped:raise", "new"),
        ("swapped:exit", "new"),
    ],
)
def test_a_fault_at_a_write_phase_leaves_one_unit_and_the_next_run_cleans_up(
    logits, units_without_plots, tmp_path, fault, expected
):
    out, units, no_plots = tmp_path / "out", units_without_plots, "--no-plots"
    assert finish(offline(logits, out, "--width", "0.1", no_plots))[0] == 0
    code, err = finish(offline(logits, out, "--width", "0.3", no_plots, fault=fault))
    assert code != 0, err
    assert unit(out) == units[expected]
    if fault.endswith("raise"):  # a Python-level failure: nothing left beside the folder
        assert leftovers(tmp_path, out) == [], err
    code, err = finish(offline(logits, out, "--width", "0.3", no_plots))
    assert code == 0, err
    assert unit(out) == units["new"]
    assert leftovers(tmp_path, out) == []


def test_twenty_random_kills_then_one_clean_run_leave_one_unit_and_no_debris(
    logits, units, tmp_path
):
    out = tmp_path / "out"
    started = time.monotonic()
    assert finish(offline(logits, out, "--width", "0.1"))[0] == 0
    span = time.monotonic() - started  # kill moments spread over one run's length
    draw = random.Random(22)
    widths, debris = ("0.3", "0.1"), []
    for k in range(20):
        before = set(tmp_path.glob(".out.staging-*"))  # left by earlier kills
        proc = offline(logits, out, "--width", widths[k % 2])
        if k % 2:  # at any moment of a run
            time.sleep(span * 1.1 * draw.random())
        else:  # while it writes: within 0.3 s of its staging folder's appearance
            while proc.poll() is None and not set(tmp_path.glob(".out.staging-*")) - before:
                time.sleep(0.01)
            time.sleep(0.3 * draw.random())
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=600)
        assert unit(out) in (units["old"], units["new"]), f"kill {k}"
        debris += [name for name in leftovers(tmp_path, out) if ".staging-" in name]
    assert debris, "no kill landed while a run was writing: the test checked no cleanup"
    code, err = finish(offline(logits, out, "--width", "0.3"))
    assert code == 0, err
    assert unit(out) == units["new"]
    assert leftovers(tmp_path, out) == []


def test_caching_killed_between_datasets_is_refused_then_cached_again(tiny_members, tmp_path):
    """A member's logits caching hard-killed after its first dataset's file: the mix of new
    and earlier files is refused naming a file; caching again makes the member readable."""
    import json
    import shutil

    from tests.conftest import QUICKSTART
    from window_cascades.artifacts.experiment_logits import load_experiment
    from window_cascades.commands.pipeline_steps import cache_logits, cache_logits_args

    logits = shutil.copytree(tiny_members["logits_dir"], tmp_path / "logits")
    meta = json.loads((logits / "m1" / "meta.json").read_text())
    roles = {"digits_heldout": "heldout", "digits_test": "id", "uniform_noise": "ood"}
    assert meta["datasets"][0] == "digits_heldout"  # the file written before the kill
    args = cache_logits_args(
        QUICKSTART / "member.yaml",
        tiny_members["ckpts"][1],
        logits,
        "m1",
        tiny_members["data_cfg"],
        ["--trainer.enable_progress_bar=false"],
    )
    env = {**os.environ, FAULT_ENV: "logits:exit"}
    killed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train_member.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == 99, killed.stderr[-3000:]
    first = logits / "m1" / f"{meta['datasets'][0]}.safetensors"
    with pytest.raises(ValueError, match="mix two runs") as err:
        load_experiment(logits, ["m0", "m1"], roles)
    assert str(err.value).startswith(f"{first}: written by another caching run than ")
    cache_logits(
        QUICKSTART / "member.yaml", tiny_members["ckpts"][1], logits, "m1", tiny_members["data_cfg"]
    )
    data, _ = load_experiment(logits, ["m0", "m1"], roles)
    assert set(data) == set(roles)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_sigterm_at_the_swap_with_a_users_file_publishes_and_keeps_the_file(logits, tmp_path):
    """SIGTERM at the moment of the swap (after the exchange, before the earlier run's files
    are deleted), while a user's file lies in the folder: the swap finishes, the new results
    are in place, the command exits 0 with a note (nothing is left unfinished), the user's file
    is kept beside the folder, named; a SIGTERM before the swap exits 143 with nothing new."""
    out, marker = tmp_path / "out", tmp_path / "paused"
    assert finish(offline(logits, out, "--width", "0.1", "--no-plots"))[0] == 0
    env_marker = {"WINDOW_CASCADES_FAULT_MARKER": str(marker)}
    os.environ.update(env_marker)
    try:
        proc = offline(logits, out, "--width", "0.3", "--no-plots", fault="swapped:wait")
        wait_for(marker, proc)
        # the exchange is done: the staging folder holds the earlier run, with the file the
        # user put into the folder during the run
        (staging,) = tmp_path.glob(".out.staging-*")
        (staging / "notes.txt").write_text("mine")
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        marker.unlink()  # let the clean-up go on
        code, err = finish(proc)
        assert code == 0, err
        assert "note: SIGTERM arrived while evaluation published its results" in err
        assert "w=0.3" in (out / "metrics.csv").read_text()
        (kept,) = tmp_path.glob(".out.kept-*")
        assert sorted(p.name for p in kept.iterdir()) == ["notes.txt"]
        (kept / "notes.txt").unlink()
        kept.rmdir()
        proc = offline(logits, out, "--width", "0.2", "--no-plots", fault="swap:wait")
        wait_for(marker, proc)  # complete in its staging folder, not swapped in yet
        proc.send_signal(signal.SIGTERM)
        code, err = finish(proc)
        marker.unlink(missing_ok=True)
    finally:
        for key in env_marker:
            os.environ.pop(key, None)
    assert code == 143 and "error: evaluation interrupted by SIGTERM" in err, err
    assert "w=0.3" in (out / "metrics.csv").read_text()  # nothing new published
    assert leftovers(tmp_path, out) == []
