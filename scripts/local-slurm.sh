#!/usr/bin/env bash
# local-slurm.sh - bring up a REAL single-node Slurm (Debian 12 / Slurm 22.05)
# with fake GPU GRES, for the README quick start, the pytest suite and CI.
#
# Usage (as root):
#   scripts/local-slurm.sh up       install/configure/start; no-op if already healthy
#   scripts/local-slurm.sh down     stop slurmctld, slurmd, slurmdbd, slurmrestd (munged and MariaDB stay)
#   scripts/local-slurm.sh restart  stop slurmctld + slurmd and start them again KEEPING the saved
#                                   state (jobs, ids), as a site's controller restart does
#   scripts/local-slurm.sh status   show sinfo / node summary; exit 1 if not up
#   scripts/local-slurm.sh reset    cancel every job and wait until the queue is empty
#
# Environment:
#   CONCIERGE_SLURM_DIR   state dir (default /var/lib/concierge-slurm)
#   CONCIERGE_SLURM_TIMEOUT  seconds to wait for the node / queue (default 60)
#   CONCIERGE_SLURM_DB_HOST / _DB_PORT  MariaDB for slurmdbd (default 127.0.0.1:3306; root
#                         with an empty password creates the database slurm_acct_db and its user)
#
# slurmrestd (REST API v0.0.38, JWT) listens on 127.0.0.1:6820 as the user
# slurmrestd (it refuses root); `scontrol token username=USER` mints tokens.
#
# Cluster shape (what the tests rely on): one node "$(hostname -s)" with
# Gres=gpu:a100:2,gpu:l40s:2 backed by fake device files in $DIR/dev, 16 schedulable
# CPUs and 16000 MB via SlurmdParameters=config_overrides, partitions "gpu"
# (default, 1 day) and "short" (1 hour), sched/backfill.
# Accounting as a site runs it: slurmdbd (MariaDB), AccountingStorageTRES=gres/gpu,
# AccountingStorageEnforce=associations,limits,qos, priority/multifactor with fair share.
# Accounts/users (sacctmgr): account "concierge" = alice, bob (their default; no limits);
# account "vision" (GrpTRES=gres/gpu=1) = dana (default), alice and bob (with --account=vision);
# root in "root". Every user may use QOS "normal" (the default, no limits), "gpu-group"
# (GrpTRES=gres/gpu=2: all its jobs together) and "gpu-per-user" (MaxTRESPerUser=gres/gpu=1),
# which a job opts into with --qos. So the default path has no GPU limit at all.
# Test users alice, bob, dana (group concierge-users) exist with home dirs.
set -euo pipefail

readonly MARKER='# managed by gpu-concierge local-slurm.sh'
readonly DIR="${CONCIERGE_SLURM_DIR:-/var/lib/concierge-slurm}"
readonly TIMEOUT="${CONCIERGE_SLURM_TIMEOUT:-60}"
readonly ETC_SLURM=/etc/slurm
readonly TEST_USERS=(alice bob dana)
readonly DB_HOST="${CONCIERGE_SLURM_DB_HOST:-127.0.0.1}" DB_PORT="${CONCIERGE_SLURM_DB_PORT:-3306}"
readonly DB_NAME=slurm_acct_db DB_USER=slurmdbd
readonly DBD_HOST=127.0.0.1 DBD_PORT=6819
# Accounting layout (see the header); limits are restored by every "up".
readonly MAIN_ACCOUNT=concierge MAIN_USERS=(alice bob)
readonly LIMITED_ACCOUNT=vision LIMITED_USERS=(dana alice bob) LIMITED_ACCOUNT_TRES=gres/gpu=1
readonly GROUP_QOS=gpu-group GROUP_QOS_TRES=gres/gpu=2 PER_USER_QOS=gpu-per-user PER_USER_QOS_TRES=gres/gpu=1
readonly USER_QOS="${GROUP_QOS},${PER_USER_QOS},normal" # as sacctmgr lists them (sorted)
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
    for bin in slurmctld slurmd sinfo munged slurmrestd slurmdbd sacctmgr; do
        command -v "${bin}" >/dev/null 2>&1 || missing+=("${bin}")
    done
    jwt_enabled || missing+=(auth_jwt) # slurmrestd's JWT; slurm-wlm does not pull it in
    ((${#missing[@]} == 0)) && return 0
    local packages=(slurm-wlm slurm-client munge slurmrestd slurm-wlm-jwt-plugin slurmdbd)
    log "missing ${missing[*]}; installing ${packages[*]}"
    apt_install "${packages[@]}"
}

# apt_install PACKAGE...: install without letting postinst scripts start daemons.
apt_install() {
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
    if ! apt-get install "${apt_opts[@]}" "$@"; then
        apt-get update -q -o DPkg::Lock::Timeout=300
        apt-get install "${apt_opts[@]}" "$@"
    fi
    if ((created_policy)); then
        rm -f "${policy}"
        trap - EXIT
    fi
    return 0
}

# --------------------------------------------------------------------------
# MariaDB (slurmdbd's storage)

# sql STATEMENTS: run as MariaDB's root (empty password, as the machine kind sets it up).
sql() { mysql --protocol=tcp -h "${DB_HOST}" -P "${DB_PORT}" -u root --batch --skip-column-names -e "$1"; }
db_ok() { command -v mysql >/dev/null 2>&1 && sql 'SELECT 1' >/dev/null 2>&1; }

# ensure_mariadb: the machine kind runs MariaDB already; elsewhere (a bare Debian) install and start
# it here, so the README's commands still work from scratch.
ensure_mariadb() {
    # The client first: a running server is found (and slurmdbd's database made) through `mysql`.
    command -v mysql >/dev/null 2>&1 || apt_install mariadb-client
    db_ok && return 0
    if [[ ${DB_HOST} != 127.0.0.1 && ${DB_HOST} != localhost ]]; then
        die "MariaDB at ${DB_HOST}:${DB_PORT} does not answer as root with an empty password"
    fi
    if ! command -v mariadbd >/dev/null 2>&1; then
        log "MariaDB not running and not installed; installing mariadb-server"
        apt_install mariadb-server mariadb-client
    fi
    db_ok && return 0
    log "starting MariaDB"
    install -d -m 755 -o mysql -g mysql /run/mysqld
    [[ -d /var/lib/mysql/mysql ]] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    # Detached, without our descriptors (a caller's flock must not stay held by it).
    (
        for fd in /proc/self/fd/*; do
            fd=${fd##*/}
            ((fd > 2)) && eval "exec ${fd}>&-"
        done
        exec setsid mariadbd --user=mysql --bind-address=127.0.0.1 --port="${DB_PORT}"
    ) </dev/null >>/var/log/concierge-mariadb.log 2>&1 &
    local i
    for ((i = 0; i < TIMEOUT * 10; i++)); do
        db_ok && return 0
        sleep 0.1
    done
    die "MariaDB did not answer on ${DB_HOST}:${DB_PORT}; see /var/log/concierge-mariadb.log"
}

# ensure_database: slurmdbd's database and user (password kept in $DIR/etc, reapplied every time so a
# wiped state dir or database never leaves them out of step).
ensure_database() {
    local pass_file=${DIR}/etc/slurmdbd.db-password
    install -d -m 755 "${DIR}" "${DIR}/etc"
    if [[ ! -s ${pass_file} ]]; then
        (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"${pass_file}")
    fi
    DB_PASSWORD=$(<"${pass_file}")
    local host
    for host in localhost 127.0.0.1; do
        sql "CREATE USER IF NOT EXISTS '${DB_USER}'@'${host}' IDENTIFIED BY '${DB_PASSWORD}';
             ALTER USER '${DB_USER}'@'${host}' IDENTIFIED BY '${DB_PASSWORD}';
             GRANT ALL ON ${DB_NAME}.* TO '${DB_USER}'@'${host}';" \
            || die "could not create MariaDB user ${DB_USER} at ${DB_HOST}:${DB_PORT}"
    done
    sql "CREATE DATABASE IF NOT EXISTS ${DB_NAME}" || die "could not create database ${DB_NAME}"
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
    # --force: a stale socket from a dead munged would otherwise block start. No descriptors
    # beyond 0-2: a caller's `flock /tmp/slurm.lock` would otherwise stay held by munged.
    (
        for fd in /proc/self/fd/*; do
            fd=${fd##*/}
            ((fd > 2)) && eval "exec ${fd}>&-"
        done
        exec runuser -u munge -- /usr/sbin/munged --force
    ) </dev/null
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
# linux (from /proc): no cgroups here. sacct then has each step's CPU time and memory.
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
# Accounting through slurmdbd, as a site runs it: sacct knows every job that left the queue,
# GPUs are a tracked TRES (AllocTRES gres/gpu=N), and jobs without an association, over a QOS
# or an association limit are refused or held (AssocGrpGRES, QOSGrpGRES, QOSMaxGRESPerUser).
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=${DBD_HOST}
AccountingStoragePort=${DBD_PORT}
AccountingStorageTRES=gres/gpu
AccountingStorageEnforce=associations,limits,qos
# The request id travels in the job's comment: keep it in sacct too.
AccountingStoreFlags=job_comment
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
# Fair share as sites run it. Age and size weigh little so that, for one person, jobs still start
# in the order they were submitted (the tests rely on it); PriorityCalcPeriod=1 (minute) keeps
# sprio's factors fresh on a test box.
PriorityType=priority/multifactor
PriorityWeightFairshare=10000
PriorityWeightAge=1000
PriorityWeightJobSize=100
PriorityWeightQOS=1000
PriorityWeightPartition=0
PriorityMaxAge=7-0
PriorityDecayHalfLife=7-0
PriorityCalcPeriod=1
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

render_slurmdbd_conf() {
    cat <<EOF
${MARKER}
# slurmdbd for the single-node test cluster. Regenerated by "up"; edits are lost.
AuthType=auth/munge
$(jwt_enabled && printf 'AuthAltTypes=auth/jwt\nAuthAltParameters=jwt_key=%s/etc/jwt_hs256.key\n' "${DIR}")
DbdHost=localhost
DbdAddr=${DBD_HOST}
DbdPort=${DBD_PORT}
SlurmUser=root
LogFile=${DIR}/log/slurmdbd.log
PidFile=${DIR}/run/slurmdbd.pid
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=${DB_HOST}
StoragePort=${DB_PORT}
StorageUser=${DB_USER}
StoragePass=${DB_PASSWORD}
StorageLoc=${DB_NAME}
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

# write_if_changed FILE CONTENT [MODE]: returns 0 if FILE changed.
write_if_changed() {
    local file=$1 content=$2 mode=${3:-644}
    if [[ -f ${file} ]] && [[ "$(<"${file}")" == "${content}" ]]; then
        return 1
    fi
    (umask 077 && printf '%s\n' "${content}" >"${file}.tmp")
    chmod "${mode}" "${file}.tmp"
    mv -f "${file}.tmp" "${file}"
    return 0
}

# Writes config into $DIR/etc and links /etc/slurm/{slurm,gres,slurmdbd}.conf to it
# (Debian's clients and daemons read /etc/slurm/slurm.conf; gres.conf and slurmdbd.conf are
# looked up next to it). Sets CONFIG_CHANGED=1 (slurm.conf, gres.conf) and DBD_CONFIG_CHANGED=1
# (slurmdbd.conf) if anything changed.
CONFIG_CHANGED=0 DBD_CONFIG_CHANGED=0 DB_PASSWORD=""
ensure_config() {
    local f
    for f in slurm.conf gres.conf slurmdbd.conf; do
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
    # slurmdbd refuses a slurmdbd.conf that others may read (it holds the database password):
    # 0600, owned by SlurmUser (root here). Read from SLURM_CONF's directory, so linked there too.
    write_if_changed "${DIR}/etc/slurmdbd.conf" "$(render_slurmdbd_conf)" 600 && DBD_CONFIG_CHANGED=1
    chown root:root "${DIR}/etc/slurmdbd.conf"
    for f in slurm.conf gres.conf slurmdbd.conf; do
        if [[ "$(readlink "${ETC_SLURM}/${f}" 2>/dev/null || true)" != "${DIR}/etc/${f}" ]]; then
            ln -sfn "${DIR}/etc/${f}" "${ETC_SLURM}/${f}"
            if [[ ${f} == slurmdbd.conf ]]; then DBD_CONFIG_CHANGED=1; else CONFIG_CHANGED=1; fi
        fi
    done
}

# --------------------------------------------------------------------------
# daemons

ctld_up() { pid_alive "${DIR}/run/slurmctld.pid" slurmctld; }
slurmd_up() { pid_alive "${DIR}/run/slurmd.pid" slurmd; }
# slurmdbd runs with the current config and listens (sacctmgr goes to it, never to slurmctld).
dbd_up() {
    started_with dbd && pid_alive "${DIR}/run/slurmdbd.pid" slurmdbd \
        && (exec 3<>"/dev/tcp/${DBD_HOST}/${DBD_PORT}") 2>/dev/null
}

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
# The accounting endpoints (/slurmdb/v0.0.38/...) load too; a slurmrestd started before them is stale.
readonly REST_PLUGINS=openapi/v0.0.38,openapi/dbv0.0.38
rest_up() {
    pid_alive "${DIR}/run/slurmrestd.pid" slurmrestd \
        && tr '\0' ' ' <"/proc/$(<"${DIR}/run/slurmrestd.pid")/cmdline" | grep -qF -- "-s ${REST_PLUGINS} " \
        && (exec 3<>"/dev/tcp/${REST_HOST}/${REST_PORT}") 2>/dev/null
}

# started_with NAME: the daemons NAME (ctld, dbd) run with the config as written now. A run that
# wrote the config and died before restarting them must not leave them on the old one.
config_digest() {
    local f
    for f in "$@"; do cat "${DIR}/etc/${f}" 2>/dev/null || true; done | sha256sum | cut -d' ' -f1
}
started_with() {
    case $1 in
        ctld) [[ "$(cat "${DIR}/run/ctld.config" 2>/dev/null)" == "$(config_digest slurm.conf gres.conf)" ]] ;;
        dbd) [[ "$(cat "${DIR}/run/dbd.config" 2>/dev/null)" == "$(config_digest slurmdbd.conf)" ]] ;;
    esac
}
note_started() {
    case $1 in
        ctld) config_digest slurm.conf gres.conf >"${DIR}/run/ctld.config" ;;
        dbd) config_digest slurmdbd.conf >"${DIR}/run/dbd.config" ;;
    esac
}

# The controller side (what "restart" restarts); slurmdbd and slurmrestd are checked apart.
ctld_healthy() {
    started_with ctld && ctld_up && slurmd_up && munge_ok && scontrol ping 2>/dev/null | grep -q 'is UP' && node_ready
}

healthy() {
    ctld_healthy && dbd_up && { ! rest_wanted || rest_up; }
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
# pid is slurmrestd's own. Both the slurmctld (openapi/v0.0.38) and slurmdbd (dbv0.0.38) plugins.
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
            slurmrestd -s "${REST_PLUGINS}" -a rest_auth/jwt "${REST_HOST}:${REST_PORT}"
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

stop_controller() {
    stop_pidfile "${DIR}/run/slurmctld.pid" slurmctld
    stop_pidfile "${DIR}/run/slurmd.pid" slurmd
}

stop_daemons() {
    stop_pidfile "${DIR}/run/slurmrestd.pid" slurmrestd
    stop_controller
    stop_pidfile "${DIR}/run/slurmdbd.pid" slurmdbd
}

# start_dbd: slurmdbd (it daemonizes), then wait until sacctmgr gets answers from it.
start_dbd() {
    dbd_up && return 0
    stop_pidfile "${DIR}/run/slurmdbd.pid" slurmdbd
    local pids
    pids=$(pids_named slurmdbd | tr '\n' ' ')
    [[ -z ${pids// /} ]] || die "a slurmdbd not started by this script is running (pid ${pids% }); stop it first"
    # No descriptors beyond 0-2 (a caller's flock must not stay held by the daemon).
    (
        for fd in /proc/self/fd/*; do
            fd=${fd##*/}
            ((fd > 2)) && eval "exec ${fd}>&-"
        done
        exec slurmdbd
    ) </dev/null
    local i
    note_started dbd
    for ((i = 0; i < TIMEOUT * 10; i++)); do
        dbd_up && acct_lines list cluster format=cluster >/dev/null && return 0
        if ((i > 30)) && ! pid_alive "${DIR}/run/slurmdbd.pid" slurmdbd; then
            tail -n 5 "${DIR}/log/slurmdbd.log" >&2 || true
            die "slurmdbd exited; see ${DIR}/log/slurmdbd.log"
        fi
        sleep 0.1
    done
    die "slurmdbd did not answer sacctmgr; see ${DIR}/log/slurmdbd.log"
}

acct_lines() { sacctmgr -n -P "$@" 2>/dev/null; }

# ensure_accounting PHASE: cluster, accounts, users, QOS and GPU limits as the header says. Reads
# what exists in two calls and changes only what differs, so a warm "up" writes nothing and puts
# back what a test changed. PHASE "before" runs before slurmctld starts (it must find its
# cluster); "limits" after: gres/gpu becomes a TRES that sacctmgr knows only once slurmctld has
# registered with AccountingStorageTRES=gres/gpu.
ensure_accounting() {
    local phase=$1 qos assocs user i
    qos=$(acct_lines list qos format=name,grptres,maxtrespu)
    assocs=$(acct_lines list assoc cluster=concierge format=account,user,qos,grptres)
    if [[ -z ${assocs} ]]; then
        sacctmgr -i add cluster concierge >/dev/null || die "sacctmgr could not add cluster concierge"
        log "accounting: cluster concierge added"
    fi
    local name
    for name in "${GROUP_QOS}" "${PER_USER_QOS}"; do
        if ! grep -q "^${name}|" <<<"${qos}"; then
            sacctmgr -i add qos "${name}" >/dev/null || die "sacctmgr could not add qos ${name}"
        fi
    done
    ensure_account "${assocs}" "${MAIN_ACCOUNT}" "${MAIN_USERS[@]}"
    ensure_account "${assocs}" "${LIMITED_ACCOUNT}" "${LIMITED_USERS[@]}"
    # root (the admin in tests) is in account root since "add cluster"; it may use the QOS too.
    user_qos "${assocs}" root root
    [[ ${phase} == limits ]] || return 0
    if [[ -z $(acct_lines list tres type=gres name=gpu format=id) ]]; then
        for ((i = 0; i < TIMEOUT * 10; i++)); do
            [[ -n $(acct_lines list tres type=gres name=gpu format=id) ]] && break
            sleep 0.2
        done
    fi
    if ! grep -qx "${GROUP_QOS}|${GROUP_QOS_TRES}|" <<<"${qos}"; then
        sacctmgr -i modify qos "${GROUP_QOS}" set GrpTRES="${GROUP_QOS_TRES}" MaxTRESPerUser=gres/gpu=-1 \
            >/dev/null || die "sacctmgr could not set ${GROUP_QOS}'s limits"
        log "accounting: qos ${GROUP_QOS} GrpTRES=${GROUP_QOS_TRES}"
    fi
    if ! grep -qx "${PER_USER_QOS}||${PER_USER_QOS_TRES}" <<<"${qos}"; then
        sacctmgr -i modify qos "${PER_USER_QOS}" set MaxTRESPerUser="${PER_USER_QOS_TRES}" GrpTRES=gres/gpu=-1 \
            >/dev/null || die "sacctmgr could not set ${PER_USER_QOS}'s limits"
        log "accounting: qos ${PER_USER_QOS} MaxTRESPerUser=${PER_USER_QOS_TRES}"
    fi
    if ! grep -qx "${LIMITED_ACCOUNT}||normal|${LIMITED_ACCOUNT_TRES}" <<<"${assocs}"; then
        sacctmgr -i modify account "${LIMITED_ACCOUNT}" where cluster=concierge set \
            GrpTRES="${LIMITED_ACCOUNT_TRES}" >/dev/null || die "sacctmgr could not set ${LIMITED_ACCOUNT}'s GrpTRES"
        log "accounting: account ${LIMITED_ACCOUNT} GrpTRES=${LIMITED_ACCOUNT_TRES}"
    fi
}

# ensure_account ASSOCS ACCOUNT USER...: the account, each user in it (their default account
# when they have none yet).
ensure_account() {
    local assocs=$1 account=$2 user
    shift 2
    if ! grep -q "^${account}||" <<<"${assocs}"; then
        sacctmgr -i add account "${account}" cluster=concierge description="${account}" \
            organization=concierge >/dev/null || die "sacctmgr could not add account ${account}"
        log "accounting: account ${account} added"
    fi
    for user in "$@"; do
        if ! grep -q "^${account}|${user}|" <<<"${assocs}"; then
            sacctmgr -i add user "${user}" account="${account}" >/dev/null \
                || die "sacctmgr could not add user ${user} to ${account}"
            log "accounting: user ${user} added to ${account}"
        fi
        user_qos "${assocs}" "${account}" "${user}"
    done
}

# user_qos ASSOCS ACCOUNT USER: QOS normal (the default, no limits) and the limited ones, no own
# GPU limit.
user_qos() {
    local assocs=$1 account=$2 user=$3
    grep -qx "${account}|${user}|${USER_QOS}|" <<<"${assocs}" && return 0
    sacctmgr -i modify user "${user}" where account="${account}" cluster=concierge set \
        qos="${USER_QOS}" defaultqos=normal >/dev/null || die "sacctmgr could not set ${user}'s QOS"
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

# start_daemons [keep]: slurmctld and slurmd. Without "keep", slurmctld -c clears the saved jobs
# (a clean test cluster on every "up"); with it the saved state is loaded, as a site's restart does.
start_daemons() {
    check_foreign_daemons
    # Stale pid files from a crash would confuse pid_alive / the daemons.
    rm -f "${DIR}/run/slurmctld.pid" "${DIR}/run/slurmd.pid"
    # -i: ignore unreadable state files left by a crash.
    if [[ ${1:-} == keep ]]; then
        slurmctld -i
    else
        slurmctld -c -i
    fi
    note_started ctld
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
    printf 'slurm up: node=%s state=%s cpus=%s mem=%s gres=%s partitions=%s conf=%s rest=%s accounting=%s\n' \
        "${NODE}" "$(node_state)" \
        "$(grep -o 'CPUTot=[0-9]*' <<<"${info}" | cut -d= -f2)" \
        "$(grep -o 'RealMemory=[0-9]*' <<<"${info}" | cut -d= -f2)" \
        "$(grep -o 'Gres=[^ ]*' <<<"${info}" | cut -d= -f2)" \
        "$(sinfo -h -o '%P' | paste -sd, -)" \
        "${DIR}/etc/slurm.conf" \
        "$(rest_up && echo "http://${REST_HOST}:${REST_PORT}" || echo none)" \
        "$(dbd_up && echo "slurmdbd ${DBD_HOST}:${DBD_PORT}" || echo down)"
}

# --------------------------------------------------------------------------
# commands

cmd_up() {
    need_root up
    install_packages
    ensure_users
    ensure_munge
    ensure_mariadb
    ensure_database
    ensure_config
    if ((CONFIG_CHANGED == 0 && DBD_CONFIG_CHANGED == 0)) && healthy; then
        # Cheap when nothing differs; puts back what a test changed.
        ensure_accounting limits
        summary
        return 0
    fi
    ((CONFIG_CHANGED || DBD_CONFIG_CHANGED)) && log "configuration written to ${DIR}/etc"
    started_with dbd || stop_pidfile "${DIR}/run/slurmdbd.pid" slurmdbd
    # slurmdbd first: the cluster must be in accounting before slurmctld registers with it.
    start_dbd
    ensure_accounting before
    if ((CONFIG_CHANGED == 0)) && ctld_healthy; then
        # Only slurmdbd or slurmrestd was missing: the controller and its jobs stay as they are.
        ensure_accounting limits
        start_rest
        summary
        return 0
    fi
    stop_pidfile "${DIR}/run/slurmrestd.pid" slurmrestd
    stop_controller
    start_daemons
    ensure_accounting limits
    wait_node_idle
    start_rest
    summary
}

cmd_restart() {
    need_root restart
    [[ -s ${DIR}/etc/slurm.conf ]] || die "no configuration in ${DIR}/etc; run: $0 up"
    ensure_munge
    start_dbd
    stop_controller
    start_daemons keep
    wait_node_idle
    start_rest
    summary
}

cmd_down() {
    need_root down
    # Running jobs' slurmstepd keep going; the next "up" starts with -c and
    # the controller kills them as orphans when slurmd re-registers.
    stop_daemons
    log "slurmctld, slurmd, slurmdbd and slurmrestd stopped (munged and MariaDB left running)"
}

cmd_status() {
    if ! healthy; then
        log "not up (slurmctld: $(ctld_up && echo running || echo stopped), slurmd: $(slurmd_up && echo running || echo stopped), slurmdbd: $(dbd_up && echo running || echo stopped), slurmrestd: $(rest_up && echo running || echo stopped), munge: $(munge_ok && echo ok || echo down), node: $(node_state || true))"
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
        restart) cmd_restart ;;
        status) cmd_status ;;
        reset) cmd_reset ;;
        *)
            printf 'usage: %s {up|down|restart|status|reset}\n' "$0" >&2
            exit 2
            ;;
    esac
}

main "$@"
