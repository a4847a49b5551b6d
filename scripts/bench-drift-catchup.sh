#!/usr/bin/env bash
# bench-drift-catchup.sh — the DESIGN target read literally: what a drift
# role adds to `eddy bench process` (BENCHMARKS.md "Drift role").
#
#   scripts/bench-drift-catchup.sh [SPEC] [EVENTS]
#
# Starts `eddy broker` and `eddy drift --events-from process --recs-from
# serve --sample 0.01`, then `eddy bench process --drift-sample 0.01` on the
# same broker with generator options SPEC (default inter-event=2.5us: event
# times at about the processing pace, so that windows last as long as in
# production; hours of event time in seconds would count window closing,
# merging and judging thousands of times too often). It waits until the role
# has applied every copy and prints the process role's CPU (getrusage of the
# processing phase; the broker is its own process) next to the drift role's
# (/proc/<pid>/stat from the bench's start to the role's catch-up, its ~1
# ms/s idle included). Needs a built eddy (EDDY_BIN, default ./eddy), python3,
# and ports 19093, 18094 free on loopback.
set -u
spec=${1:-inter-event=2.5us}; events=${2:-3000000}
eddy=$(realpath "${EDDY_BIN:-./eddy}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
"$eddy" broker --data-dir b --embedded-broker-addr 127.0.0.1:19093 >b.log 2>&1 & bp=$!
sleep 2
"$eddy" drift --brokers 127.0.0.1:19093 --topic-prefix bp. --data-dir d --events-from process --recs-from serve --sample 0.01 --group eddy-drift --http-addr 127.0.0.1:18094 > d.log 2>&1 & dp=$!
sleep 12
a=$(awk '{print $14+$15}' /proc/$dp/stat); t0=$(date +%s.%N)
"$eddy" bench process --brokers 127.0.0.1:19093 --topic-prefix bp. --events "$events" --drift-sample 0.01 --spec "$spec" --json > bench.json 2> bench.err || { cat bench.err >&2; kill "$dp" "$bp"; exit 1; }
copies=$(python3 -c 'import json;print(json.load(open("bench.json"))["drift_copies"])')
for _ in $(seq 1 120); do
  ap=$(curl -fs 127.0.0.1:18094/metrics | awk '$1 ~ "^eddy_stream_records_applied_total" && $1 ~ "eddy-drift-windows" {s+=$2} END {print s+0}')
  [[ "$ap" -ge "$copies" ]] && break
  sleep 0.5
done
b=$(awk '{print $14+$15}' /proc/$dp/stat); t1=$(date +%s.%N)
python3 - "$a" "$b" "$t0" "$t1" "$ap" "$(getconf CLK_TCK)" <<'PY'
import json,sys
a,b,t0,t1,ap,hz=map(float,sys.argv[1:])
r=json.load(open("bench.json"))
d=(b-a)/hz
print(f"bench: {r['events_per_sec']:.0f} ev/s, process CPU {r['cpu_seconds']:.2f} s ({r['cpu_us_per_event']:.2f} us/event), copies {r['drift_copies']}; drift applied {ap:.0f}, drift CPU {d*1000:.0f} ms over {t1-t0:.1f} s (incl. ~1 ms/s idle) = {d/r['cpu_seconds']*100:.2f} % of process CPU; {d/max(ap,1)*1e6:.1f} us/record")
PY
kill "$dp"; sleep 3; kill "$bp"; wait 2>/dev/null
