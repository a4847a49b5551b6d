package event

import "fmt"

// SchemaVersion is the version of the event record layout that this package
// reads and writes (the canonical JSON of AppendJSON).
const SchemaVersion = 1

// Record-header convention. Eddy sets the Kafka header SchemaHeader on every
// record it produces, with SchemaHeaderValue on eddy.events and
// DeadLetterSchemaHeaderValue on eddy.events.dlq. Records without the header
// — written by kcat or any other producer that knows only the JSON contract
// — are read as version 1.
const (
	SchemaHeader                = "eddy-schema"
	SchemaHeaderValue           = "event/v1"
	DeadLetterSchemaHeaderValue = "event-dlq/v1"
)

// ParseSchemaHeader returns the event schema version named by the value of a
// record's eddy-schema header; pass "" when the record has no such header.
// Any version other than the one this build reads is ErrUnsupportedSchema,
// so a consumer can dead-letter or stop instead of misreading the record.
func ParseSchemaHeader(value string) (int, error) {
	switch value {
	case "", SchemaHeaderValue:
		return SchemaVersion, nil
	}
	return 0, fmt.Errorf("%w: header %s=%q (this build reads %q)", ErrUnsupportedSchema, SchemaHeader, value, SchemaHeaderValue)
}
