#!/usr/bin/env bash
# bench-drift-catchup.sh — the DESIGN target read literally: what a drift
# role adds to `eddy bench process` (BENCHMARKS.md "Drift role").
#
#   scripts/bench-drift-catchup.sh [SPEC] [EVENTS]
#
# Starts `eddy broker` and `eddy drift --events-from process --recs-from
# serve --sample 0.01 --align-span 0` (ALIGN_SPAN: a bench runs no scorer,
# and with the default 15m the role would hold every event waiting for
# served lists instead of computing its signals), then `eddy bench process --drift-sample 0.01` on the
# same broker with generator options SPEC (default inter-event=2.5us: event
# times at about the processing pace, so that windows last as long as in
# production; hours of event time in seconds would count window closing,
# merging and judging thousands of times too often). It waits until the role
# has applied every copy and prints the process role's CPU (getrusage of the
# processing phase; the broker is its own process) next to the drift role's
# (its threads' schedstat from the bench's start to the role's catch-up,
# its ~1 ms/s idle included). Needs a built eddy (EDDY_BIN, default ./eddy), python3,
# and ports 19093, 18094 free on loopback.
set -u
spec=${1:-inter-event=2.5us}; events=${2:-3000000}
eddy=$(realpath "${EDDY_BIN:-./eddy}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
"$eddy" broker --data-dir b --embedded-broker-addr 127.0.0.1:19093 >b.log 2>&1 & bp=$!
sleep 2
"$eddy" drift --brokers 127.0.0.1:19093 --topic-prefix bp. --data-dir d --events-from process --recs-from serve --sample 0.01 --align-span "${ALIGN_SPAN:-0}" --group eddy-drift --http-addr 127.0.0.1:18094 > d.log 2>&1 & dp=$!
sleep 12
# CPU time of the role in ns: the sum of its threads' schedstat (Go's
# threads live as long as the process), not /proc/<pid>/stat's 10 ms ticks.
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s+=$1} END {printf "%d", s}'; }
applied() { curl -fs 127.0.0.1:18094/metrics | awk '$1 ~ "^eddy_stream_records_applied_total" && $1 ~ "eddy-drift-windows" {s+=$2} END {print s+0}'; }
# The catch-up is seen by scraping the role's /metrics, which costs the
# role a few ms each time (Prometheus scrapes every 15–30 s, not every
# second): measure one scrape while idle and take the polls' share out.
s0=$(cpu_ns $dp); for _ in 1 2 3 4 5; do applied >/dev/null; done; s1=$(cpu_ns $dp)
scrape=$(( (s1 - s0) / 5 ))
a=$(cpu_ns $dp); t0=$(date +%s.%N)
"$eddy" bench process --brokers 127.0.0.1:19093 --topic-prefix bp. --events "$events" --drift-sample 0.01 --spec "$spec" --json > bench.json 2> bench.err || { cat bench.err >&2; kill "$dp" "$bp"; exit 1; }
copies=$(python3 -c 'import json;print(json.load(open("bench.json"))["drift_copies"])')
polls=0
for _ in $(seq 1 120); do
  ap=$(applied); polls=$((polls + 1))
  [[ "$ap" -ge "$copies" ]] && break
  sleep 1
done
b=$(cpu_ns $dp); t1=$(date +%s.%N)
python3 - "$a" "$b" "$t0" "$t1" "$ap" "$polls" "$scrape" <<'PY'
import json,sys
a,b,t0,t1,ap,polls,scrape=map(float,sys.argv[1:])
r=json.load(open("bench.json"))
raw=(b-a)/1e9
d=raw-polls*scrape/1e9
print(f"bench: {r['events_per_sec']:.0f} ev/s, process CPU {r['cpu_seconds']:.2f} s ({r['cpu_us_per_event']:.2f} us/event), copies {r['drift_copies']}; "
      f"drift applied {ap:.0f}, drift CPU {d*1000:.1f} ms over {t1-t0:.1f} s (incl. ~1 ms/s idle; {raw*1000:.1f} ms less {polls:.0f} scrapes of {scrape/1e6:.1f} ms) "
      f"= {d/r['cpu_seconds']*100:.2f} % of process CPU; {d/max(ap,1)*1e6:.2f} us/record")
PY
kill "$dp"; sleep 3; kill "$bp"; wait 2>/dev/null
