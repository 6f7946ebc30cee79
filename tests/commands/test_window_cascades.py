"""``window-cascades``: one command whose subcommands are the user commands of ``scripts/``."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import QUICKSTART, ROOT
from tests.regression_case import ARGS, write_case
from window_cascades.commands.pipeline_config import load_pipeline_config
from window_cascades.commands.shipped_configs import CONFIGS, shipped_names
from window_cascades.commands.slurm_wait import job_report
from window_cascades.commands.window_cascades import SUBCOMMANDS, main


def test_help_lists_every_subcommand_and_mistakes_are_one_line(capsys):
    assert main(["--help"]) == 0
    shown = capsys.readouterr().out
    assert all(f"  {name} " in shown for name in SUBCOMMANDS)
    assert main([]) == 2  # no subcommand: the same list, and a usage error
    assert main(["evaluate_logits"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: unknown subcommand 'evaluate_logits' (did you mean 'evaluate-logits'?); "
        "expected one of init, pipeline, member, cascade, evaluate-logits, submit, readme-table"
    ]


@pytest.mark.slow  # six processes
def test_each_subcommand_runs_its_command_with_its_options(tmp_path):
    """Run as a user does, in a process of its own from another folder: the offline evaluator
    through the command writes what ``scripts/evaluate_logits.py`` writes; every other
    subcommand answers --help with its own program name."""
    logits = write_case(tmp_path / "logits")
    command = [sys.executable, "-m", "window_cascades"]
    env = {"PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [
            *command,
            "evaluate-logits",
            "--logits-dir",
            str(logits),
            *ARGS,
            "--no-plots",
            "--gain-shares",
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    script = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "evaluate_logits.py"),
            "--logits-dir",
            str(logits),
            *ARGS,
            "--no-plots",
            "--gain-shares",
            "--out",
            str(tmp_path / "script"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert script.returncode == 0, script.stderr[-2000:]
    for name in ("metrics.csv", "summary.json"):
        assert (tmp_path / "out" / name).read_text() == (tmp_path / "script" / name).read_text()
    for name in ("init", "pipeline", "member", "cascade", "submit", "readme-table"):
        shown = subprocess.run(
            [*command, name, "--help"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert shown.returncode == 0, (name, shown.stderr[-2000:])
        assert f"window-cascades {name}" in shown.stdout, (name, shown.stdout[:500])


def experiment_yaml(folder, seeds=(0, 1)) -> str:
    path = folder / "exp.yaml"
    path.write_text(
        f"out: runs/exp\nseeds: {list(seeds)}\nmember_config: {QUICKSTART / 'member.yaml'}\n"
        f"cascade_config: {QUICKSTART / 'cascade.yaml'}\n"
    )
    return str(path)


def test_submit_dry_run_prints_the_sbatch_commands_and_writes_nothing(
    tmp_path, monkeypatch, capsys
):
    """The options of scripts/slurm/submit.sh, mapped onto sbatch as it maps them; the jobs
    are the job scripts of the checkout (in a wheel: the shipped copies)."""
    monkeypatch.chdir(tmp_path)
    config = experiment_yaml(tmp_path, seeds=(0, 1, 2))
    train_job = str(ROOT / "scripts" / "slurm" / "train_members.sbatch")
    eval_job = str(ROOT / "scripts" / "slurm" / "evaluate.sbatch")
    argv = [
        "submit",
        config,
        "--dry-run",
        "--partition",
        "gpu",
        "--time",
        "30",
        "--eval-time",
        "10",
        "--gpus-per-node",
        "2",
        "--nodes",
        "2",
        "--logger",
        "wandb",
        "--",
        "--member-arg=--trainer.max_epochs=1",
    ]
    assert main(argv) == 0
    train, evaluate = [shlex.split(line) for line in capsys.readouterr().out.splitlines()]
    run_args = [config, "--logger", "wandb", "--member-arg=--trainer.max_epochs=1"]
    # the members' nodes and devices: the members' job only
    member_only = [f"--member-arg=--trainer.{a}" for a in ("num_nodes=2", "devices=2")]
    name = f"wc-{tmp_path.name}"  # the experiment: its config's folder name
    assert train == [
        "sbatch",
        "--parsable",
        "--partition=gpu",
        f"--job-name={name}-members",
        "--time=30",
        "--array=0-2",
        "--nodes=2",
        "--ntasks-per-node=2",
        "--output=runs/exp/slurm/members_%A_%a.out",
        "--gres=gpu:2",
        train_job,
        *run_args,
        *member_only,
    ]
    assert evaluate == [
        "sbatch",
        "--parsable",
        "--partition=gpu",
        f"--job-name={name}-evaluate",
        "--time=10",
        "--nodes=1",
        "--ntasks=1",
        "--gres=gpu:1",
        "--dependency=afterok:<members job>",
        "--kill-on-invalid-dep=yes",
        "--output=runs/exp/slurm/evaluate_%j.out",
        eval_job,
        *run_args,
    ]
    assert main(["submit", config, "--dry-run", "--parallel-members", "--out", "o"]) == 0
    train = shlex.split(capsys.readouterr().out.splitlines()[0])
    assert train[3:8] == [
        "--ntasks=3",
        "--nodes=1",
        "--ntasks-per-node=3",
        "--export=ALL,MEMBERS_IN_PARALLEL=1",
        "--output=o/slurm/members_%j.out",
    ]
    assert train[-3:] == [config, "--out", "o"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.yaml"]  # nothing written


def test_submit_mistakes_are_one_line_before_anything_is_submitted(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    assert main(["submit", "nowhere.yaml"]) == 2
    assert capsys.readouterr().err.startswith("error: pipeline config not found: nowhere.yaml")
    assert main(["submit", experiment_yaml(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        "error: sbatch not found: submit from a SLURM login node (or --dry-run)\n"
    )
    with pytest.raises(SystemExit) as exit_:
        main(["submit", experiment_yaml(tmp_path), "--nodes", "0"])
    assert exit_.value.code == 2
    assert "window-cascades submit: error: argument --nodes" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_wait_reports_each_job_members_first():
    """What --wait prints from `scontrol -o show job` (one line per array task)."""
    lines = [
        "JobId=13 JobName=wc-evaluate JobState=CANCELLED Reason=DependencyNeverSatisfied "
        "ExitCode=0:0 StdOut=/o/slurm/evaluate_13.out",
        "JobId=12 ArrayJobId=10 ArrayTaskId=10 JobState=FAILED Reason=NonZeroExitCode "
        "ExitCode=2:0 StdOut=/o/slurm/members_10_10.out",
        "JobId=11 ArrayJobId=10 ArrayTaskId=2 JobState=COMPLETED Reason=None ExitCode=0:0 "
        "StdOut=/o/slurm/members_10_2.out",
    ]
    rows, completed = job_report(lines, "13")
    assert not completed
    assert rows == [
        "members job 10_2: COMPLETED, exit 0:0, log /o/slurm/members_10_2.out",
        "members job 10_10: FAILED (NonZeroExitCode), exit 2:0, log /o/slurm/members_10_10.out",
        "evaluation job 13: CANCELLED (DependencyNeverSatisfied), exit 0:0, log "
        "/o/slurm/evaluate_13.out",
    ]
    assert job_report(lines[2:], "13") == ([rows[0]], True)


def test_submit_sh_is_the_same_command(tmp_path):
    """scripts/slurm/submit.sh runs `window-cascades submit` from the repository root."""
    config = experiment_yaml(tmp_path)
    env = {**os.environ, "PYTHON": sys.executable}
    args = [config, "--dry-run", "--tasks-per-node", "2", "--", "--overwrite"]
    shown = subprocess.run(
        ["bash", str(ROOT / "scripts" / "slurm" / "submit.sh"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    direct = subprocess.run(
        [sys.executable, "-m", "window_cascades", "submit", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.stdout == direct.stdout and "--ntasks-per-node=2" in shown.stdout
    bad = subprocess.run(
        ["bash", str(ROOT / "scripts" / "slurm" / "submit.sh"), config, "--nodez", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and (
        "submit.sh: error: --nodez: not a submit or sbatch option (did you mean --nodes?)"
        in bad.stderr
    )


def test_init_writes_the_shipped_quickstart_into_the_current_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert written == sorted(Path("configs/quickstart") / p.name for p in QUICKSTART.iterdir())
    for path in written:
        assert (tmp_path / path).read_bytes() == (ROOT / path).read_bytes()
    out = capsys.readouterr().out
    assert out.endswith(
        "next: window-cascades pipeline --config configs/quickstart/pipeline.yaml\n"
    )
    # its stage configs resolve from here, as in the repository
    cfg = load_pipeline_config("configs/quickstart/pipeline.yaml")
    assert cfg["member_config"] == "configs/quickstart/member.yaml"
    assert main(["init"]) == 0 and "kept configs/quickstart/data.yaml" in capsys.readouterr().out
    (tmp_path / "configs/quickstart/data.yaml").write_text("# mine\n")
    assert main(["init", "quickstart"]) == 2
    assert capsys.readouterr().err.startswith("error: configs/quickstart/data.yaml: already there")
    assert (tmp_path / "configs/quickstart/data.yaml").read_text() == "# mine\n"
    assert main(["init", "--force"]) == 0
    assert (tmp_path / "configs/quickstart/data.yaml").read_bytes() == (
        QUICKSTART / "data.yaml"
    ).read_bytes()


def test_a_shipped_config_by_name_runs_from_any_folder(tmp_path, monkeypatch):
    """`--config quickstart`: the shipped files, outputs relative to the current folder."""
    monkeypatch.chdir(tmp_path)
    cfg = load_pipeline_config("quickstart")
    assert cfg["member_config"] == str(CONFIGS / "quickstart" / "member.yaml")
    assert cfg["cascade_config"] == str(CONFIGS / "quickstart" / "cascade.yaml")
    assert cfg["out"] == "outputs/quickstart" and cfg["experiment"] == "quickstart"
    imagenet = load_pipeline_config("imagenet/experiments/efficientnet_b0")
    assert imagenet["member_config"] == str(CONFIGS / "imagenet" / "member.yaml")
    assert "quickstart" in shipped_names() and len(shipped_names()) == 11
    with pytest.raises(FileNotFoundError, match="neither a file nor a shipped config: .*quickst"):
        load_pipeline_config("quickstar")
    assert list(tmp_path.iterdir()) == []
