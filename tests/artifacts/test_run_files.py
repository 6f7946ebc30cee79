"""A user's file in an output folder is never deleted: not at the swap, not when a run edited
since is replaced, not when a kill between the exchange and the clean-up left the earlier run
in a staging folder; and a symbolically linked output folder is written through."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from window_cascades.artifacts.run_files import RUN_FILES_LIST, listed_run_files
from window_cascades.artifacts.run_folder import check_output_folder, staged_run_folder


def write_run(folder, text: str, overwrite: bool = True, drop: str | None = None) -> None:
    """A run into ``folder``; ``drop``: a user's file put into it while the run works."""
    check_output_folder(folder, overwrite)
    if drop:
        (folder / drop).write_bytes(b"mine")
    with staged_run_folder(folder) as staging:
        (staging / "metrics.csv").write_text(text)
        (staging / "report.md").write_text(f"# {text}\n")
        (staging / "some_new_plot.png").write_bytes(b"png " + text.encode())


def beside(tmp_path, name: str = "out") -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(f".{name}."))


def test_the_run_lists_its_files_and_only_those_unchanged_are_deleted(tmp_path, capsys):
    out = tmp_path / "out"
    write_run(out, "first", overwrite=False)
    listed = listed_run_files(out)
    assert sorted(listed) == ["metrics.csv", "report.md", "some_new_plot.png"]
    assert listed["metrics.csv"]["size"] == len("first")
    (out / "report.md").write_text("# first, with my notes\n")  # a run file edited since
    write_run(out, "second")
    assert (out / "metrics.csv").read_text() == "second"
    (kept,) = [tmp_path / n for n in beside(tmp_path) if ".kept-" in n]
    assert sorted(p.name for p in kept.iterdir()) == ["report.md"]
    assert (kept / "report.md").read_text() == "# first, with my notes\n"
    assert f"(report.md); they were not deleted: moved to {kept}" in capsys.readouterr().err


def test_a_user_file_survives_a_kill_between_the_exchange_and_the_clean_up(tmp_path, capsys):
    """The run stops right after the exchange (os._exit: no finally, no atexit): the staging
    folder then holds the earlier run and the file the user put there during the run. The next
    claim deletes the earlier run's files and keeps the user's, named."""
    out = tmp_path / "out"
    write_run(out, "first", overwrite=False)
    script = (  # the user's my_figure.png is put there during the run
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[2]);"
        "from tests.artifacts.test_run_files import write_run;"
        "write_run(Path(sys.argv[1]), 'x', drop='my_figure.png')"
    )
    env = {**os.environ, "WINDOW_CASCADES_FAULT": "swapped:exit"}
    root = str(__import__("tests.conftest").conftest.ROOT)
    proc = subprocess.run([sys.executable, "-c", script, str(out), root], env=env, timeout=120)
    assert proc.returncode == 99  # killed at the fault point
    (left,) = [tmp_path / n for n in beside(tmp_path) if ".staging-" in n]
    assert (left / "my_figure.png").read_bytes() == b"mine" and (left / RUN_FILES_LIST).exists()
    assert (out / "metrics.csv").read_text() == "x"  # the new run is in place
    write_run(out, "next")  # the next claim cleans up
    (kept,) = [tmp_path / n for n in beside(tmp_path) if ".kept-" in n]
    assert sorted(p.name for p in kept.iterdir()) == ["my_figure.png"]
    assert (kept / "my_figure.png").read_bytes() == b"mine"
    err = capsys.readouterr().err
    assert f"they were not deleted: moved to {kept}" in err and f"note: removed {left}" in err
    assert [n for n in beside(tmp_path) if ".staging-" in n] == []


def test_a_symlinked_output_folder_is_written_through(tmp_path, capsys):
    real = tmp_path / "scratch" / "results"
    real.parent.mkdir()
    link = tmp_path / "out"
    link.symlink_to(real, target_is_directory=True)
    stale = tmp_path / ".out.staging-999999999-abc"  # an earlier release's debris: a link
    stale.symlink_to(real.parent, target_is_directory=True)
    write_run(link, "first", overwrite=False)
    err = capsys.readouterr()
    assert f"writing through it into {real}" in err.out
    assert f"note: removed {stale}" in err.err and not stale.is_symlink()
    write_run(link, "second")
    assert link.is_symlink() and link.resolve() == real
    assert (real / "metrics.csv").read_text() == "second"
    assert beside(tmp_path) == [] and beside(real.parent, "results") == []
    assert "removed" not in capsys.readouterr().err  # nothing left to remove, nothing said
    assert json.loads((real / RUN_FILES_LIST).read_text())["files"]["metrics.csv"]["size"] == 6


def test_an_edited_fitted_record_is_found_and_refused(tmp_path):
    """fitted_cascade.json edited after its run is found by its listed SHA-256 (a same-size
    edit too); an unedited one, a folder without the list and a file the run did not list
    are not."""
    import pytest

    from window_cascades.artifacts.run_files import (
        check_fitted_record_unedited,
        edited_run_files,
        write_run_files_list,
    )

    record = tmp_path / "fitted_cascade.json"
    record.write_text('{"bounds": [0.7, 0.9]}')
    assert edited_run_files(tmp_path, ["fitted_cascade.json"]) == []  # no list: an old run
    write_run_files_list(tmp_path)
    check_fitted_record_unedited(tmp_path, "cascade.ckpt")
    (tmp_path / "notes.txt").write_text("mine")
    assert edited_run_files(tmp_path, ["fitted_cascade.json", "notes.txt"]) == []
    record.write_text('{"bounds": [0.1, 0.9]}')  # same size
    assert edited_run_files(tmp_path, ["fitted_cascade.json"]) == ["fitted_cascade.json"]
    with pytest.raises(ValueError, match="was edited after the run that wrote it"):
        check_fitted_record_unedited(tmp_path, "cascade.ckpt")
