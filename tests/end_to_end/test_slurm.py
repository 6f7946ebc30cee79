"""The SLURM job scripts on a real one-node Slurm cluster (localhost, CPU members)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import QUICKSTART
from tests.slurm_cluster import (
    ROOT,
    job_fields,
    run,
    start_cluster,
    start_requeued_job,
    stop_cluster,
    wait_for,
    wait_until_done,
)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slurm_cluster")
    env = start_cluster(folder)
    yield env
    stop_cluster(folder)


def experiment(folder: Path, name: str, seeds: list[int], logger: str = "csv") -> Path:
    cfg = {
        "experiment": name,
        "out": str(folder / name),
        "seeds": seeds,
        "member_config": str(QUICKSTART / "member.yaml"),
        "cascade_config": str(QUICKSTART / "cascade.yaml"),
        "logger": logger,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def submit(env: dict, config: Path, *options: str) -> tuple[str, str]:
    out = run(env, "bash", "scripts/slurm/submit.sh", str(config), *options)
    words = out.split()
    return words[words.index("members:") + 2], words[words.index("evaluation:") + 2]


def step_args(data_cfg: Path, epochs: int) -> list[str]:
    quiet = "--trainer.enable_progress_bar=false"
    return [
        f"--member-arg=--data={data_cfg}",
        f"--member-arg=--trainer.max_epochs={epochs}",
        f"--member-arg={quiet}",
        f"--cascade-arg=--data={data_cfg}",
        f"--cascade-arg={quiet}",
        # 1-epoch members cannot reach 5% risk; a coverage target is reachable by any member
        "--cascade-arg=--calibration.target=risk@50",
    ]


def test_submit_chains_members_and_evaluation(slurm, tmp_path, small_data_config):
    data_cfg = small_data_config(tmp_path / "data.yaml", train_limit=320)
    config = experiment(tmp_path, "chain", [0, 1])
    train, evaluate = submit(slurm, config, "--time", "30", "--", *step_args(data_cfg, 1))
    wait_until_done(slurm, [train, evaluate])
    jobs = job_fields(slurm, train) + job_fields(slurm, evaluate)
    assert [j["JobState"] for j in jobs] == ["COMPLETED"] * 3, jobs
    members, evaluation = jobs[:2], jobs[2]
    assert evaluation["Dependency"] in ("(null)", "")  # satisfied, then cleared
    assert all(evaluation["StartTime"] >= m["EndTime"] for m in members)
    assert {m["TimeLimit"] for m in members} == {"00:30:00"}
    out = tmp_path / "chain"
    seeds = [json.loads((out / f"members/m{i}/finished.json").read_text())["seed"] for i in (0, 1)]
    assert seeds == [0, 1]
    for i in (0, 1):
        assert (out / f"logits/m{i}/digits_test.safetensors").is_file()
        assert (out / f"slurm/members_{train}_{i}.out").is_file()
    rows = (out / "results" / "metrics.csv").read_text().splitlines()
    assert any(r.startswith("digits_test,id,window,") and ",cov@5," in r for r in rows)
    assert "Results written to" in (out / f"slurm/evaluate_{evaluate}.out").read_text()
    assert json.loads((out / "results" / "fitted_cascade.json").read_text())


def test_a_failed_member_cancels_the_evaluation_and_wait_reports_each_job(slurm, tmp_path):
    config = experiment(tmp_path, "broken", [0, 1])
    bad = "--member-arg=--trainer.max_epochs=abc"  # each member task fails at once
    proc = subprocess.run(
        ["bash", "scripts/slurm/submit.sh", str(config), "--wait", "--", bad],
        env={**slurm, "SUBMIT_POLL": "1"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    words = proc.stdout.split()
    train, evaluate = words[words.index("members:") + 2], words[words.index("evaluation:") + 2]
    logs = tmp_path / "broken" / "slurm"
    lines = [line for line in proc.stdout.splitlines() if " job " in line and "exit" in line]
    assert lines[:2] == [
        f"members job {train}_{i}: FAILED (NonZeroExitCode), exit 2:0, log "
        f"{logs}/members_{train}_{i}.out"
        for i in (0, 1)
    ], proc.stdout
    assert lines[2] == (
        f"evaluation job {evaluate}: CANCELLED (DependencyNeverSatisfied), exit 0:0, log "
        f"{logs}/evaluate_{evaluate}.out"
    )
    assert "error: not every job completed; read the logs above" in proc.stderr
    assert not run(slurm, "squeue", "-h").strip()  # nothing left pending
    assert "max_epochs" in (logs / f"members_{train}_0.out").read_text()


def test_preempted_member_resumes_to_the_uninterrupted_weights(slurm, tmp_path, small_data_config):
    data_cfg = small_data_config(tmp_path / "data.yaml", train_limit=640)  # 10 steps/epoch
    args = [
        f"--member-arg=--data={data_cfg}",
        "--member-arg=--trainer.max_epochs=3",
        "--member-arg=--trainer.enable_progress_bar=false",
    ]
    jobs = {}
    for name, logger in (("full", "csv"), ("cut", "wandb")):
        config = experiment(tmp_path, name, [5], logger)
        jobs[name] = run(
            slurm,
            "sbatch",
            "--parsable",
            "--array=0",
            f"--output={tmp_path}/{name}_%A_%a.out",
            "scripts/slurm/train_members.sbatch",
            str(config),
            *args,
        ).strip()
    cut = tmp_path / "cut" / "members" / "m0"
    wait_for(lambda: (cut / "checkpoints" / "last.ckpt").is_file(), "the first epoch of 'cut'")
    run(slurm, "scancel", "--signal=USR1", f"{jobs['cut']}_0")  # what --signal=USR1@90 sends
    # Slurm holds requeued jobs back for a while; let it start now (once that is safe)
    start_requeued_job(slurm, f"{jobs['cut']}_0")
    wait_until_done(slurm, list(jobs.values()))
    for job in jobs.values():
        assert job_fields(slurm, job)[0]["JobState"] == "COMPLETED"

    log = next(tmp_path.glob("cut_*_0.out")).read_text()
    assert "checkpoint saved to" in log and "requeued" in log and "restart 1" in log
    finished = json.loads((cut / "finished.json").read_text())
    assert finished["resumed_from"].endswith("hpc_ckpt_1.ckpt")
    assert finished["global_step"] == 30
    full = torch.load(tmp_path / "full/members/m0/checkpoints/last.ckpt", weights_only=True)
    resumed = torch.load(cut / "checkpoints/last.ckpt", weights_only=True)
    for key, value in full["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key
    # the requeued task continued the same wandb run
    run_id = (cut / "wandb_id").read_text().strip()
    runs = sorted((tmp_path / "cut" / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(r.name.endswith(run_id) for r in runs)


def test_members_in_parallel_train_one_member_per_task(slurm, tmp_path, small_data_config):
    data_cfg = small_data_config(tmp_path / "data.yaml", train_limit=320)  # 5 steps/epoch
    config = experiment(tmp_path, "parallel", [3, 4], logger="wandb")
    train, evaluate = submit(slurm, config, "--parallel-members", "--", *step_args(data_cfg, 1))
    wait_until_done(slurm, [train, evaluate])
    assert job_fields(slurm, train)[0]["NumTasks"] == "2"
    out = tmp_path / "parallel"
    for i, seed in enumerate((3, 4)):
        finished = json.loads((out / f"members/m{i}/finished.json").read_text())
        # each task trained its member alone on all 320 images (no DDP split: 5 steps, not 3)
        assert finished["seed"] == seed and finished["global_step"] == 5
        assert (out / f"members/m{i}/wandb_id").is_file()  # each task logs its own run
    a, b = (
        torch.load(out / f"members/m{i}/checkpoints/last.ckpt", weights_only=True)["state_dict"]
        for i in (0, 1)
    )
    assert not torch.equal(a["model.fc.weight"], b["model.fc.weight"])
    assert job_fields(slurm, evaluate)[0]["JobState"] == "COMPLETED"


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        (["--ntasks=2", "--ntasks-per-node=2"], "SLURM started 2 task(s) but the Trainer runs"),
        (["--ntasks=2"], "HINT: Use `--ntasks-per-node=2` instead"),
    ],
)
def test_wrong_task_count_fails_fast_with_a_clear_error(
    slurm, tmp_path, small_data_config, tasks, message
):
    data_cfg = small_data_config(tmp_path / "data.yaml", train_limit=128)
    config = experiment(tmp_path, "mismatch", [0])
    proc = subprocess.run(
        [
            "srun",
            *tasks,
            "--time=5",
            slurm["PYTHON"],
            "scripts/run_pipeline.py",
            "--config",
            str(config),
            "--step",
            "member",
            "--member",
            "0",
            f"--member-arg=--data={data_cfg}",
            "--member-arg=--trainer.devices=1",
        ],
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        env=slurm,
        cwd=ROOT,
        timeout=180,
    )
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert not (tmp_path / "mismatch" / "members" / "m0" / "checkpoints").exists()


def test_ddp_member_under_srun_splits_the_data_over_its_tasks(slurm, tmp_path, small_data_config):
    data_cfg = small_data_config(tmp_path / "data.yaml", train_limit=256)  # 4 batches of 64
    config = experiment(tmp_path, "ddp", [0, 1])  # a cascade needs 2 members
    ddp = ["--member-arg=--trainer.strategy=ddp", "--member-arg=--trainer.accelerator=cpu"]
    train, evaluate = submit(
        slurm, config, "--tasks-per-node", "2", "--", *step_args(data_cfg, 1), *ddp
    )
    wait_until_done(slurm, [train, evaluate])
    fields = job_fields(slurm, train)[0]
    assert fields["JobState"] == "COMPLETED" and fields["NumTasks"] == "2", fields
    finished = json.loads((tmp_path / "ddp/members/m0/finished.json").read_text())
    assert finished["global_step"] == 2  # 256 images, 2 ranks x batch 64: 2 steps, not 4
    assert job_fields(slurm, evaluate)[0]["JobState"] == "COMPLETED"
    assert (tmp_path / "ddp" / "results" / "metrics.csv").is_file()
