// Package testkafka gives tests a Kafka to talk to: the real broker named by
// EDDY_TEST_BROKERS when it is set (the integration suite starts Apache Kafka
// and sets it), otherwise an embedded kfake broker on a loopback port. Each
// test gets its own topic prefix, so tests never see each other's records on
// a shared real broker.
package testkafka
