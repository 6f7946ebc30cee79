"""A run's outputs are one unit: refused over an earlier run unless asked, replaced whole,
never mixed, and path problems are messages."""

import os

import pytest

from tests.regression_case import ARGS, write_case
from window_cascades.artifacts.run_files import RUN_FILES_LIST
from window_cascades.artifacts.run_folder import (
    OutputFolderError,
    check_output_folder,
    staged_run_folder,
)
from window_cascades.commands.offline import main


@pytest.fixture(scope="module")
def logits(tmp_path_factory):
    return write_case(tmp_path_factory.mktemp("case") / "logits")


def run(logits, out, *extra):
    return main(["--logits-dir", str(logits), *ARGS, "--out", str(out), *extra])


def test_an_earlier_run_is_kept_unless_overwrite_and_then_replaced_whole(logits, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(logits, out) == 0
    plots = sorted(p.name for p in out.glob("*.png"))
    assert plots and (out / RUN_FILES_LIST).is_file()
    before = (out / "metrics.csv").read_text()
    assert run(logits, out, "--width", "0.3") == 2
    err = capsys.readouterr().err
    assert "holds an earlier run" in err and "pass --overwrite" in err
    assert (out / "metrics.csv").read_text() == before  # untouched
    assert run(logits, out, "--width", "0.3", "--overwrite", "--no-plots") == 0
    assert not list(out.glob("*.png"))  # the earlier run's plots are gone: replaced whole
    assert "w=0.3" in (out / "metrics.csv").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging left behind


def test_a_failure_while_writing_leaves_the_earlier_run_and_no_staging(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.csv").write_text("earlier\n")
    (out / "summary.json").write_text("{}\n")
    with pytest.raises(RuntimeError), staged_run_folder(out) as staging:
        (staging / "metrics.csv").write_text("new\n")
        raise RuntimeError("interrupted between two files")
    assert (out / "metrics.csv").read_text() == "earlier\n"
    assert (out / "summary.json").read_text() == "{}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_output_path_problems_are_messages(logits, tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert run(logits, a_file) == 2
    assert f"--out {a_file} is a file" in capsys.readouterr().err
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "notes.txt").write_text("mine")
    assert run(logits, mixed, "--overwrite") == 2
    assert "not results of an earlier run (notes.txt)" in capsys.readouterr().err
    assert (mixed / "notes.txt").read_text() == "mine"  # never replaced, even with --overwrite
    with pytest.raises(OutputFolderError, match="cannot create"):
        check_output_folder(a_file / "sub" / "out", overwrite=False)


def start_offline(logits, out, marker, fault="swap:wait", *extra):
    """The offline evaluator in a subprocess, paused at ``fault`` until ``marker`` is removed."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {
        **os.environ,
        "WINDOW_CASCADES_FAULT": fault,
        "WINDOW_CASCADES_FAULT_MARKER": str(marker),
    }
    return subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "scripts" / "evaluate_logits.py"),
            "--logits-dir",
            str(logits),
            *ARGS,
            "--out",
            str(out),
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path, proc, timeout=300):
    import time

    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.slow  # two evaluator processes per attempt
@pytest.mark.parametrize("attempt", range(2))
def test_a_second_run_into_a_claimed_folder_is_refused_and_foreign_files_are_kept(
    logits, tmp_path, capsys, attempt
):
    out, marker = tmp_path / "out", tmp_path / "paused"
    assert run(logits, out) == 0
    earlier = (out / "metrics.csv").read_text()
    first = start_offline(logits, out, marker, "swap:wait", "--overwrite", "--width", "0.3")
    wait_for(marker, first)  # the first run is about to swap its results in
    assert run(logits, out, "--overwrite") == 2  # a second run meanwhile: refused
    err = capsys.readouterr().err
    assert f"--out {out} is in use by another run (pid {first.pid}," in err
    assert (out / "metrics.csv").read_text() == earlier
    (out / "notes.txt").write_text("mine")  # put there while the first run works
    marker.unlink()  # let it swap
    _, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err
    assert "w=0.3" in (out / "metrics.csv").read_text() and not (out / "notes.txt").exists()
    kept = [p for p in tmp_path.iterdir() if p.name.startswith(".out.kept-")]
    assert len(kept) == 1 and (kept[0] / "notes.txt").read_text() == "mine"
    assert sorted(kept[0].iterdir()) == [kept[0] / "notes.txt"]  # the earlier run: deleted
    assert f"they were not deleted: moved to {kept[0]}" in first_err
    assert run(logits, out, "--overwrite") == 0  # released: the folder takes the next run
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != kept[0].name) == ["out"]


@pytest.mark.slow  # three evaluator processes
def test_staging_is_removed_on_sigterm_and_a_hard_kill_s_is_removed_by_the_next_run(
    logits, tmp_path, capsys
):
    import signal

    out, marker = tmp_path / "out", tmp_path / "paused"
    # SIGTERM while the staging folder is complete: a Python-level exit, status 143, no debris
    term = start_offline(logits, out, marker, "swap:wait")
    wait_for(marker, term)
    names = sorted(p.name for p in tmp_path.glob(".out.*"))
    assert names[0] == ".out.lock" and names[1].startswith(f".out.staging-{term.pid}-")
    term.send_signal(signal.SIGTERM)
    _, err = term.communicate(timeout=300)
    assert term.returncode == 143 and "error: evaluation interrupted by SIGTERM" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["paused"]  # no staging, no lock
    marker.unlink()
    # a hard kill (os._exit) at the same point leaves its staging folder, named by its pid
    killed = start_offline(logits, out, marker, "swap:exit")
    assert killed.wait(timeout=300) == 99
    left = list(tmp_path.glob(".out.staging-*"))
    assert len(left) == 1 and left[0].name.startswith(f".out.staging-{killed.pid}-")
    # one whose process still runs is kept, with a notice
    alive = tmp_path / f".out.staging-{os.getppid()}-abc"
    alive.mkdir()
    assert run(logits, out) == 0
    err = capsys.readouterr().err
    assert (
        f"note: removed {left[0]}, an unfinished staging folder left by process {killed.pid}" in err
    )
    assert f"note: kept {alive}: left by process {os.getppid()}, which is still running" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name, "out"]
