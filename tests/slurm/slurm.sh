# SPDX-License-Identifier: MIT
# A real Slurm for the tests (sourced after tests/integration/lib.sh, as
# root): munged, MariaDB, slurmdbd, slurmctld and one slurmd whose node has
# GPUS fake GPUs of model MODEL (device nodes made with mknod, which is all
# slurmd looks at), all in $T/slurm on ports the kernel picked. slurm_start
# leaves SLURM_CONF exported, so sacctmgr, scontrol, sacct, sbatch and srun
# talk to it; everything is stopped, and what was borrowed given back, when
# the test exits, also on failure.
#
# munge: the clients (sacctmgr above all) ignore AuthInfo=socket= and reach
# munged on its compiled-in socket, /run/munge/munge.socket.2. A munged
# that already answers there is used as it is. Otherwise ours is started
# there with its own key in $T (never /etc/munge/munge.key), as the owner
# of /run/munge when that directory exists (munged insists on it), and on
# exit it is stopped and /run/munge is left as it was found: files that
# were in the way are put back, a directory we made is removed. A lock
# keeps two runs of this harness from sharing the socket.
# shellcheck shell=bash

SLURM_CLUSTER=gltest
SLURM_PARTITION=gpu
SLURM_NODE=gpu1
SLURM_GPUS=8

MUNGE_SOCKET=/run/munge/munge.socket.2
_SLURM_PIDS=()		# started daemons, stopped in reverse order
_SLURM_NAMES=()
_MUNGE_MADE_DIR=
_MUNGE_SAVED=()		# files of /run/munge moved aside, put back on exit

# slurm_skip_unless_installed: exit 77 (saying why) when a package is missing.
slurm_skip_unless_installed() {
	local c missing=()
	for c in munged mariadbd mariadb-install-db slurmdbd slurmctld slurmd \
		sacctmgr scontrol sacct sbatch srun; do
		command -v "$c" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin command -v "$c" >/dev/null 2>&1 ||
			missing+=("$c")
	done
	if [[ ${#missing[@]} -gt 0 ]]; then
		echo "SKIP: not installed: ${missing[*]} (apt-get install slurm-wlm slurmdbd munge mariadb-server)"
		exit 77
	fi
	[[ $(id -u) -eq 0 ]] || { echo "SKIP: a real Slurm needs root (SlurmUser=root, mknod)"; exit 77; }
}

# _slurm_daemon NAME CMD...: starts CMD in the background, its output in
# $S/NAME.out, and remembers it for _slurm_stop.
_slurm_daemon() {
	local name=$1; shift
	# the daemons do not hold the harness's lock: a straggler would keep it
	"$@" >"$S/$name.out" 2>&1 {_SLURM_LOCK}>&- &
	_SLURM_PIDS+=($!)
	_SLURM_NAMES+=("$name")
}

# _slurm_wait WHAT CMD...: retries CMD for up to 30 s.
_slurm_wait() {
	local what=$1 i; shift
	for ((i = 0; i < 300; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		_alive "${_SLURM_PIDS[-1]}" || break
		sleep 0.1
	done
	_slurm_dump
	fail "$what did not come up"
}

_slurm_dump() {
	local f
	for f in "$S"/*.out "$S"/log/*.log; do
		[[ -s $f ]] || continue
		printf -- '----- %s (last 40 lines)\n' "$f" >&2
		tail -n 40 "$f" >&2
	done
}

_munge_answers() {
	munge -n -S "$MUNGE_SOCKET" 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1
}

_munge_start() {
	if _munge_answers; then
		ok "munged already answers on $MUNGE_SOCKET: using it"
		return 0
	fi
	local dir=${MUNGE_SOCKET%/*} f owner
	if [[ -d $dir ]]; then
		# a munged that died left these; ours would not start beside them
		for f in "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"; do
			[[ -e $f ]] || continue
			mv -- "$f" "$S/munge-saved.${f##*/}"
			_MUNGE_SAVED+=("$f")
		done
	else
		mkdir -m 0755 -- "$dir"
		_MUNGE_MADE_DIR=$dir
	fi
	owner=$(stat -c %u -- "$dir")
	mkdir -p "$S/munge"
	dd if=/dev/urandom of="$S/munge/munge.key" bs=1024 count=1 status=none
	chmod 0700 "$S/munge"
	chmod 0600 "$S/munge/munge.key"
	chown -R "$owner" "$S/munge"
	# munged walks up to / checking that no one else may write; $T is 0700
	chmod 0711 "$T" "$S"
	_slurm_daemon munged setpriv --reuid="$owner" --regid="$(stat -c %g -- "$dir")" --clear-groups \
		munged -F --key-file="$S/munge/munge.key" --socket="$MUNGE_SOCKET" \
		--log-file="$S/munge/munged.log" --pid-file="$S/munge/munged.pid" \
		--seed-file="$S/munge/munged.seed"
	_slurm_wait munged _munge_answers
	ok "munged started on $MUNGE_SOCKET with a key of its own"
}

_munge_restore() {
	local f
	[[ -n $_MUNGE_MADE_DIR ]] && rm -rf -- "$_MUNGE_MADE_DIR"
	for f in "${_MUNGE_SAVED[@]}"; do
		mv -f -- "$S/munge-saved.${f##*/}" "$f" 2>/dev/null || true
	done
	_MUNGE_MADE_DIR=
	_MUNGE_SAVED=()
}

_mariadb_start() {
	local port
	port=$(free_port)
	MARIADB_PORT=$port
	mariadb-install-db --no-defaults --datadir="$S/mysql" --user=root \
		--auth-root-authentication-method=socket --skip-test-db >"$S/mariadb-install.out" 2>&1 ||
		{ cat "$S/mariadb-install.out" >&2; fail "mariadb-install-db failed"; }
	cat >"$S/init.sql" <<-EOF
		CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm-test';
		GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
	EOF
	_slurm_daemon mariadbd mariadbd --no-defaults --datadir="$S/mysql" --user=root \
		--socket="$S/mysql.sock" --port="$port" --bind-address=127.0.0.1 \
		--pid-file="$S/mysql.pid" --log-error="$S/log/mariadbd.log" --skip-name-resolve \
		--skip-log-bin --innodb-buffer-pool-size=32M --innodb-lock-wait-timeout=900 \
		--init-file="$S/init.sql"
	_slurm_wait mariadbd mariadb --no-defaults -h 127.0.0.1 -P "$port" -u slurm -pslurm-test \
		-e 'SELECT 1'
	ok "mariadbd on 127.0.0.1:$port"
}

_slurm_write_conf() {
	local dbd=$1 ctld=$2 slurmd=$3 i
	mkdir -p "$S/etc" "$S/state" "$S/spool" "$S/log" "$S/dev"
	for ((i = 0; i < SLURM_GPUS; i++)); do
		mknod "$S/dev/nvidia$i" c 195 "$i"
	done
	cat >"$S/etc/slurm.conf" <<-EOF
		ClusterName=$SLURM_CLUSTER
		SlurmctldHost=$(hostname -s)(127.0.0.1)
		SlurmctldPort=$ctld
		SlurmdPort=$slurmd
		SlurmUser=root
		SlurmdUser=root
		AuthType=auth/munge
		CredType=cred/munge
		StateSaveLocation=$S/state
		SlurmdSpoolDir=$S/spool/%n
		SlurmctldPidFile=$S/slurmctld.pid
		SlurmdPidFile=$S/slurmd-%n.pid
		SlurmctldLogFile=$S/log/slurmctld.log
		SlurmdLogFile=$S/log/slurmd-%n.log
		# containers have no cgroups to give
		ProctrackType=proctrack/linuxproc
		TaskPlugin=task/none
		JobAcctGatherType=jobacct_gather/none
		SchedulerType=sched/backfill
		SelectType=select/cons_tres
		SelectTypeParameters=CR_Core
		# the site setup gpuledger-slurm needs (README, Connecting a cluster)
		PriorityType=priority/multifactor
		AccountingStorageType=accounting_storage/slurmdbd
		AccountingStorageHost=127.0.0.1
		AccountingStoragePort=$dbd
		AccountingStorageEnforce=associations,limits,qos,safe
		AccountingStorageTRES=gres/gpu:h200,gres/gpu:b200
		GresTypes=gpu
		MpiDefault=none
		ReturnToService=2
		# the node is what this file says, whatever the machine has
		SlurmdParameters=config_overrides
		MinJobAge=2
		KillWait=2
		Waittime=0
		InactiveLimit=0
		SchedulerParameters=defer_batch
		NodeName=$SLURM_NODE NodeAddr=127.0.0.1 CPUs=8 RealMemory=1000 Gres=gpu:h200:$SLURM_GPUS State=UNKNOWN
		PartitionName=$SLURM_PARTITION Nodes=$SLURM_NODE Default=YES MaxTime=INFINITE State=UP
		PartitionName=b200 Nodes=$SLURM_NODE MaxTime=INFINITE State=UP
	EOF
	# Count= alone registers no GPU: slurmd wants the device files
	printf 'NodeName=%s Name=gpu Type=h200 File=%s/dev/nvidia[0-%d]\n' \
		"$SLURM_NODE" "$S" $((SLURM_GPUS - 1)) >"$S/etc/gres.conf"
	cat >"$S/etc/slurmdbd.conf" <<-EOF
		AuthType=auth/munge
		DbdHost=localhost
		DbdAddr=127.0.0.1
		DbdPort=$dbd
		SlurmUser=root
		PidFile=$S/slurmdbd.pid
		LogFile=$S/log/slurmdbd.log
		StorageType=accounting_storage/mysql
		StorageHost=127.0.0.1
		StoragePort=$MARIADB_PORT
		StorageUser=slurm
		StoragePass=slurm-test
		StorageLoc=slurm_acct_db
	EOF
	chmod 0600 "$S/etc/slurmdbd.conf"
}

_node_idle() {
	[[ $(sinfo -h -n "$SLURM_NODE" -o %T 2>/dev/null) == idle ]]
}

# slurm_start: the whole Slurm, ready for jobs; exports SLURM_CONF.
slurm_start() {
	S=$T/slurm
	mkdir -p "$S/log"
	exec {_SLURM_LOCK}>/run/lock/gpuledger-test-slurm.lock
	flock -w 120 "$_SLURM_LOCK" || fail "another run of the Slurm test held the lock for 120 s"
	trap '_slurm_exit' EXIT
	_munge_start
	_mariadb_start
	local dbd ctld slurmd
	dbd=$(free_port)
	ctld=$(free_port)
	slurmd=$(free_port)
	_slurm_write_conf "$dbd" "$ctld" "$slurmd"
	export SLURM_CONF=$S/etc/slurm.conf
	# times given to and read from Slurm's commands are UTC
	export TZ=UTC
	_slurm_daemon slurmdbd slurmdbd -D
	_slurm_wait slurmdbd sacctmgr -n -P show cluster
	sacctmgr -i add cluster "$SLURM_CLUSTER" >"$S/add-cluster.out" 2>&1 ||
		{ cat "$S/add-cluster.out" >&2; fail "sacctmgr add cluster failed"; }
	_slurm_daemon slurmctld slurmctld -D -i
	_slurm_daemon slurmd slurmd -D -N "$SLURM_NODE"
	_slurm_wait "slurmd's node" _node_idle
	ok "Slurm $(sinfo -V | cut -d' ' -f2) up: cluster $SLURM_CLUSTER, node $SLURM_NODE with $SLURM_GPUS GPUs"
}

_slurm_stop() {
	local i pid
	for ((i = ${#_SLURM_PIDS[@]} - 1; i >= 0; i--)); do
		pid=${_SLURM_PIDS[i]}
		_alive "$pid" || continue
		kill -TERM "$pid" 2>/dev/null || true
		_wait_dead "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	_SLURM_PIDS=()
	_munge_restore
}

# lib.sh's exit trap runs after ours, with the test's status.
_slurm_exit() {
	local rc=$?
	[[ $rc -ne 0 && -n ${S:-} ]] && _slurm_dump
	_slurm_stop
	set +e	# (exit rc) hands _on_exit the status; under -e it would end here
	(exit "$rc")
	_on_exit
}
