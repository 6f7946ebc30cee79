"""``window-cascades pipeline --step``: the pipeline's steps, and the option's old name
``--stage``, which job scripts written before the rename still pass."""

from __future__ import annotations

import pytest

from tests.conftest import QUICKSTART
from window_cascades.commands.pipeline_command import main

PIPELINE_CFG = str(QUICKSTART / "pipeline.yaml")


def test_step_member_needs_a_member_index(capsys, monkeypatch):
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID", raising=False)
    assert main(["--config", PIPELINE_CFG, "--step", "member"]) == 2
    err = capsys.readouterr().err.splitlines()[0]
    assert err == "error: --step member needs --member I, an array task or --parallel-members"


def test_the_old_name_stage_still_runs_the_step_with_a_notice(capsys, monkeypatch):
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID", raising=False)
    assert main(["--config", PIPELINE_CFG, "--stage", "member"]) == 2
    notice, error = capsys.readouterr().err.splitlines()[:2]
    assert notice == "note: --stage is now --step"
    assert error.startswith("error: --step member needs --member I")


def test_step_and_its_old_name_together_are_refused(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--stage", "member", "--step", "evaluate"], "window-cascades pipeline")
    assert stop.value.code == 2
    assert capsys.readouterr().err.endswith(
        "window-cascades pipeline: error: give --step only (--stage is its old name)\n"
    )


def test_help_names_the_steps_and_hides_the_old_name(capsys):
    with pytest.raises(SystemExit):
        main(["--help"], "window-cascades pipeline")
    shown = capsys.readouterr().out
    assert "--step {all,member,evaluate}" in shown
    assert "--stage" not in shown


def _pipeline_file(tmp_path, replace: bool | str | None) -> str:
    """The quick start's pipeline file with ``replace_results`` set (None: left out)."""
    text = (QUICKSTART / "pipeline.yaml").read_text()
    lines = [ln for ln in text.splitlines() if not ln.startswith((" ", "replace_results"))]
    if replace is not None:
        lines.append(f"replace_results: {replace}")
    path = tmp_path / "pipeline.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.parametrize("replace", [True, None])
def test_a_second_run_replaces_the_results_only_when_the_config_says_so(
    replace, tmp_path, capsys, monkeypatch
):
    """The quick start runs again (its earlier results replaced, said in one line); an
    experiment of a user's own still refuses an earlier evaluation without --overwrite."""
    from window_cascades.commands import experiment

    monkeypatch.chdir(QUICKSTART.parents[1])  # the step configs are named from the root
    ran = []
    monkeypatch.setattr(experiment, "run_all", lambda cfg, *a: ran.append(cfg["out"]))
    results = tmp_path / "out" / "results"
    results.mkdir(parents=True)
    (results / "metrics.csv").write_text("earlier\n")
    config = _pipeline_file(tmp_path, replace)
    code = main(["--config", config, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    if replace:
        assert code == 0 and ran == [str(tmp_path / "out")]
        assert err.splitlines() == [
            f"note: replacing the earlier results in {results} (replace_results: true in "
            f"{config}); finished members are reused, not retrained"
        ]
    else:
        assert code == 2 and ran == []
        assert "holds an earlier run" in err and "--overwrite" in err


def test_replace_results_must_be_a_boolean(tmp_path, capsys):
    config = _pipeline_file(tmp_path, "'yes'")
    assert main(["--config", config]) == 2
    assert capsys.readouterr().err.splitlines()[0] == (
        f"error: {config}: replace_results must be true or false, got 'yes'"
    )


def test_the_quick_start_runs_again():
    from window_cascades.commands.pipeline_config import load_pipeline_config

    assert load_pipeline_config(PIPELINE_CFG)["replace_results"] is True
