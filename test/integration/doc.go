// Package integration runs the eddy binary end to end against a broker:
// the real Apache Kafka named by EDDY_TEST_BROKERS (started by
// scripts/integration.sh), or else an embedded kfake broker. Tests that need
// a real peer that is missing (kcat, a real broker) skip with a plain
// message, or fail when EDDY_REQUIRE_REAL_PEERS=1 (CI).
package integration
