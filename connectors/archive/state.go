package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
)

// partitionState is a partition's checkpoint in the archive, stored at
// stateKey as JSON. It is the commit point of the exactly-once protocol:
//
//  1. before a flush writes any file, the state names the flush's range and
//     files as Pending (Next unchanged);
//  2. each file is put atomically (Store.Put);
//  3. the state moves Next past the flush and drops Pending.
//
// On start, a Pending flush is one that may have left some of its files
// behind: they are deleted and the range is read again from Kafka. So a
// crash at any point leaves, after the restart, every record of the
// partition in exactly one file. Its Pending files are visible to readers
// between 2 and the restart, which is why the state file, not a listing,
// decides what is archived.
type partitionState struct {
	V       int    `json:"v"`
	Topic   string `json:"topic"`
	Next    int64  `json:"next"`              // first offset not archived yet
	Pending *flush `json:"pending,omitempty"` // a flush that may be partly written
	// Files and Rows count what this partition has archived, for
	// operators (eddy archive status) and tests.
	Files int64 `json:"files"`
	Rows  int64 `json:"rows"`
}

type flush struct {
	First int64    `json:"first"`
	Last  int64    `json:"last"`
	Files []string `json:"files"`
}

const stateVersion = 1

func loadState(ctx context.Context, st Store, k Kind, partition int32) (partitionState, bool, error) {
	b, err := st.Get(ctx, stateKey(k, partition))
	if errors.Is(err, fs.ErrNotExist) {
		return partitionState{V: stateVersion}, false, nil
	}
	if err != nil {
		return partitionState{}, false, err
	}
	var s partitionState
	if err := json.Unmarshal(b, &s); err != nil {
		return partitionState{}, false, fmt.Errorf("archive: state %s: %w", stateKey(k, partition), err)
	}
	if s.V != stateVersion {
		return partitionState{}, false, fmt.Errorf("archive: state %s: version %d, this build reads %d", stateKey(k, partition), s.V, stateVersion)
	}
	return s, true, nil
}

func saveState(ctx context.Context, st Store, k Kind, partition int32, s partitionState) error {
	s.V = stateVersion
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return st.Put(ctx, stateKey(k, partition), b)
}

// recoverState loads a partition's state and undoes a flush that a crash
// left pending: its files are deleted (those that exist) and the state is
// saved without it, so that the range is archived again, once.
// A local store's temporary files that a crash left beside them go too.
func recoverState(ctx context.Context, st Store, k Kind, partition int32) (partitionState, int, error) {
	tc, cleans := st.(tempCleaner)
	if cleans {
		tc.cleanTemp(stateKey(k, partition))
	}
	s, _, err := loadState(ctx, st, k, partition)
	if err != nil || s.Pending == nil {
		return s, 0, err
	}
	n := len(s.Pending.Files)
	for _, key := range s.Pending.Files {
		if err := st.Delete(ctx, key); err != nil {
			return s, 0, err
		}
		if cleans {
			tc.cleanTemp(key)
		}
	}
	s.Pending = nil
	if err := saveState(ctx, st, k, partition, s); err != nil {
		return s, 0, err
	}
	return s, n, nil
}
