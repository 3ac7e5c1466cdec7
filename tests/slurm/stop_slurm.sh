#!/usr/bin/env bash
# Stops the private Slurm that tests/slurm/start_slurm.sh started in DIR, and nothing else:
# cancels its jobs, then stops slurmd, slurmctld and munged by the PIDs recorded in DIR, each only
# if that process is still the daemon started with DIR's files (a PID reused by another program,
# or a daemon of another Slurm, is left alone). Leaves DIR (logs, state) for the caller to read
# and remove. Safe to run twice, or after a start that failed half-way.
#
# Usage: tests/slurm/stop_slurm.sh DIR      Exit status 0 when none of DIR's daemons runs any more.
set -uo pipefail

[[ $# -eq 1 ]] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$1
[[ $dir == /* ]] || dir="$PWD/$dir"
export SLURM_CONF="$dir/slurm.conf"

# The PID in pid file $1 when that process is program $2 and its command line names DIR.
our_pid() {
  local pid
  [[ -f $1 ]] || return 1
  pid=$(<"$1")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/" || return 1
  echo "$pid"
}

# Waits up to $2 tenths of a second for the command $1 to succeed.
wait_for() {
  local i
  for ((i = 0; i < $2; i++)); do
    eval "$1" && return 0
    sleep 0.1
  done
  return 1
}

# Jobs first, while slurmctld and slurmd still run: cancel every job of this private cluster and
# wait until the controller has none left running and their step daemons (slurmstepd, each with a
# socket DIR/spool/localhost_JOB.STEP) are gone.
if our_pid "$dir/slurmctld.pid" slurmctld >/dev/null; then
  jobs=$(squeue -h -o %A 2>/dev/null | sort -u)
  if [[ -n $jobs ]]; then
    # shellcheck disable=SC2086  # one argument per job id
    scancel $jobs 2>/dev/null
    wait_for '[[ -z $(squeue -h -t RUNNING,COMPLETING,PENDING -o %A 2>/dev/null) ]]' 300 ||
      echo "stop_slurm: jobs still listed after 30 s: $(squeue -h -o %A | tr '\n' ' ')" >&2
  fi
fi
if our_pid "$dir/slurmd.pid" slurmd >/dev/null; then
  wait_for '! compgen -G "$dir/spool/localhost_*" >/dev/null' 300 ||
    echo "stop_slurm: step daemons still running after 30 s: $(ls "$dir/spool")" >&2
fi

status=0
# Stops the daemon of pid file $1 (program $2): SIGTERM, up to 30 s to exit, then SIGKILL.
stop_daemon() {
  local pid
  pid=$(our_pid "$1" "$2") || return 0
  kill -TERM "$pid" 2>/dev/null
  if ! wait_for "! kill -0 $pid 2>/dev/null" 300; then
    echo "stop_slurm: $2 (pid $pid) ignored SIGTERM for 30 s; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null
    wait_for "! kill -0 $pid 2>/dev/null" 100 || { echo "stop_slurm: $2 (pid $pid) still runs" >&2; status=1; return; }
  fi
  echo "stop_slurm: stopped $2 (pid $pid)" >&2
}
stop_daemon "$dir/slurmd.pid" slurmd
stop_daemon "$dir/slurmctld.pid" slurmctld
stop_daemon "$dir/munge-run/munged.pid" munged
exit $status
