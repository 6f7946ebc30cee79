"""``window-cascades submit``: cluster options passed through, job names, the evaluation job's
own resources and ``%``-safe log paths, all as ``--dry-run`` shows them (no Slurm needed)."""

from __future__ import annotations

import shlex

import pytest

from tests.conftest import QUICKSTART
from window_cascades.commands.slurm_submit import DEFAULT_EVAL_TIME, main


def experiment(folder, name="digits-ab") -> str:
    path = folder / "exp.yaml"
    path.write_text(
        f"experiment: {name}\nout: runs/exp\nseeds: [0, 1]\n"
        f"member_config: {QUICKSTART / 'member.yaml'}\n"
        f"cascade_config: {QUICKSTART / 'cascade.yaml'}\n"
    )
    return str(path)


def dry_run(capsys, *argv: str) -> tuple[list[str], list[str]]:
    assert main([*argv, "--dry-run"], "window-cascades submit") == 0
    train, evaluate = capsys.readouterr().out.splitlines()
    return shlex.split(train), shlex.split(evaluate)


def before_script(command: list[str]) -> list[str]:
    """The sbatch options of a command line (those before the job script)."""
    return command[: next(i for i, a in enumerate(command) if a.endswith(".sbatch"))]


def test_any_sbatch_option_passes_through_to_both_jobs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = experiment(tmp_path)
    train, evaluate = dry_run(
        capsys,
        config,
        "--constraint",
        "a100",
        "--exclude=node7",
        "--mail-type=END",
        "--mail-user",
        "me@example.org",
        "--exclusive",
        "--reservation",
        "r1",
        "--sbatch-arg=--comment=ablation",
        "--sbatch-arg",
        "--licenses=scratch",
        "--member-sbatch-arg=--requeue",
        "--eval-sbatch-arg=--mem-per-gpu=20G",
    )
    passed = [
        "--constraint=a100",
        "--exclude=node7",
        "--mail-type=END",
        "--mail-user=me@example.org",
        "--exclusive",
        "--reservation=r1",
        "--comment=ablation",
        "--licenses=scratch",
    ]
    options = before_script(train)
    assert options[-len(passed) - 1 :] == [*passed, "--requeue"]  # after submit's own
    assert before_script(evaluate)[-len(passed) - 1 :] == [*passed, "--mem-per-gpu=20G"]
    assert "--requeue" not in evaluate and "--mem-per-gpu=20G" not in train
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.yaml"]  # nothing written


def test_gpu_type_job_names_and_the_evaluation_jobs_own_resources(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = experiment(tmp_path)
    train, evaluate = dry_run(capsys, config, "--gpus-per-node", "a100:4", "--time", "1-00:00:00")
    assert "--job-name=wc-digits-ab-members" in train
    assert "--gres=gpu:a100:4" in train and "--ntasks-per-node=4" in train
    assert "--member-arg=--trainer.devices=4" in train
    # the evaluation: one node, one task, one GPU of that type, its own time limit, and none
    # of the members' device or node counts
    assert "--job-name=wc-digits-ab-evaluate" in evaluate
    for option in (f"--time={DEFAULT_EVAL_TIME}", "--nodes=1", "--ntasks=1", "--gres=gpu:a100:1"):
        assert option in evaluate, option
    assert not [a for a in evaluate if "trainer.devices" in a or "trainer.num_nodes" in a]
    train, evaluate = dry_run(capsys, config, "--job-name", "myexp", "--eval-time", "30:00")
    assert "--job-name=myexp-members" in train and "--job-name=myexp-evaluate" in evaluate
    assert "--time=30:00" in evaluate and not [a for a in train if a.startswith("--time")]


def test_experiment_names_are_safe_job_names(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    train, _ = dry_run(capsys, experiment(tmp_path, name="'my run/2'"))
    assert "--job-name=wc-my_run_2-members" in train


def test_a_percent_in_out_reaches_sbatch_as_a_literal_percent(tmp_path, monkeypatch, capsys):
    """sbatch expands %j, %A, ... in --output; the folder's own % is written %% there and
    stays as it is for the pipeline, so the logs land in <out>/slurm."""
    monkeypatch.chdir(tmp_path)
    train, evaluate = dry_run(capsys, experiment(tmp_path), "--out", "outputs/run%j")
    assert "--output=outputs/run%%j/slurm/members_%A_%a.out" in train
    assert "--output=outputs/run%%j/slurm/evaluate_%j.out" in evaluate
    assert train[train.index("--out") + 1] == "outputs/run%j"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--constrant", "a100"],
            "--constrant: not a submit or sbatch option (did you mean --constraint?)",
        ),
        (["--array=0-3"], "--array: set by submit itself"),
        (["--output", "x.log"], "--output: set by submit itself (logs go to <out>/slurm/"),
        (
            ["--sbatch-arg=constraint=a100"],
            "--sbatch-arg constraint=a100: expected an sbatch long option",
        ),
        (
            ["--eval-sbatch-arg=--dependency=afterok:1"],
            "--eval-sbatch-arg --dependency=afterok:1: set by submit itself",
        ),
        (["--gpus-per-node", "a100:x"], "argument --gpus-per-node: expected [TYPE:]COUNT"),
    ],
)
def test_options_it_cannot_take_are_refused_in_one_line(
    tmp_path, monkeypatch, capsys, argv, message
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main([experiment(tmp_path), "--dry-run", *argv], "window-cascades submit")
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"window-cascades submit: error: {message}" in err, err
