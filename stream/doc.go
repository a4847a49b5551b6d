// Package stream owns Eddy's Kafka plumbing: how a process connects to the
// brokers (ClientConfig: addresses, client id, TLS, SASL), the catalogue of
// Eddy's topics and their idempotent creation (Topics, EnsureTopics), and the
// embedded broker (EmbeddedBroker), franz-go's kfake served on a real TCP
// port and persisted under the data directory so that `eddy up` restarts where
// it stopped.
//
// It does not know what an event is; the packages above it (ingest, features,
// learner, scorer, drift) decide what goes into records.
//
// Every Kafka client Eddy creates goes through ClientConfig.Opts, so TLS and
// SASL settings apply uniformly to producers, consumers and the admin client.
package stream
