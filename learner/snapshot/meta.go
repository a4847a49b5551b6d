package snapshot

import (
	"github.com/eddyrec/eddy/learner/ials"
	"github.com/eddyrec/eddy/learner/modelrec"
)

// Meta describes the run that produced a snapshot.
type Meta struct {
	Trainer  string      `json:"trainer"` // "ials"
	Config   ials.Config `json:"config"`
	Dim      int         `json:"dim"`
	Users    int         `json:"users"`
	Items    int         `json:"items"`
	Pairs    int         `json:"pairs"`
	Events   int         `json:"events"`
	FromTs   string      `json:"from,omitempty"` // the training range
	ToTs     string      `json:"to,omitempty"`
	Source   string      `json:"source"`
	Loss     float64     `json:"loss"`
	Seconds  float64     `json:"train_seconds"`
	Created  string      `json:"created"`
	Validate []float64   `json:"validation_hr_at_10,omitempty"`
}

// Record is one row of the model: its id and its modelrec Vector.
type Record struct {
	Key    string
	Vector modelrec.Vector
}
