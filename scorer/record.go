package scorer

// Record is one model-topic record handed to the State's Apply methods.
// A nil Value is a tombstone.
type Record struct {
	Key, Value []byte
}
