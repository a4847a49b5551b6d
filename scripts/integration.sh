#!/usr/bin/env bash
# integration.sh — run the Kafka-facing tests against a real Apache Kafka.
#
# Starts the broker of scripts/kafka-broker.sh (Kafka 4.1, KRaft, loopback),
# runs every Go test package that uses internal/testkafka with
# EDDY_TEST_BROKERS pointing at it, and stops the broker whatever happens.
#
# On a machine without a JDK or Maven it says plainly that it skipped, and
# exits 0 — unless EDDY_REQUIRE_REAL_PEERS=1 (CI), where a skip is a failure.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
require=${EDDY_REQUIRE_REAL_PEERS:-0}

skip() {
	echo "SKIPPED: real-Kafka integration tests: $*"
	if [[ "$require" == 1 ]]; then
		echo "EDDY_REQUIRE_REAL_PEERS=1: a skipped real-peer test is a failure" >&2
		exit 1
	fi
	exit 0
}

command -v java >/dev/null || skip "no java on PATH (install a JDK 17+)"
command -v mvn >/dev/null || skip "no mvn on PATH (install Maven)"

# The packages whose tests talk to Kafka through internal/testkafka.
mapfile -t pkgs < <(go list -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... |
	awk '/github.com\/eddyrec\/eddy\/internal\/testkafka/ {print $1}')
[[ ${#pkgs[@]} -gt 0 ]] || { echo "integration.sh: no package uses internal/testkafka" >&2; exit 1; }

trap 'bash scripts/kafka-broker.sh stop >/dev/null 2>&1 || true' EXIT
echo "integration.sh: starting a real Kafka broker"
line=$(bash scripts/kafka-broker.sh start)
export "${line?}"
# test/integration stops and restarts this broker (TestRealBrokerRestart,
# TestProcessRealBrokerRestart): run it alone, after the other packages,
# which would otherwise see the broker vanish under them mid-test.
restarting=github.com/eddyrec/eddy/test/integration
others=()
for p in "${pkgs[@]}"; do
	[[ "$p" == "$restarting" ]] || others+=("$p")
done
echo "integration.sh: $line; testing ${others[*]}"
go test -count=1 -timeout 20m "${others[@]}"
if [[ " ${pkgs[*]} " == *" $restarting "* ]]; then
	echo "integration.sh: testing $restarting (restarts the broker) alone"
	go test -count=1 -timeout 20m "$restarting"
fi
