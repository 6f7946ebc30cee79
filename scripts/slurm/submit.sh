#!/usr/bin/env bash
# Submit a whole experiment to SLURM: the members (a job array, or one job with the members in
# parallel), then calibration + cascade evaluation once all members succeeded
# (--dependency=afterok; cancelled if a member fails: --kill-on-invalid-dep=yes). Prints the
# two job ids. Run it from the repository root.
#
#   bash scripts/slurm/submit.sh EXPERIMENT.yaml [options] [-- run_pipeline.py args]
#
# Options (all optional; defaults = the cluster's):
#   --partition P  --account A  --qos Q   where the jobs run
#   --time T        member time limit (e.g. 2-00:00:00); --eval-time T for the evaluation job
#   --nodes N       nodes per member (DDP across nodes; sets --trainer.num_nodes)
#   --gpus-per-node G   GPUs per member node: --gres=gpu:G, --ntasks-per-node=G, --trainer.devices=G
#   --tasks-per-node T  DDP processes per member node without GPUs (CPU/gloo): --ntasks-per-node=T,
#                   --trainer.devices=T (add --member-arg=--trainer.strategy=ddp after --)
#   --cpus-per-task C   --mem M
#   --parallel-members  one job of <members> tasks, each training its own member on one device
#   --out DIR       override the experiment's output folder; --logger csv|wandb likewise
#   --wait          stay until every job has ended, then print each job's state and log; exit
#                   status 0 only when all completed (1 otherwise). $SUBMIT_POLL: seconds
#                   between checks (default 10)
# Logs: <out>/slurm/members_<job>_<task>.out and <out>/slurm/evaluate_<job>.out.
set -euo pipefail
cd "$(dirname "$0")/../.."
config=${1:?usage: submit.sh EXPERIMENT.yaml [options] [-- run_pipeline.py args]}
shift
[[ -f $config ]] || { echo "experiment config not found: $config" >&2; exit 2; }
python=${PYTHON:-.venv/bin/python}
common=() member=() evaluation=() pipeline=() nodes=1 gpus=0 tasks=0 parallel=0 out="" logger=""
wait=0
while (($#)); do
  case $1 in
    --partition|--account|--qos) common+=("$1=$2"); shift 2 ;;
    --time) member+=("--time=$2"); shift 2 ;;
    --eval-time) evaluation+=("--time=$2"); shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    --gpus-per-node) gpus=$2; shift 2 ;;
    --tasks-per-node) tasks=$2; shift 2 ;;
    --cpus-per-task|--mem) common+=("$1=$2"); shift 2 ;;
    --parallel-members) parallel=1; shift ;;
    --wait) wait=1; shift ;;
    --out) out=$2; pipeline+=(--out "$2"); shift 2 ;;
    --logger) logger=$2; pipeline+=(--logger "$2"); shift 2 ;;
    --) shift; pipeline+=("$@"); break ;;
    *) echo "unknown option '$1' (see the header of $0)" >&2; exit 2 ;;
  esac
done
# the experiment's output folder and member count, read (and checked) by the pipeline's loader
read -r cfg_out members < <("$python" - "$config" <<'PY'
import sys
from commands.pipeline_config import load_pipeline_config
try:
    cfg = load_pipeline_config(sys.argv[1])
except (ValueError, OSError) as err:
    sys.exit(f"error: {err}")
print(cfg["out"], len(cfg["seeds"]))
PY
)
[[ -n ${members:-} ]] || exit 2  # the loader printed what is wrong
out=${out:-$cfg_out}
logs=$out/slurm
mkdir -p "$logs"
if ((parallel)); then
  launch=(--ntasks="$members" --nodes="$nodes" --ntasks-per-node=$(((members + nodes - 1) / nodes)))
  ((gpus > 0)) && launch+=(--gpus-per-task=1)
  member+=("${launch[@]}" --export=ALL,MEMBERS_IN_PARALLEL=1 --output="$logs/members_%j.out")
else
  per_node=$((gpus > 0 ? gpus : (tasks > 0 ? tasks : 1)))
  member+=(--array="0-$((members - 1))" --nodes="$nodes" --ntasks-per-node="$per_node"
           --output="$logs/members_%A_%a.out")
  ((gpus > 0)) && member+=(--gres="gpu:$gpus")
  pipeline+=("--member-arg=--trainer.num_nodes=$nodes")
  ((per_node > 1 || gpus > 0)) && pipeline+=("--member-arg=--trainer.devices=$per_node")
fi
train=$(sbatch --parsable "${common[@]}" "${member[@]}" \
  scripts/slurm/train_members.sbatch "$config" "${pipeline[@]}")
train=${train%%;*}
((gpus > 0)) && evaluation+=(--gres=gpu:1)
evaluate=$(sbatch --parsable "${common[@]}" "${evaluation[@]}" \
  --dependency="afterok:$train" --kill-on-invalid-dep=yes --output="$logs/evaluate_%j.out" \
  scripts/slurm/evaluate.sbatch "$config" "${pipeline[@]}")
evaluate=${evaluate%%;*}
echo "members: job $train ($members members)  evaluation: job $evaluate (after members succeed)"
echo "logs: $logs/   results: $out/   watch: squeue -j $train,$evaluate"
((wait)) || exit 0

# --wait: poll until no job is queued, then one line per job (array tasks separately)
while [[ -n $(squeue -h -j "$train,$evaluate" 2>/dev/null) ]]; do sleep "${SUBMIT_POLL:-10}"; done
field() { [[ $line =~ (^|[[:space:]])$1=([^[:space:]]*) ]] && echo "${BASH_REMATCH[2]}"; true; }
failed=0 report=()
while read -r line; do
  [[ -n $line ]] || continue
  id=$(field JobId) task=$(field ArrayTaskId) state=$(field JobState) reason=$(field Reason)
  what="members"
  [[ $id == "$evaluate" ]] && what="evaluation"
  [[ -n $task && $task != "N/A" ]] && id="$(field ArrayJobId)_$task"
  note=""
  [[ $state == COMPLETED ]] || { failed=1; [[ $reason == "None" ]] || note=" ($reason)"; }
  report+=("$what job $id: $state$note, exit $(field ExitCode), log $(field StdOut)")
done < <(scontrol -o show job "$train" 2>/dev/null; scontrol -o show job "$evaluate" 2>/dev/null)
printf '%s\n' "${report[@]}" | sort -k1,1r -k3,3V  # members by task, then the evaluation
if ((failed)); then
  echo "error: not every job completed; read the logs above" >&2
  exit 1
fi
