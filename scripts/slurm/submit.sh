#!/usr/bin/env bash
# Submit a whole experiment to SLURM: the members (a job array, or one job with the members in
# parallel), then calibration + cascade evaluation once all members succeeded
# (--dependency=afterok; cancelled if a member fails: --kill-on-invalid-dep=yes). Prints the
# two job ids. The same as `window-cascades submit` (commands/slurm_submit.py; --help lists
# the options), run from the repository root with $PYTHON (default .venv/bin/python).
#
#   bash scripts/slurm/submit.sh EXPERIMENT.yaml [options] [-- run_pipeline.py args]
#
# Options (all optional; defaults = the cluster's):
#   --partition P  --account A  --qos Q   where the jobs run
#   --time T        member time limit (e.g. 2-00:00:00); --eval-time T for the evaluation job
#                   (default 04:00:00)
#   --job-name NAME the jobs are NAME-members and NAME-evaluate (default wc-<experiment>)
#   --nodes N       nodes per member (DDP across nodes; sets --trainer.num_nodes)
#   --gpus-per-node [TYPE:]G   GPUs per member node: --gres=gpu:[TYPE:]G, --ntasks-per-node=G,
#                   --trainer.devices=G
#   any other sbatch option (--constraint a100, --exclude=n1, --mail-type=END): both jobs;
#   --sbatch-arg=--OPT=V (both), --member-sbatch-arg=..., --eval-sbatch-arg=... (one job)
#   --tasks-per-node T  DDP processes per member node without GPUs (CPU/gloo): --ntasks-per-node=T,
#                   --trainer.devices=T (add --member-arg=--trainer.strategy=ddp after --)
#   --cpus-per-task C   --mem M
#   --parallel-members  one job of <members> tasks, each training its own member on one device
#   --out DIR       override the experiment's output folder; --logger csv|wandb likewise
#   --wait          stay until every job has ended, then print each job's state and log; exit
#                   status 0 only when all completed (1 otherwise). $SUBMIT_POLL: seconds
#                   between checks (default 10)
#   --dry-run       print the two sbatch commands; submit nothing, write nothing
# Logs: <out>/slurm/members_<job>_<task>.out and <out>/slurm/evaluate_<job>.out.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec "${PYTHON:-.venv/bin/python}" -m window_cascades.commands.slurm_submit "$@"
