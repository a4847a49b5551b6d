package retrain

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strconv"
	"time"

	"github.com/eddyrec/eddy/learner/ials"
	"github.com/eddyrec/eddy/learner/offline"
)

// VersionSchemaVersion is the version of the Version JSON.
const VersionSchemaVersion = 1

// InitialVersion is the version of the online model before any retrain:
// the stages' default model_version.
const InitialVersion = 1

// The decisions a run ends with.
const (
	Promoted = "promoted" // the version is live: its vectors are on the model topics
	Rejected = "rejected" // the gate kept the champion; the challenger was never served
	Failed   = "failed"   // the run could not produce a challenger (no data, an error)
)

// Version is one record of <prefix>model.versions, keyed by the decimal
// version: what a retrain or rollback produced and what became of it.
type Version struct {
	Schema  int    `json:"schema"`
	Version uint64 `json:"version"`
	// Parent is the live version the run was compared with (a rollback:
	// the version it restores).
	Parent   uint64 `json:"parent"`
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	Trigger  string `json:"trigger"`
	// RequestIDs are the control requests this run answers (a request
	// that arrived during a run is answered by the next one).
	RequestIDs []string `json:"request_ids"`
	ReportIDs  []string `json:"report_ids,omitempty"`
	// ControlOffset is the offset of the newest control record answered:
	// a restarted role resumes after it.
	ControlOffset int64 `json:"control_offset"`

	Data       *DataRange       `json:"data,omitempty"`
	IALS       *ials.Config     `json:"hyperparameters,omitempty"`
	Gate       *GateConfig      `json:"gate,omitempty"`
	Challenger *offline.Metrics `json:"challenger,omitempty"`
	Champion   *offline.Metrics `json:"champion,omitempty"`
	// ChampionUsers and ChampionItems count the rows of the champion read
	// from the model topics as of the cut-off.
	ChampionUsers int `json:"champion_users,omitempty"`
	ChampionItems int `json:"champion_items,omitempty"`
	// Snapshot is where the promoted vectors are kept (Parquet).
	Snapshot  string       `json:"snapshot,omitempty"`
	Published *Publication `json:"published,omitempty"`

	Code      string    `json:"code_version"`
	Requested time.Time `json:"requested"`
	Started   time.Time `json:"started"`
	Finished  time.Time `json:"finished"`
}

// DataRange says what a challenger learned from and was judged on.
type DataRange struct {
	// From and To span the events read (event time); Cutoff splits them:
	// the challenger the gate judges learns from the events before it,
	// both models are judged on the rest (by event time, so that a
	// backfill sent out of order divides as its times say).
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Cutoff time.Time `json:"cutoff"`
	Files  int       `json:"files"`
	Rows   int64     `json:"rows"`
	// Events counts the events kept (deduplicated, within the window);
	// TrainEvents and HoldoutEvents divide them.
	Events        int `json:"events"`
	TrainEvents   int `json:"train_events"`
	HoldoutEvents int `json:"holdout_events"`
	HoldoutUsers  int `json:"holdout_users"`
	Users         int `json:"users"`
	Items         int `json:"items"`
	// Unreadable counts archived rows of an event type this build cannot
	// read (skipped).
	Unreadable int `json:"unreadable_rows,omitempty"`
	// EndOffsets are, per partition of the events topic, the first offset
	// not read: everything acknowledged when the run began.
	EndOffsets map[int32]int64 `json:"end_offsets"`
	// ReplayOffsets are, per partition, the first offset the promoted
	// model did not learn from: once the gate has promoted the challenger,
	// the same configuration is trained again on every event read (up to
	// EndOffsets), and after the promotion the user stage re-applies the
	// events from these offsets on.
	ReplayOffsets map[int32]int64 `json:"replay_offsets,omitempty"`
}

// Publication locates a promoted version's vectors on the model topics:
// per partition, the offsets [first, end) of the records the promotion
// wrote there, in one transaction with this record.
type Publication struct {
	Users      int                `json:"users"`
	Items      int                `json:"items"`
	UserRanges map[int32][2]int64 `json:"user_ranges"`
	ItemRanges map[int32][2]int64 `json:"item_ranges"`
	Dim        int                `json:"dim"`
}

// Key returns the record key of version v.
func Key(v uint64) []byte { return strconv.AppendUint(nil, v, 10) }

// Encode returns the version's JSON.
func (v *Version) Encode() ([]byte, error) {
	v.Schema = VersionSchemaVersion
	return json.Marshal(v)
}

// ErrBadVersion is wrapped by every decoding error of DecodeVersion.
var ErrBadVersion = errors.New("retrain: bad version record")

// DecodeVersion reads a model.versions record.
func DecodeVersion(b []byte) (*Version, error) {
	var v Version
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadVersion, err)
	}
	switch {
	case v.Schema != VersionSchemaVersion:
		return nil, fmt.Errorf("%w: schema %d (this build reads %d)", ErrBadVersion, v.Schema, VersionSchemaVersion)
	case v.Version <= InitialVersion:
		return nil, fmt.Errorf("%w: version %d: retrains number from %d", ErrBadVersion, v.Version, InitialVersion+1)
	case v.Decision != Promoted && v.Decision != Rejected && v.Decision != Failed:
		return nil, fmt.Errorf("%w: decision %q", ErrBadVersion, v.Decision)
	case v.Decision == Promoted && v.Published == nil:
		return nil, fmt.Errorf("%w: version %d promoted without a publication", ErrBadVersion, v.Version)
	}
	return &v, nil
}

// History is every version record read, in version order.
type History struct{ versions []*Version }

// Add records v, replacing an earlier record of the same version.
func (h *History) Add(v *Version) {
	i, found := slices.BinarySearchFunc(h.versions, v.Version, func(a *Version, n uint64) int {
		switch {
		case a.Version < n:
			return -1
		case a.Version > n:
			return 1
		}
		return 0
	})
	if found {
		h.versions[i] = v
		return
	}
	h.versions = slices.Insert(h.versions, i, v)
}

// All returns the versions, oldest first.
func (h *History) All() []*Version { return h.versions }

// Get returns version n, nil if unknown.
func (h *History) Get(n uint64) *Version {
	for _, v := range h.versions {
		if v.Version == n {
			return v
		}
	}
	return nil
}

// Live returns the newest promoted version, nil while the initial online
// model is live.
func (h *History) Live() *Version {
	for i := len(h.versions) - 1; i >= 0; i-- {
		if h.versions[i].Decision == Promoted {
			return h.versions[i]
		}
	}
	return nil
}

// LiveVersion returns the live version number.
func (h *History) LiveVersion() uint64 {
	if v := h.Live(); v != nil {
		return v.Version
	}
	return InitialVersion
}

// Next returns the number the next run gets.
func (h *History) Next() uint64 {
	if len(h.versions) == 0 {
		return InitialVersion + 1
	}
	return h.versions[len(h.versions)-1].Version + 1
}

// ControlOffset returns the offset after the newest control record any
// version answered: where a restarted role resumes.
func (h *History) ControlOffset() int64 {
	var next int64
	for _, v := range h.versions {
		next = max(next, v.ControlOffset+1)
	}
	return next
}

// Answered returns the version that answered request id, nil if none.
func (h *History) Answered(id string) *Version {
	for _, v := range h.versions {
		if slices.Contains(v.RequestIDs, id) {
			return v
		}
	}
	return nil
}

// CodeVersion names the build: the module version and VCS revision from
// the binary's build info.
func CodeVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	s := bi.Main.Version
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			s += " " + kv.Value
		case "vcs.modified":
			if kv.Value == "true" {
				s += " (modified)"
			}
		}
	}
	return s
}
