#!/usr/bin/env bash
# local-slurm.sh - bring up a REAL single-node Slurm (Debian 12 / Slurm 22.05)
# with fake GPU GRES, for the README quick start, the pytest suite and CI.
#
# Usage (as root):
#   scripts/local-slurm.sh up       install/configure/start; no-op if already healthy
#   scripts/local-slurm.sh down     stop slurmctld + slurmd (munged is left running)
#   scripts/local-slurm.sh status   show sinfo / node summary; exit 1 if not up
#   scripts/local-slurm.sh reset    cancel every job and wait until the queue is empty
#
# Environment:
#   CONCIERGE_SLURM_DIR   state dir (default /var/lib/concierge-slurm)
#   CONCIERGE_SLURM_TIMEOUT  seconds to wait for the node / queue (default 60)
#
# slurmrestd (REST API v0.0.38, JWT) listens on 127.0.0.1:6820 as the user
# slurmrestd (it refuses root); `scontrol token username=USER` mints tokens.
#
# Cluster shape (what the tests rely on): one node "$(hostname -s)" with
# Gres=gpu:a100:2,gpu:l40s:2 backed by fake device files in $DIR/dev, 16 schedulable
# CPUs and 16000 MB via SlurmdParameters=config_overrides, partitions "gpu"
# (default, 1 day) and "short" (1 hour), sched/backfill, no accounting.
# Test users alice and bob (group concierge-users) exist with home dirs.
set -euo pipefail

readonly MARKER='# managed by gpu-concierge local-slurm.sh'
readonly DIR="${CONCIERGE_SLURM_DIR:-/var/lib/concierge-slurm}"
readonly TIMEOUT="${CONCIERGE_SLURM_TIMEOUT:-60}"
readonly ETC_SLURM=/etc/slurm
readonly TEST_USERS=(alice bob)
readonly TEST_GROUP=concierge-users
readonly REST_USER=slurmrestd REST_HOST=127.0.0.1 REST_PORT=6820
# uname -n instead of hostname(1): the latter is not in every minimal image.
NODE="$(uname -n)"
NODE="${NODE%%.*}"
readonly NODE

log() { printf 'local-slurm: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_root() {
    [[ ${EUID} -eq 0 ]] || die "must run as root (try: sudo $0 $*)"
}

# proc_running PID: process exists and is not a zombie (some container/VM
# init processes reap late, and a zombie still shows its old comm).
proc_running() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

# pid_alive PIDFILE NAME: true if PIDFILE names a live process called NAME.
# Checking /proc/PID/comm guards against a recycled pid after a crash.
pid_alive() {
    local pidfile=$1 name=$2 pid
    [[ -s ${pidfile} ]] || return 1
    pid=$(<"${pidfile}")
    [[ ${pid} =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/${pid}/comm && "$(<"/proc/${pid}/comm")" == "${name}" ]] || return 1
    proc_running "${pid}"
}

# pids_named NAME: pids of processes whose comm is exactly NAME (no procps
# dependency: minimal CI images lack pgrep/ps).
pids_named() {
    local name=$1 f pid
    for f in /proc/[0-9]*/comm; do
        pid=${f#/proc/}
        pid=${pid%/comm}
        if [[ "$(cat "${f}" 2>/dev/null)" == "${name}" ]] && proc_running "${pid}"; then
            printf '%s\n' "${pid}"
        fi
    done
}

# --------------------------------------------------------------------------
# packages

install_packages() {
    local missing=() bin
    for bin in slurmctld slurmd sinfo munged slurmrestd; do
        command -v "${bin}" >/dev/null 2>&1 || missing+=("${bin}")
    done
    jwt_enabled || missing+=(auth_jwt) # slurmrestd's JWT; slurm-wlm does not pull it in
    ((${#missing[@]} == 0)) && return 0
    log "missing ${missing[*]}; installing slurm-wlm slurm-client munge slurmrestd slurm-wlm-jwt-plugin"
    export DEBIAN_FRONTEND=noninteractive
    # Do not let package postinst scripts start daemons with the stock config
    # on init-less boxes; policy-rc.d is honoured by invoke-rc.d.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [[ ! -e ${policy} ]]; then
        printf '#!/bin/sh\nexit 101\n' >"${policy}"
        chmod 755 "${policy}"
        created_policy=1
        # Remove it even if apt fails and set -e ends the script.
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    local apt_opts=(-y -q -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confold)
    # Only refresh the index when the install cannot resolve without it.
    if ! apt-get install "${apt_opts[@]}" slurm-wlm slurm-client munge slurmrestd slurm-wlm-jwt-plugin; then
        apt-get update -q -o DPkg::Lock::Timeout=300
        apt-get install "${apt_opts[@]}" slurm-wlm slurm-client munge slurmrestd slurm-wlm-jwt-plugin
    fi
    if ((created_policy)); then
        rm -f "${policy}"
        trap - EXIT
    fi
    return 0
}

# --------------------------------------------------------------------------
# users

ensure_users() {
    local u
    for u in "${TEST_USERS[@]}"; do
        if ! id -u "${u}" >/dev/null 2>&1; then
            # -U: own primary group; -m: home dir so jobs can write output there.
            useradd -m -U -s /bin/bash "${u}"
            log "created user ${u}"
        fi
    done
    # slurmrestd refuses to run as root or SlurmUser: a system user of its own.
    id -u "${REST_USER}" >/dev/null 2>&1 || useradd -r -M -d /nonexistent -s /usr/sbin/nologin "${REST_USER}"
    # Shared group created after the users so that uid == gid where possible.
    getent group "${TEST_GROUP}" >/dev/null || groupadd "${TEST_GROUP}"
    for u in "${TEST_USERS[@]}"; do
        [[ " $(id -nG "${u}") " == *" ${TEST_GROUP} "* ]] || usermod -aG "${TEST_GROUP}" "${u}"
        local home
        home=$(getent passwd "${u}" | cut -d: -f6)
        if [[ ! -d ${home} ]]; then
            install -d -m 750 -o "${u}" -g "$(id -gn "${u}")" "${home}"
        fi
    done
}

# --------------------------------------------------------------------------
# munge

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

ensure_munge() {
    local key=/etc/munge/munge.key
    install -d -m 700 -o munge -g munge /etc/munge
    if [[ ! -s ${key} ]]; then
        log "creating munge key"
        if command -v mungekey >/dev/null 2>&1; then
            mungekey --create --keyfile="${key}" --force
        else
            dd if=/dev/urandom of="${key}" bs=1024 count=1 status=none
        fi
    fi
    # munged refuses keys readable by group/other; 400 per our field notes.
    chown munge:munge "${key}"
    chmod 400 "${key}"
    install -d -m 755 -o munge -g munge /run/munge
    install -d -m 700 -o munge -g munge /var/lib/munge /var/log/munge

    munge_ok && return 0

    # Not answering: kill a wedged munged we can identify, then start fresh.
    local pid
    if pid_alive /run/munge/munged.pid munged; then
        pid=$(</run/munge/munged.pid)
        log "munged (pid ${pid}) not answering; restarting it"
        kill "${pid}" 2>/dev/null || true
        sleep 1
    fi
    rm -f /run/munge/munged.pid
    # --force: a stale socket from a dead munged would otherwise block start.
    runuser -u munge -- /usr/sbin/munged --force
    local i
    for ((i = 0; i < 50; i++)); do
        munge_ok && return 0
        sleep 0.1
    done
    die "munged did not come up (see /var/log/munge/munged.log)"
}

# --------------------------------------------------------------------------
# config

# JWT (for slurmrestd / `scontrol token`) only where Debian's
# slurm-wlm-jwt-plugin is installed; any architecture's multiarch dir.
jwt_enabled() { compgen -G '/usr/lib/*/slurm-wlm/auth_jwt.so' >/dev/null; }

render_slurm_conf() {
    cat <<EOF
${MARKER}
# Single-node test cluster for GPU Concierge. Regenerated by "up"; edits are lost.
ClusterName=concierge
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
$(jwt_enabled && printf 'AuthAltTypes=auth/jwt\nAuthAltParameters=jwt_key=%s/etc/jwt_hs256.key\n' "${DIR}")
StateSaveLocation=${DIR}/state
SlurmdSpoolDir=${DIR}/spool
SlurmctldPidFile=${DIR}/run/slurmctld.pid
SlurmdPidFile=${DIR}/run/slurmd.pid
SlurmctldLogFile=${DIR}/log/slurmctld.log
SlurmdLogFile=${DIR}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups here (containers/VMs without delegation): plain process tracking.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
# No mail on a test box (the default /bin/mail is usually absent).
MailProg=/bin/true
# backfill so that "squeue --start" reports expected start times; short
# interval so tests see them within seconds; batch_sched_delay=0 starts
# jobs at submit instead of up to 3 s later.
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=5,bf_resolution=60,batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default, a job with no --mem takes the whole node's memory and
# only one job could ever run.
DefMemPerCPU=1000
PriorityType=priority/basic
# No AccountingStorageTRES=gres/gpu: slurmctld 22.05 refuses to start with
# gres TRES unless slurmdbd is configured.
GresTypes=gpu
# Let over-limit jobs pend with reason PartitionTimeLimit instead of failing at submit.
EnforcePartLimits=NO
MinJobAge=300
KillWait=5
ReturnToService=2
InactiveLimit=0
Waittime=0
# The box has 2 cores; advertise 16 CPUs / 16000 MB so several jobs fit.
SlurmdParameters=config_overrides
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=16 Boards=1 SocketsPerBoard=1 CoresPerSocket=16 ThreadsPerCore=1 RealMemory=16000 Gres=gpu:a100:2,gpu:l40s:2 State=UNKNOWN
PartitionName=gpu Nodes=${NODE} Default=YES MaxTime=1-00:00:00 DefaultTime=01:00:00 State=UP
PartitionName=short Nodes=${NODE} Default=NO MaxTime=01:00:00 DefaultTime=00:30:00 State=UP
EOF
}

render_gres_conf() {
    # File= is required: without it the node registers INVALID ("gres/gpu
    # count reported lower than configured"). Files are made in ensure_config.
    cat <<EOF
${MARKER}
NodeName=${NODE} Name=gpu Type=a100 File=${DIR}/dev/nvidia[0-1]
NodeName=${NODE} Name=gpu Type=l40s File=${DIR}/dev/nvidia[2-3]
EOF
}

# is_ours PATH: PATH is absent, or is ours (a link into a state dir, or a
# file carrying the marker). Foreign configs must never be clobbered.
is_ours() {
    local p=$1
    [[ -e ${p} || -L ${p} ]] || return 0
    [[ -L ${p} && ! -e ${p} ]] && return 0 # dangling link: a removed state dir of ours
    grep -qxF "${MARKER}" "${p}"
}

# write_if_changed FILE CONTENT: returns 0 if FILE changed.
write_if_changed() {
    local file=$1 content=$2
    if [[ -f ${file} ]] && [[ "$(<"${file}")" == "${content}" ]]; then
        return 1
    fi
    printf '%s\n' "${content}" >"${file}.tmp"
    chmod 644 "${file}.tmp"
    mv -f "${file}.tmp" "${file}"
    return 0
}

# Writes config into $DIR/etc and links /etc/slurm/{slurm,gres}.conf to it
# (Debian's clients and daemons read /etc/slurm/slurm.conf; gres.conf is
# looked up next to it). Sets CONFIG_CHANGED=1 if anything changed.
CONFIG_CHANGED=0
ensure_config() {
    local f
    for f in slurm.conf gres.conf; do
        is_ours "${ETC_SLURM}/${f}" || die "${ETC_SLURM}/${f} exists and is not managed by this script (no '${MARKER}' line); refusing to overwrite it. Move it away first."
    done
    install -d -m 755 "${DIR}" "${DIR}/etc" "${DIR}/state" "${DIR}/spool" "${DIR}/run" "${DIR}/log" "${DIR}/dev" "${ETC_SLURM}"
    # Fake GPU device files (gres.conf File=). Character devices (same
    # numbers as /dev/null, so nothing can misuse them) make slurmd set
    # CUDA_VISIBLE_DEVICES/SLURM_JOB_GPUS in jobs; with plain files it logs
    # "not a valid character or block device" and leaves them unset, though
    # scheduling still works. Fall back to plain files where mknod is denied.
    local dev
    for f in 0 1 2 3; do
        dev=${DIR}/dev/nvidia${f}
        [[ -c ${dev} ]] && continue
        rm -f "${dev}"
        mknod -m 666 "${dev}" c 1 3 2>/dev/null || : >"${dev}"
        CONFIG_CHANGED=1
    done
    if jwt_enabled && [[ ! -s ${DIR}/etc/jwt_hs256.key ]]; then
        # For slurmrestd/`scontrol token`; readable by SlurmUser (root) only.
        (umask 077 && dd if=/dev/urandom of="${DIR}/etc/jwt_hs256.key" bs=32 count=1 status=none)
    fi
    write_if_changed "${DIR}/etc/slurm.conf" "$(render_slurm_conf)" && CONFIG_CHANGED=1
    write_if_changed "${DIR}/etc/gres.conf" "$(render_gres_conf)" && CONFIG_CHANGED=1
    for f in slurm.conf gres.conf; do
        if [[ "$(readlink "${ETC_SLURM}/${f}" 2>/dev/null || true)" != "${DIR}/etc/${f}" ]]; then
            ln -sfn "${DIR}/etc/${f}" "${ETC_SLURM}/${f}"
            CONFIG_CHANGED=1
        fi
    done
}

# --------------------------------------------------------------------------
# daemons

ctld_up() { pid_alive "${DIR}/run/slurmctld.pid" slurmctld; }
slurmd_up() { pid_alive "${DIR}/run/slurmd.pid" slurmd; }

# node_state: the node's full state (idle, mixed, idle+drain, down*+not_responding, ...).
# StateComplete, not %T: after a backfill plan on 22.05, %T kept saying "mixed" for minutes on an
# empty, idle node, which stalled `reset`.
node_state() { sinfo -h -N -n "${NODE}" -O StateComplete 2>/dev/null | head -n1 | tr -d '[:space:]'; }

node_ready() {
    case "$(node_state)" in
        idle | mixed | allocated | completing) return 0 ;;
        *) return 1 ;;
    esac
}

# slurmrestd runs where the JWT plugin is installed (jwt_enabled) and answers on its port.
rest_wanted() { jwt_enabled && command -v slurmrestd >/dev/null 2>&1; }
rest_up() {
    pid_alive "${DIR}/run/slurmrestd.pid" slurmrestd && (exec 3<>"/dev/tcp/${REST_HOST}/${REST_PORT}") 2>/dev/null
}

healthy() {
    ctld_up && slurmd_up && munge_ok && scontrol ping 2>/dev/null | grep -q 'is UP' && node_ready \
        && { ! rest_wanted || rest_up; }
}

# stop_pidfile PIDFILE NAME: SIGTERM, wait, then SIGKILL the daemon in PIDFILE.
stop_pidfile() {
    local pidfile=$1 name=$2 pid i
    if pid_alive "${pidfile}" "${name}"; then
        pid=$(<"${pidfile}")
        kill "${pid}" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            proc_running "${pid}" || break
            sleep 0.1
        done
        if proc_running "${pid}"; then
            log "${name} (pid ${pid}) ignored SIGTERM; killing"
            kill -9 "${pid}" 2>/dev/null || true
        fi
    fi
    rm -f "${pidfile}"
}

# start_rest: slurmrestd in the background (it does not daemonize); setpriv execs, so the
# pid is slurmrestd's own. Without slurmdbd only the slurmctld plugin (openapi/v0.0.38) loads.
start_rest() {
    rest_wanted || return 0
    rest_up && return 0
    stop_pidfile "${DIR}/run/slurmrestd.pid" slurmrestd
    # The daemon must not inherit our descriptors beyond 0-2: a caller's `flock /tmp/slurm.lock`
    # descriptor would keep the lock held for as long as slurmrestd runs.
    (
        for fd in /proc/self/fd/*; do
            fd=${fd##*/}
            ((fd > 2)) && eval "exec ${fd}>&-"
        done
        SLURM_JWT=daemon exec setsid setpriv --reuid="${REST_USER}" --regid="${REST_USER}" --clear-groups \
            slurmrestd -s openapi/v0.0.38 -a rest_auth/jwt "${REST_HOST}:${REST_PORT}"
    ) </dev/null >>"${DIR}/log/slurmrestd.log" 2>&1 &
    echo $! >"${DIR}/run/slurmrestd.pid"
    local i
    for ((i = 0; i < 100; i++)); do
        rest_up && return 0
        sleep 0.1
    done
    tail -n 5 "${DIR}/log/slurmrestd.log" >&2 || true
    die "slurmrestd did not listen on ${REST_HOST}:${REST_PORT}; see ${DIR}/log/slurmrestd.log"
}

stop_daemons() {
    stop_pidfile "${DIR}/run/slurmrestd.pid" slurmrestd
    stop_pidfile "${DIR}/run/slurmctld.pid" slurmctld
    stop_pidfile "${DIR}/run/slurmd.pid" slurmd
}

# Another slurmctld/slurmd (e.g. the distro service with its own pid file)
# would hold ports 6817/6818; say so instead of failing obscurely.
check_foreign_daemons() {
    local name pids
    for name in slurmctld slurmd; do
        pids=$(pids_named "${name}" | tr '\n' ' ')
        if [[ -n ${pids// /} ]]; then
            die "a ${name} not started by this script is running (pid ${pids% }); stop it first (e.g. systemctl stop ${name})"
        fi
    done
}

start_daemons() {
    check_foreign_daemons
    # Stale pid files from a crash would confuse pid_alive / the daemons.
    rm -f "${DIR}/run/slurmctld.pid" "${DIR}/run/slurmd.pid"
    # -c: clear saved jobs/state (clean test cluster every start);
    # -i: ignore unreadable state files left by a crash.
    slurmctld -c -i
    local i
    for ((i = 0; i < TIMEOUT * 10; i++)); do
        scontrol ping 2>/dev/null | grep -q 'is UP' && break
        # A config error kills slurmctld right after it daemonizes: fail fast.
        if ((i > 20)) && ! ctld_up; then
            tail -n 5 "${DIR}/log/slurmctld.log" >&2 || true
            die "slurmctld exited; see ${DIR}/log/slurmctld.log"
        fi
        sleep 0.1
    done
    scontrol ping 2>/dev/null | grep -q 'is UP' \
        || die "slurmctld did not answer; see ${DIR}/log/slurmctld.log"
    slurmd
}

wait_node_idle() {
    local deadline=$((SECONDS + TIMEOUT)) state=""
    while ((SECONDS < deadline)); do
        state=$(node_state)
        case "${state}" in
            idle | mixed | allocated) return 0 ;;
            *drain* | *inval* | *fail*)
                die "node ${NODE} is '${state}': $(scontrol show node "${NODE}" | grep -i reason || true)"
                ;;
            *) ;; # unknown/down*/not yet registered: keep waiting
        esac
        sleep 0.5
    done
    die "node ${NODE} not idle after ${TIMEOUT}s (state '${state}'); see ${DIR}/log/slurmd.log"
}

summary() {
    local info
    info=$(scontrol show node "${NODE}" -o 2>/dev/null) || return 1
    printf 'slurm up: node=%s state=%s cpus=%s mem=%s gres=%s partitions=%s conf=%s rest=%s\n' \
        "${NODE}" "$(node_state)" \
        "$(grep -o 'CPUTot=[0-9]*' <<<"${info}" | cut -d= -f2)" \
        "$(grep -o 'RealMemory=[0-9]*' <<<"${info}" | cut -d= -f2)" \
        "$(grep -o 'Gres=[^ ]*' <<<"${info}" | cut -d= -f2)" \
        "$(sinfo -h -o '%P' | paste -sd, -)" \
        "${DIR}/etc/slurm.conf" \
        "$(rest_up && echo "http://${REST_HOST}:${REST_PORT}" || echo none)"
}

# --------------------------------------------------------------------------
# commands

cmd_up() {
    need_root up
    install_packages
    ensure_users
    ensure_munge
    ensure_config
    if ((CONFIG_CHANGED == 0)) && healthy; then
        summary
        return 0
    fi
    ((CONFIG_CHANGED)) && log "configuration written to ${DIR}/etc"
    if ((CONFIG_CHANGED == 0)) && ctld_up && slurmd_up && node_ready; then
        start_rest # only slurmrestd was missing: the controller and its jobs stay as they are
        summary
        return 0
    fi
    stop_daemons
    start_daemons
    wait_node_idle
    start_rest
    summary
}

cmd_down() {
    need_root down
    # Running jobs' slurmstepd keep going; the next "up" starts with -c and
    # the controller kills them as orphans when slurmd re-registers.
    stop_daemons
    log "slurmctld, slurmd and slurmrestd stopped (munged left running)"
}

cmd_status() {
    if ! healthy; then
        log "not up (slurmctld: $(ctld_up && echo running || echo stopped), slurmd: $(slurmd_up && echo running || echo stopped), slurmrestd: $(rest_up && echo running || echo stopped), munge: $(munge_ok && echo ok || echo down), node: $(node_state || true))"
        return 1
    fi
    summary
    sinfo -N -O 'NodeHost,Partition,StateLong,CPUsState,Memory,Gres:40,GresUsed:60'
    scontrol show node "${NODE}"
}

cmd_reset() {
    need_root reset
    healthy || die "slurm is not up; run: $0 up"
    local ids deadline=$((SECONDS + TIMEOUT))
    # One listing + one scancel for all users' jobs (root may cancel any job).
    ids=$(squeue -h -o '%i' | tr '\n' ' ')
    if [[ -n ${ids// /} ]]; then
        # shellcheck disable=SC2086 # word splitting into job ids is intended
        scancel ${ids} 2>/dev/null || true
    fi
    # Poll gently (every 0.5 s, bounded) until no job is pending/running/
    # completing and the node is free again; re-cancel every 5 s in case a
    # job slipped in between the listing and the cancel.
    local n=0 queue
    while ((SECONDS < deadline)); do
        queue=$(squeue -h -o '%i %t')
        if [[ -z ${queue} && "$(node_state)" == idle ]]; then
            return 0
        fi
        # Ids of jobs not already completing (CG).
        ids=$(awk '$2 != "CG" {print $1}' <<<"${queue}" | tr '\n' ' ')
        if ((++n % 10 == 0)) && [[ -n ${ids// /} ]]; then
            # shellcheck disable=SC2086 # word splitting into job ids is intended
            scancel ${ids} 2>/dev/null || true
        fi
        sleep 0.5
    done
    die "queue not empty after ${TIMEOUT}s: $(squeue -h -o '%i %u %T %r' | tr '\n' ';')"
}

main() {
    local cmd=${1:-}
    [[ ${DIR} == /* ]] || die "CONCIERGE_SLURM_DIR must be an absolute path (got '${DIR}')"
    case "${cmd}" in
        up) cmd_up ;;
        down) cmd_down ;;
        status) cmd_status ;;
        reset) cmd_reset ;;
        *)
            printf 'usage: %s {up|down|status|reset}\n' "$0" >&2
            exit 2
            ;;
    esac
}

main "$@"
