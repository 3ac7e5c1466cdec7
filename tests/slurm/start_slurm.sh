#!/usr/bin/env bash
# Starts a private single-node Slurm on this machine for a test: munged, slurmctld and slurmd, all
# as daemons, all files under DIR. It touches nothing outside DIR: its own munge key and socket
# (the system's /etc/munge and /run/munge are left alone), its own slurm.conf (clients find it
# through SLURM_CONF; /etc/slurm is left alone), and two free TCP ports instead of Slurm's default
# 6817/6818 (a real Slurm on the machine keeps its ports). Needs root (munged, slurmd) and the
# Debian packages slurm-wlm and munge (scripts/install-deps.sh --slurm).
#
# Usage: tests/slurm/start_slurm.sh DIR
#   DIR must be absent or empty; it is created. When every daemon is up and the node "localhost"
#   is idle, the script prints "SLURM_CONF=DIR/slurm.conf" on stdout and exits 0. On any failure
#   it stops what it started, prints the daemons' log tails on stderr and exits 1.
#   Stop with tests/slurm/stop_slurm.sh DIR (it stops exactly the daemons recorded in DIR).
#
# Layout of DIR: munge/ (0700: key, log, PRNG seed), munge-run/ (0755, as munged requires: socket,
# PID file), slurm.conf, state/ (StateSaveLocation), spool/ (SlurmdSpoolDir), log/, *.pid.
#
# The node runs without cgroups (ProctrackType=proctrack/linuxproc, TaskPlugin=task/none): the
# test needs no resource confinement, and it then does not depend on the host's cgroup set-up
# (containers, sandboxes). No accounting database (AccountingStorageType=none).
set -euo pipefail

die() { echo "start_slurm: $*" >&2; exit 1; }

[[ $# -eq 1 ]] || { echo "usage: $0 DIR" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || die "needs root (munged and slurmd run as root here)"
for tool in munged mungekey slurmctld slurmd sinfo scontrol; do
  command -v "$tool" >/dev/null || die "$tool not found (install: scripts/install-deps.sh --slurm)"
done

dir=$1
[[ $dir == /* ]] || dir="$PWD/$dir"
if [[ -e $dir ]]; then
  [[ -d $dir && -z $(ls -A "$dir") ]] || die "$dir exists and is not an empty directory"
fi
mkdir -p "$dir"
chmod 0755 "$dir"   # munged needs execute permission for all on every directory above its socket
here=$(cd "$(dirname "$0")" && pwd)

# On any failure from here on: show what the daemons said, then stop whatever was started (DIR
# was empty, so every daemon recorded in it is ours).
started=false
on_exit() {
  $started && return 0
  for log in "$dir"/munge/munged.log "$dir"/log/slurmctld.log "$dir"/log/slurmd.log; do
    if [[ -f $log ]]; then echo "--- $log (last 30 lines)" >&2; tail -n 30 "$log" >&2; fi
  done
  bash "$here/stop_slurm.sh" "$dir" >&2 || true
}
trap on_exit EXIT

# A TCP port on which nothing listens, from a random start (two tests on one machine do not collide
# unless they draw the same port; slurmctld then fails to bind and the error is reported).
free_port() {
  local port=$((20000 + RANDOM % 20000)) tries
  for ((tries = 0; tries < 200; tries++, port++)); do
    [[ " $* " == *" $port "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
  done
  return 1
}

# munge: its own key (never the system's /etc/munge/munge.key) and socket.
mkdir -m 0700 "$dir/munge"
mkdir -m 0755 "$dir/munge-run"
mungekey --create --keyfile="$dir/munge/munge.key"
munged --key-file="$dir/munge/munge.key" --socket="$dir/munge-run/munge.socket" \
       --pid-file="$dir/munge-run/munged.pid" --log-file="$dir/munge/munged.log" \
       --seed-file="$dir/munge/munged.seed"

# The node's real CPUs, sockets, cores, threads and memory, as slurmd itself detects them (the
# first line of `slurmd -C`, with the node renamed "localhost").
node_hw=$(slurmd -C | head -n 1 | sed -E 's/^NodeName=[^ ]+ //')
[[ $node_hw == *CPUs=*RealMemory=* ]] || die "unexpected output of slurmd -C: $node_hw"
ctld_port=$(free_port) || die "no free TCP port"
slurmd_port=$(free_port "$ctld_port") || die "no free TCP port"
mkdir -p "$dir/state" "$dir/spool" "$dir/log"
cat >"$dir/slurm.conf" <<EOF
# Written by tests/slurm/start_slurm.sh: a private single-node Slurm for tests.
ClusterName=lutdose-test
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge-run/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
NodeName=localhost NodeAddr=127.0.0.1 $node_hw State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$dir/slurm.conf"

slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N localhost

# Up when the controller answers and the node is idle (usually 2-5 s; 60 s for a loaded machine).
state=""
for ((i = 0; i < 120; i++)); do
  state=$(sinfo -h -n localhost -o %t 2>/dev/null || true)
  [[ $state == idle ]] && break
  sleep 0.5
done
if [[ $state != idle ]]; then
  die "node localhost not idle after 60 s (state: '${state:-no answer}')"
fi
started=true
echo "SLURM_CONF=$SLURM_CONF"
