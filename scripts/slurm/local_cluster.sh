#!/usr/bin/env bash
# A one-node Slurm cluster on localhost, for trying the job scripts (and for the `slurm` tests).
#
#   bash scripts/slurm/local_cluster.sh start DIR [CPUS]   # prints: export SLURM_CONF=DIR/slurm.conf
#   bash scripts/slurm/local_cluster.sh stop DIR
#
# Needs Debian's slurmctld, slurmd, slurm-client and munge (apt-get install ...), run as root.
# Everything it writes (config, state, logs, munge socket) stays under DIR.
set -euo pipefail
cmd=${1:?usage: local_cluster.sh start|stop DIR [CPUS]}
dir=$(realpath -m "${2:?usage: local_cluster.sh start|stop DIR [CPUS]}")
cpus=${3:-4}

stop() {
  for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munged.pid"; do
    if [[ -f $pidfile ]]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
      rm -f "$pidfile"
    fi
  done
}

if [[ $cmd == stop ]]; then
  stop
  exit 0
fi
[[ $cmd == start ]] || { echo "unknown command '$cmd' (expected start or stop)" >&2; exit 2; }
for tool in munged slurmctld slurmd sbatch; do
  command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin
  command -v "$tool" >/dev/null || {
    echo "$tool not found: apt-get install slurmctld slurmd slurm-client munge" >&2; exit 3; }
done
[[ $(id -u) == 0 ]] || { echo "the local cluster runs its daemons as root" >&2; exit 3; }

mkdir -p "$dir"/{state,spool,munge}
key=$dir/munge/munge.key
[[ -f $key ]] || { dd if=/dev/urandom of="$key" bs=1024 count=1 status=none; chmod 400 "$key"; }
node=$(hostname -s)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
cat > "$dir/slurm.conf" <<CONF
ClusterName=local
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldPort=${SLURMCTLD_PORT:-6817}
SlurmdPort=${SLURMD_PORT:-6818}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
JobRequeue=1
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
InactiveLimit=0
KillWait=30
MinJobAge=300
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF

stop
munged --force --socket="$dir/munge/munge.sock" --key-file="$key" \
  --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munge/seed"
export SLURM_CONF=$dir/slurm.conf
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N "$node"
for _ in $(seq 60); do
  if sinfo -h -o %T 2>/dev/null | grep -q -E '^(idle|mixed|allocated)'; then
    echo "export SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.5
done
echo "the local cluster did not come up; logs in $dir (slurmctld.log, slurmd.log)" >&2
sinfo >&2 || true
exit 1
