#!/usr/bin/env bash
# kafka-broker.sh — a real Apache Kafka broker for Eddy's integration tests.
#
# Runs one combined KRaft broker+controller (Kafka 4.1, from Maven Central via
# test/kafka/pom.xml) on loopback ports chosen at start. Nothing is installed
# system-wide: jars go to the cache dir, the broker's data to a fresh temp dir.
#
# Usage: scripts/kafka-broker.sh COMMAND [OPTIONS]
#
#   fetch              Download the broker jars into $CACHE/lib (skipped when
#                      the jars for the current pom.xml are already there).
#   start [--reuse]    Fetch if needed, start the broker, wait until it answers
#                      metadata, print EDDY_TEST_BROKERS=127.0.0.1:PORT on stdout
#                      (also written to $STATE/env, ready for `source`).
#                      --reuse starts on the ports and data dir that the last
#                      `stop --keep-data` left behind (what `restart` uses).
#                      If the broker already runs, prints its address and exits 0.
#   stop [--keep-data] SIGTERM the broker, SIGKILL after 30 s, then remove its
#                      data dir and state. --keep-data keeps both, for a later
#                      `start --reuse`. Idempotent: stopping nothing succeeds.
#   restart            `stop --keep-data` then `start --reuse`: same address,
#                      same topics, records and committed offsets.
#   status             Print pid, address and data dir; exit 0 if running, 3 if not.
#   env                Print the EDDY_TEST_BROKERS line of the running broker.
#   logs [N]           Print the last N (default 50) lines of the broker log.
#
# Environment:
#   EDDY_KAFKA_CACHE       jar cache (default <repo>/.cache/kafka)
#   EDDY_KAFKA_STATE       pid, ports, config, log (default $EDDY_KAFKA_CACHE/run)
#   EDDY_KAFKA_HEAP        JVM -Xmx (default 512m)
#   EDDY_KAFKA_JVM_OPTS    JVM options replacing the default GC/JIT flags
#   EDDY_KAFKA_AUTO_CREATE auto.create.topics.enable (default false)
#   EDDY_KAFKA_START_TIMEOUT seconds to wait for readiness (default 90)
#   EDDY_KAFKA_MVN_ARGS    extra mvn arguments for fetch, split on spaces
#                          (e.g. -Dmaven.repo.local=/ci/m2 or -o)
#
# A plain `start` after `stop --keep-data` discards the kept data and starts
# a fresh, empty cluster on new ports.
#
# Example (CI; the assignment, unlike `eval "$(...)"`, fails under set -e
# when the broker does not come up):
#   line=$(scripts/kafka-broker.sh start); export "$line"
#   trap 'scripts/kafka-broker.sh stop' EXIT
#   go test -tags integration ./...
set -euo pipefail

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd -- "$script_dir/.." && pwd)
peer_dir="$repo/test/kafka"
pom="$peer_dir/pom.xml"

# Made absolute: the pid check matches the config path in the broker's
# command line, and the script may be called from any cwd.
abspath() { [[ "$1" == /* ]] && printf '%s\n' "$1" || printf '%s\n' "$PWD/$1"; }
cache=$(abspath "${EDDY_KAFKA_CACHE:-$repo/.cache/kafka}")
lib="$cache/lib"
state=$(abspath "${EDDY_KAFKA_STATE:-$cache/run}")
heap=${EDDY_KAFKA_HEAP:-512m}
auto_create=${EDDY_KAFKA_AUTO_CREATE:-false}
start_timeout=${EDDY_KAFKA_START_TIMEOUT:-90}
stop_timeout=30
# C1 only and the serial collector: on a busy 2-core CI machine this starts
# the broker 2-3x faster than the G1 + C2 default (measured 5.9-28 s against
# 12.7-64 s at load averages 10-17), and test traffic never needs C2's peak.
default_jvm_opts="-XX:+UseSerialGC -XX:TieredStopAtLevel=1"

log() { printf 'kafka-broker: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
	sed -n '2,/^set -euo pipefail$/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}" >&2
}

# ---------------------------------------------------------------- fetch

pom_hash() {
	# The pom pins every version, so the pom (plus any extra mvn arguments,
	# which may override a version property) decides which jars come out.
	{ cat "$pom"; printf '%s\n' "${EDDY_KAFKA_MVN_ARGS:-}"; } | sha256sum | cut -d' ' -f1
}

cmd_fetch() {
	command -v mvn >/dev/null || die "mvn not found (scripts/install-ci-deps.sh installs it)"
	local want
	want=$(pom_hash)
	if [[ -f "$lib/.stamp" && "$(cat "$lib/.stamp")" == "$want" ]] &&
		compgen -G "$lib/kafka_2.13-*.jar" >/dev/null; then
		log "jars up to date in $lib"
		return 0
	fi
	log "fetching Kafka jars into $lib"
	mkdir -p "$cache"
	# Download into a sibling dir and swap it in, so an interrupted fetch
	# never leaves a half-filled lib/ that carries a valid stamp.
	local tmp="$lib.tmp.$$"
	rm -rf "$tmp"
	local extra=()
	read -r -a extra <<<"${EDDY_KAFKA_MVN_ARGS:-}"
	if ! mvn -q -B -Dstyle.color=never "${extra[@]}" -f "$pom" dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 |
		# Debian's Maven 3.8 prints colour resets even with -B; drop them.
		sed 's/\x1b\[[0-9;]*m//g' >&2; then
		rm -rf "$tmp"
		die "mvn dependency:copy-dependencies failed"
	fi
	printf '%s\n' "$want" >"$tmp/.stamp"
	rm -rf "$lib"
	mv "$tmp" "$lib"
	log "fetched $(find "$lib" -name '*.jar' | wc -l) jars"
}

# ---------------------------------------------------------------- state

pid_alive() {
	local pid=$1
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

# running_pid prints the pid of our broker if it is alive. The pid file alone
# is not trusted: after a reboot the number may belong to another process, so
# its command line must name kafka.Kafka and our config file.
running_pid() {
	[[ -f "$state/pid" ]] || return 1
	local pid
	pid=$(<"$state/pid")
	pid_alive "$pid" || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $state/server.properties" || return 1
	printf '%s\n' "$pid"
}

# free_ports prints N loopback TCP ports that were free a moment ago. All
# sockets are held open together so the N ports differ.
free_ports() {
	local n=$1
	if command -v python3 >/dev/null; then
		python3 - "$n" <<-'EOF'
			import socket, sys
			socks = []
			for _ in range(int(sys.argv[1])):
			    s = socket.socket()
			    s.bind(("127.0.0.1", 0))
			    socks.append(s)
			print(" ".join(str(s.getsockname()[1]) for s in socks))
		EOF
		return
	fi
	# Fallback: random high ports on which nothing accepts a connection.
	local out=() p
	while ((${#out[@]} < n)); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && [[ " ${out[*]} " != *" $p "* ]]; then
			out+=("$p")
		fi
	done
	echo "${out[*]}"
}

port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# java_args fills the array java_argv with the JVM command line for main
# class $1 and its arguments (an array rather than a function, so that it can
# be run under setsid).
java_args() {
	command -v java >/dev/null || die "java not found (scripts/install-ci-deps.sh installs it)"
	local opts=()
	read -r -a opts <<<"${EDDY_KAFKA_JVM_OPTS:-$default_jvm_opts}"
	java_argv=(
		java -Xmx"$heap" "${opts[@]}"
		-XX:+ExitOnOutOfMemoryError
		-Djava.awt.headless=true
		-Dlog4j2.configurationFile="file:$peer_dir/log4j2.properties"
		-cp "$lib/*" "$@"
	)
}

java_run() {
	local java_argv
	java_args "$@"
	"${java_argv[@]}"
}

# ---------------------------------------------------------------- start

# now_ms prints a wall clock in milliseconds, for the timings start reports.
now_ms() {
	local t=${EPOCHREALTIME/./}
	printf '%s\n' "${t:0:-3}"
}

# new_cluster_id prints a Kafka cluster id: 16 random bytes, base64url
# without padding, as Uuid.randomUuid() makes them. Done in python3 when it
# exists because `StorageTool random-uuid` costs a JVM start (~2 s). Kafka
# rejects ids that begin with '-' (they parse as an option), so redraw those.
new_cluster_id() {
	if command -v python3 >/dev/null; then
		python3 -c '
import base64, os
while True:
    s = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not s.startswith("-"):
        print(s)
        break'
		return
	fi
	java_run kafka.tools.StorageTool random-uuid 2>>"$state/broker.log"
}

# wait_ready waits until broker $1 serves metadata on port $2. Without kcat
# it waits for an open port plus the "Kafka Server started" line logged past
# byte offset $3 (restarts append to the same log, so older runs' lines
# must not count).
wait_ready() {
	local pid=$1 port=$2 log_from=$3 deadline=$((SECONDS + start_timeout))
	local have_kcat=
	if command -v kcat >/dev/null; then have_kcat=kcat; fi
	while ((SECONDS < deadline)); do
		pid_alive "$pid" || return 1
		if [[ -n "$have_kcat" ]]; then
			# Metadata that lists broker 1 means the broker has registered
			# with the controller and serves requests.
			if kcat -b "127.0.0.1:$port" -L -m 2 2>/dev/null | grep -q 'broker 1 at'; then
				return 0
			fi
		elif port_in_use "$port" &&
			tail -c +"$((log_from + 1))" "$state/broker.log" | grep -q 'Kafka Server started'; then
			return 0
		fi
		sleep 0.25
	done
	return 1
}

cmd_start() {
	local reuse=
	while (($#)); do
		case $1 in
		--reuse) reuse=1 ;;
		*) die "start: unknown option $1" ;;
		esac
		shift
	done

	local pid
	if pid=$(running_pid); then
		log "already running (pid $pid)"
		cat "$state/env"
		return 0
	fi

	cmd_fetch

	local port cport data
	if [[ -n "$reuse" ]]; then
		[[ -f "$state/ports" && -f "$state/datadir" ]] ||
			die "start --reuse: no kept broker in $state (run start first)"
		read -r port cport <"$state/ports"
		data=$(<"$state/datadir")
		[[ -d "$data/kraft" ]] || die "start --reuse: data dir $data is gone"
		for p in "$port" "$cport"; do
			port_in_use "$p" && die "start --reuse: port $p is now taken by another process"
		done
	else
		# Leftovers of a broker that died without `stop` are removed first.
		cleanup_state
		mkdir -p "$state"
		: >"$state/broker.log"
		read -r port cport < <(free_ports 2)
		data=$(mktemp -d "${TMPDIR:-/tmp}/eddy-kafka.XXXXXX")
		printf '%s %s\n' "$port" "$cport" >"$state/ports"
		printf '%s\n' "$data" >"$state/datadir"
		sed -e "s|@PORT@|$port|g" -e "s|@CONTROLLER_PORT@|$cport|g" \
			-e "s|@LOG_DIR@|$data/kraft|g" -e "s|@AUTO_CREATE@|$auto_create|g" \
			"$peer_dir/server.properties.template" >"$state/server.properties"
		local cluster_id
		cluster_id=$(new_cluster_id) || die "could not make a cluster id; see $state/broker.log"
		# --standalone formats a one-voter dynamic quorum (KIP-853) from
		# controller.quorum.bootstrap.servers.
		if ! java_run kafka.tools.StorageTool format --standalone \
			-t "$cluster_id" -c "$state/server.properties" >>"$state/broker.log" 2>&1; then
			tail -n 50 "$state/broker.log" >&2
			cleanup_state
			die "StorageTool format failed"
		fi
	fi

	log "starting broker on 127.0.0.1:$port (controller $cport, data $data/kraft)"
	local t0 log_from
	t0=$(now_ms)
	log_from=$(wc -c <"$state/broker.log")
	# setsid: the broker gets its own session, so a Ctrl-C or a CI step's
	# process-group kill aimed at the caller does not reach it; `stop` does.
	local java_argv
	java_args kafka.Kafka "$state/server.properties"
	setsid "${java_argv[@]}" >>"$state/broker.log" 2>&1 </dev/null &
	pid=$!
	printf '%s\n' "$pid" >"$state/pid"

	if ! wait_ready "$pid" "$port" "$log_from"; then
		log "broker not ready after $(($(now_ms) - t0)) ms; last 50 log lines:"
		tail -n 50 "$state/broker.log" >&2
		stop_pid "$pid"
		# A failed fresh start leaves nothing behind but the log; a failed
		# --reuse keeps the data so that it can be inspected or retried.
		if [[ -n "$reuse" ]]; then
			rm -f "$state/pid"
		else
			cleanup_state
		fi
		exit 1
	fi
	printf 'EDDY_TEST_BROKERS=127.0.0.1:%s\n' "$port" >"$state/env"
	log "ready in $(($(now_ms) - t0)) ms (pid $pid)"
	cat "$state/env"
}

# ---------------------------------------------------------------- stop

stop_pid() {
	local pid=$1 i
	pid_alive "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < stop_timeout * 10; i++)); do
		pid_alive "$pid" || return 0
		sleep 0.1
	done
	log "pid $pid still alive after ${stop_timeout} s; sending SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		pid_alive "$pid" || return 0
		sleep 0.1
	done
	die "pid $pid survived SIGKILL"
}

cleanup_state() {
	local data
	if [[ -f "$state/datadir" ]]; then
		data=$(<"$state/datadir")
		# Only ever delete a dir this script created.
		if [[ "$data" == */eddy-kafka.* && -d "$data" ]]; then
			rm -rf -- "$data"
		fi
	fi
	# broker.log stays for post-mortems of a failed CI run; a fresh start
	# truncates it.
	rm -f "$state/pid" "$state/ports" "$state/datadir" "$state/env" \
		"$state/server.properties"
}

cmd_stop() {
	local keep=
	while (($#)); do
		case $1 in
		--keep-data) keep=1 ;;
		*) die "stop: unknown option $1" ;;
		esac
		shift
	done
	local pid
	if pid=$(running_pid); then
		log "stopping pid $pid"
		stop_pid "$pid"
	fi
	if [[ -n "$keep" ]]; then
		rm -f "$state/pid" "$state/env"
	else
		cleanup_state
	fi
}

cmd_restart() {
	cmd_stop --keep-data
	cmd_start --reuse
}

cmd_status() {
	local pid
	if pid=$(running_pid); then
		printf 'running pid=%s %s data=%s\n' "$pid" "$(cat "$state/env")" "$(cat "$state/datadir")"
		return 0
	fi
	if [[ -f "$state/datadir" ]]; then
		printf 'stopped (data kept in %s)\n' "$(cat "$state/datadir")"
	else
		printf 'stopped\n'
	fi
	return 3
}

cmd_env() {
	running_pid >/dev/null || die "not running"
	cat "$state/env"
}

cmd_logs() {
	[[ -f "$state/broker.log" ]] || die "no broker log in $state"
	tail -n "${1:-50}" "$state/broker.log"
}

main() {
	local cmd=${1:-}
	(($#)) && shift
	case $cmd in
	fetch) cmd_fetch "$@" ;;
	start) cmd_start "$@" ;;
	stop) cmd_stop "$@" ;;
	restart) cmd_restart "$@" ;;
	status) cmd_status "$@" ;;
	env) cmd_env "$@" ;;
	logs) cmd_logs "$@" ;;
	-h | --help | help) usage ;;
	*)
		usage
		exit 2
		;;
	esac
}

main "$@"
