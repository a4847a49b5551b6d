#!/usr/bin/env bash
# bench-drift-steady.sh — the drift role's CPU on a real-time stream, next to
# the process role's (BENCHMARKS.md "Drift role").
#
#   scripts/bench-drift-steady.sh RATE [SAMPLE] [-- eddy drift flags...]
#
# Starts `eddy broker` (its own process), `eddy process --drift-sample
# SAMPLE` and `eddy drift --events-from process`, then `eddy gen --rate RATE`
# with event times at the wall clock's pace (so 5-minute windows last five
# minutes). After 20 s of warm-up it reads each process's CPU time
# (/proc/<pid>/stat) and their applied-record counters over 60 s, and prints
# one line: events/s, sampled records/s, CPU ms/s of process, broker and
# drift, and drift / process. SAMPLE 0 runs no drift role and no copy (the
# baseline for the process role's share).
#
# RECS says where served lists come from (eddy gen --recs stands in for the
# scorer: one list per request, ~1 per 11 events, 10 items × 5 features):
#   serve   (default; eddy up's wiring) gen copies the sampled users' lists
#           into the drift input as eddy serve --drift-sample does, and the
#           role runs --recs-from serve;
#   forward the role reads the whole recs topic (--recs-from forward);
#   none    no served lists (the stream of the first measurements).
# Needs a built eddy (EDDY_BIN, default ./eddy) and ports 19093, 18091,
# 18094 free on loopback.
set -euo pipefail
rate=${1:?usage: bench-drift-steady.sh RATE [SAMPLE] [-- drift flags]}
sample=${2:-0.01}
recs=${RECS:-serve}
case "$recs" in serve | forward | none) ;; *) echo "RECS=$recs: want serve, forward or none" >&2; exit 2 ;; esac
shift $(( $# >= 2 ? 2 : 1 ))
[[ "${1:-}" == "--" ]] && shift
eddy=$(realpath "${EDDY_BIN:-./eddy}")
work=$(mktemp -d)
cd "$work"
pids=()
# Stop the clients before the broker (a client whose broker is gone retries),
# and kill what has not stopped after 10 s.
alive() {
	local p
	for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done
	return 1
}
cleanup() {
	local i
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done
	for ((i = 0; i < 20; i++)); do
		alive || break
		sleep 0.5
	done
	kill -9 "${pids[@]}" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
brokers="--brokers 127.0.0.1:19093"
"$eddy" broker --data-dir b --embedded-broker-addr 127.0.0.1:19093 >broker.log 2>&1 & bp=$!; pids+=("$bp")
sleep 2
drift_flags=()
[[ "$sample" != 0 ]] && drift_flags=(--drift-sample "$sample" --drift-group G)
# shellcheck disable=SC2086
"$eddy" process $brokers --data-dir p "${drift_flags[@]}" --http-addr 127.0.0.1:18091 >process.log 2>&1 & pp=$!; pids+=("$pp")
dp=
if [[ "$sample" != 0 ]]; then
	recs_from=forward
	[[ "$recs" == serve ]] && recs_from=serve
	# shellcheck disable=SC2086
	"$eddy" drift $brokers --data-dir d --events-from process --recs-from "$recs_from" --sample "$sample" --group G \
		--http-addr 127.0.0.1:18094 "$@" >drift.log 2>&1 & dp=$!; pids+=("$dp")
fi
sleep 8
gap=$(awk -v r="$rate" 'BEGIN { printf "%.3fus", 1e6 / r }')
gen_recs=()
case "$recs" in
serve) gen_recs=(--recs --recs-drift-sample "$sample" --recs-drift-group G) ;;
forward) gen_recs=(--recs) ;;
esac
[[ "$sample" == 0 ]] && gen_recs=()
# shellcheck disable=SC2086
"$eddy" gen $brokers --to kafka --rate "$rate" --count $((rate * 90)) --seed 3 "${gen_recs[@]}" \
	--spec "start=$(date -u +%FT%TZ),inter-event=$gap" >gen.log 2>&1 & pids+=($!)
cpu() { [[ -n "$1" ]] && awk '{print $14 + $15}' "/proc/$1/stat" || echo 0; }
applied() { curl -fs "127.0.0.1:$1/metrics" 2>/dev/null | awk -v g="$2" '$1 ~ "^eddy_stream_records_applied_total" && $1 ~ g { s += $2 } END { print s + 0 }'; }
sleep 20
d0=$(cpu "$dp") p0=$(cpu "$pp") b0=$(cpu "$bp") s0=$(applied 18094 G-windows) e0=$(applied 18091 features-users) t0=$(date +%s.%N)
sleep 60
d1=$(cpu "$dp") p1=$(cpu "$pp") b1=$(cpu "$bp") s1=$(applied 18094 G-windows) e1=$(applied 18091 features-users) t1=$(date +%s.%N)
hz=$(getconf CLK_TCK)
awk -v t0="$t0" -v t1="$t1" -v hz="$hz" -v rate="$rate" -v sample="$sample" -v recs="$recs" \
	-v d="$((d1 - d0))" -v p="$((p1 - p0))" -v b="$((b1 - b0))" -v ev="$((e1 - e0))" -v rec="$((s1 - s0))" 'BEGIN {
	dt = t1 - t0; d /= hz; p /= hz; b /= hz
	printf "rate %d sample %s recs %s: %.0f events/s, %.0f sampled/s | process %.1f ms/s (%.2f µs/event) | broker %.1f ms/s | drift %.2f ms/s", \
		rate, sample, recs, ev / dt, rec / dt, p / dt * 1000, p / (ev > 0 ? ev : 1) * 1e6, b / dt * 1000, d / dt * 1000
	if (rec > 0) printf " (%.1f µs/sampled record) | drift/process %.2f %%", d / rec * 1e6, d / p * 100
	printf "\n"
}'
