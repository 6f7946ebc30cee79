"""A run's outputs are one unit: refused over an earlier run unless asked, replaced whole,
never mixed, and path problems are messages."""

import pytest

from artifacts.run_folder import OutputFolderError, check_output_folder, staged_run_folder
from commands.offline import main
from tests.regression_case import ARGS, write_case


@pytest.fixture(scope="module")
def logits(tmp_path_factory):
    return write_case(tmp_path_factory.mktemp("case") / "logits")


def run(logits, out, *extra):
    return main(["--logits-dir", str(logits), *ARGS, "--out", str(out), *extra])


def test_an_earlier_run_is_kept_unless_overwrite_and_then_replaced_whole(logits, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(logits, out) == 0
    (out / "stale_plot.png").write_bytes(b"from another run")
    before = (out / "metrics.csv").read_text()
    assert run(logits, out, "--width", "0.3") == 2
    err = capsys.readouterr().err
    assert "holds an earlier run" in err and "pass --overwrite" in err
    assert (out / "metrics.csv").read_text() == before  # untouched
    assert run(logits, out, "--width", "0.3", "--overwrite") == 0
    assert not (out / "stale_plot.png").exists()  # the earlier run is gone as a whole
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
