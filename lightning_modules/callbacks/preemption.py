"""Preemption-safe training: on a signal, checkpoint at the next batch boundary and requeue.

SLURM sends ``SIGUSR1`` shortly before a job's time limit or a preemption when the job asks
for it (``#SBATCH --signal=SIGUSR1@90``). Lightning's own handler saves a checkpoint the moment
the signal lands, which can be in the middle of an optimiser step; this callback only sets a
flag there and saves at the end of the current batch, where the optimiser, scheduler, loop
counters and the datamodule's position in the epoch agree. The saved file is
``<default_root_dir>/hpc_ckpt_<n>.ckpt``; the job is then requeued with ``scontrol requeue``
(when it runs under SLURM), after any wandb run of the trainer is marked preempted and closed,
and this process exits with status [`PREEMPTED_EXIT_CODE`][].
A restart resumes from the newest of that file and ``last.ckpt`` (see ``latest_checkpoint``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info

PREEMPTED_EXIT_CODE = 3
"""The exit status of a run stopped for preemption after saving its checkpoint."""
_HPC = re.compile(r"hpc_ckpt_(\d+)\.ckpt$")


def close_wandb_runs(trainer: Trainer) -> None:
    """Mark the trainer's open wandb runs preempted and close them before the job is requeued.

    A run left open holds its id in the wandb service of the exiting process; the requeued job
    resumes the same id (``resume="allow"``) and, if it starts before that service has gone,
    wandb refuses it ("run ID ... is in use"). Closing here also flushes the run's last steps.
    """
    from lightning.pytorch.loggers import WandbLogger

    for logger in trainer.loggers:
        run = getattr(logger, "_experiment", None) if isinstance(logger, WandbLogger) else None
        if run is None:
            continue
        mark = getattr(run, "mark_preempting", None)
        if callable(mark):
            mark()
        run.finish(exit_code=PREEMPTED_EXIT_CODE)


def slurm_job_id() -> str | None:
    """The id ``scontrol requeue`` needs: ``<array job>_<task>`` for array tasks, else the job."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID")


def latest_checkpoint(run_dir: str | Path, last: str | Path | None = None) -> Path | None:
    """The newest of ``run_dir/hpc_ckpt_*.ckpt`` and ``last`` (by step count in the name, then
    modification time); ``None`` when neither exists."""
    candidates = [p for p in Path(run_dir).glob("hpc_ckpt_*.ckpt") if _HPC.search(p.name)]
    if last is not None and Path(last).is_file():
        candidates.append(Path(last))
    if not candidates:
        return None
    return max(candidates, key=lambda p: p.stat().st_mtime_ns)


class PreemptionCheckpoint(Callback):
    """Checkpoint at a batch boundary on ``signal_name``, requeue the SLURM job, exit.

    Args:
        signal_name: the signal SLURM is told to send (``--signal=SIGUSR1@90``).
        requeue: call ``scontrol requeue`` on the job (only under SLURM).
    """

    def __init__(self, signal_name: str = "SIGUSR1", requeue: bool = True):
        if not hasattr(signal, signal_name):
            raise ValueError(f"unknown signal {signal_name!r} (expected e.g. 'SIGUSR1')")
        self.signum = getattr(signal, signal_name)
        self.requeue = requeue
        self._received = False
        self._previous = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # registered before Lightning's SLURM handler, which then leaves this signal alone
        if stage == "fit":
            self._previous = signal.signal(self.signum, self._on_signal)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage == "fit" and self._previous is not None:
            signal.signal(self.signum, self._previous)
            self._previous = None

    def _on_signal(self, signum, frame) -> None:
        self._received = True

    def on_train_batch_end(self, trainer: Trainer, pl_module, outputs, batch, batch_idx) -> None:
        flag = torch.tensor(float(self._received), device=pl_module.device)
        if not trainer.strategy.reduce(flag, reduce_op="max").item():
            return
        run_dir = Path(trainer.default_root_dir)
        found = (_HPC.search(p.name) for p in run_dir.glob("hpc_ckpt_*"))
        numbers = [int(m.group(1)) for m in found if m]
        path = run_dir / f"hpc_ckpt_{max(numbers, default=0) + 1}.ckpt"
        partial = path.with_name(path.name + ".partial")  # a kill mid-write leaves no bad .ckpt
        trainer.save_checkpoint(partial)
        if trainer.is_global_zero:
            os.replace(partial, path)
        trainer.strategy.barrier("preemption_checkpoint")
        job = slurm_job_id()
        if trainer.is_global_zero:
            rank_zero_info(f"preempted at step {trainer.global_step}: checkpoint saved to {path}")
            close_wandb_runs(trainer)
            if self.requeue and job:
                done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
                status = "requeued" if done.returncode == 0 else f"requeue failed: {done.stderr}"
                rank_zero_info(f"SLURM job {job}: {status}")
        raise SystemExit(PREEMPTED_EXIT_CODE)
