#!/usr/bin/env bash
# Start a single-node Slurm cluster on this machine, for the tests marked `slurm`.
#
#   tests/slurm/up.sh          install (apt), configure and start munge + slurmctld + slurmd
#   tests/slurm/up.sh --check  only report whether the cluster answers (exit 0 when it does)
#
# Idempotent: every step is skipped when its result is already there, running daemons are
# left alone, and a second call on a running cluster returns within a second. Needs root
# (the CI machine and the developer machines run as root; there is no sudo). Debian/Ubuntu.
#
# The node has no GPU and no gres: jobs that ask Slurm for a GPU never start here, so the
# slurm tests run the profile with resources.train.gpu = 0 (see tests/test_slurm.py).
set -euo pipefail

log() { echo "slurm/up.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

cluster_answers() {
    command -v sinfo >/dev/null 2>&1 || return 1
    # The node must be usable: idle, mixed or allocated (not down/drained/unknown).
    local state
    state=$(timeout 10 sinfo --noheader --responding -o '%t' 2>/dev/null | head -n1) || return 1
    [[ "$state" =~ ^(idle|mix|alloc|comp) ]]
}

if [[ "${1:-}" == "--check" ]]; then
    if cluster_answers; then sinfo; exit 0; else log "no responding Slurm node"; exit 1; fi
fi

# The configuration this script wants (written in step 3).
host=$(hostname -s)
cpus=$(nproc)
mem_mib=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.85}' /proc/meminfo)
conf=/etc/slurm/slurm.conf
wanted=$(cat <<CONF
# Single-node test cluster written by gendyn's tests/slurm/up.sh (rewritten when it differs).
ClusterName=local
SlurmctldHost=${host}
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# Finished jobs stay visible to squeue (the profile's status command) for 10 minutes.
MinJobAge=600
NodeName=${host} CPUs=${cpus} RealMemory=${mem_mib} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
# A second partition on the same node, so tests can check that training jobs go to the site's
# gpu_partition. The node has no GPU: jobs that ask for one would never start here.
PartitionName=gpu Nodes=ALL Default=NO MaxTime=INFINITE State=UP
CONF
)
if cluster_answers && [[ -f $conf ]] && [[ "$(cat "$conf")" == "$wanted" ]]; then
    log "Slurm already up"
    sinfo
    exit 0
fi

[[ $(id -u) -eq 0 ]] || die "must run as root (installs packages, starts munged/slurmctld/slurmd)"

# 1. Packages.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
        || ! command -v sbatch >/dev/null; then
    command -v apt-get >/dev/null || die "apt-get not found: install slurm-wlm and munge by hand"
    log "installing slurm-wlm and munge (about a minute)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge </dev/null >/dev/null
fi

# 2. Munge (authentication between the Slurm daemons and commands).
mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    log "creating /etc/munge/munge.key"
    head -c 1024 /dev/urandom >/etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge
chmod 400 /etc/munge/munge.key
chmod 755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "starting munged"
    # No systemd in containers: start it by hand, as its own user where runuser exists (root may
    # run it too); --force: ignore a stale socket left by a killed munged.
    if command -v runuser >/dev/null && id munge >/dev/null 2>&1; then
        chown -R munge:munge /run/munge /var/lib/munge /var/log/munge
        runuser -u munge -- munged --force
    else
        munged --force
    fi
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi
munge -n | unmunge | grep -q 'STATUS: *Success' || die "munge does not work (munge -n | unmunge)"

# 3. slurm.conf for this host.
mkdir -p /etc/slurm
if [[ ! -f $conf ]] || [[ "$(cat "$conf")" != "$wanted" ]]; then
    log "writing $conf (node $host: $cpus CPUs, $mem_mib MiB)"
    printf '%s\n' "$wanted" >"$conf"
    conf_changed=1
else
    conf_changed=0
fi

# 4. Daemons.
mkdir -p /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
running() { pgrep -x "$1" >/dev/null; }
if (( conf_changed )) && { running slurmctld || running slurmd; }; then
    log "configuration changed: reconfiguring the running daemons"
    scontrol reconfigure || true
fi
if ! running slurmctld; then
    log "starting slurmctld"
    slurmctld
fi
if ! running slurmd; then
    log "starting slurmd"
    slurmd
fi

# 5. Wait until the node is usable; bring it back if a previous run left it down.
for i in $(seq 60); do
    cluster_answers && break
    if (( i % 10 == 0 )); then
        scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
    fi
    sleep 0.5
done
if ! cluster_answers; then
    sinfo -N -l >&2 || true
    tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
    die "the node did not become idle within 30 s"
fi
out=$(timeout 60 srun -N1 -n1 -t 1 hostname) || die "srun -N1 hostname failed"
log "up: srun ran on $out"
sinfo
