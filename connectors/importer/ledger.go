package importer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// Ledger remembers, per source, how far an import got: a re-run of an
// interrupted import resumes after the events already acknowledged, and a
// completed one is not sent again (unless forced). Downstream
// de-duplication cannot do this for history: the feature store remembers
// event ids for an hour of event time, and a history spans months.
//
// It is a folder of small JSON files, one per source fingerprint, written
// atomically. A kill -9 of the importer can lose at most the progress
// since the last checkpoint (Options.CheckpointEvery events): those are
// sent again on the re-run.
type Ledger struct{ dir string }

// NewLedger keeps the ledger in dir (created when first written).
func NewLedger(dir string) *Ledger { return &Ledger{dir: dir} }

// LedgerEntry is one source's progress.
type LedgerEntry struct {
	V           int       `json:"v"`
	Source      string    `json:"source"`
	Fingerprint string    `json:"fingerprint"`
	Events      int       `json:"events"`
	Done        int       `json:"done"` // events acknowledged, in order
	Completed   bool      `json:"completed"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func (l *Ledger) path(fp string) string { return filepath.Join(l.dir, fp+".json") }

func (l *Ledger) load(fp string) (LedgerEntry, error) {
	b, err := os.ReadFile(l.path(fp))
	if errors.Is(err, fs.ErrNotExist) {
		return LedgerEntry{V: 1, Fingerprint: fp}, nil
	}
	if err != nil {
		return LedgerEntry{}, fmt.Errorf("importer: ledger: %w", err)
	}
	var e LedgerEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return LedgerEntry{}, fmt.Errorf("importer: ledger %s: %w", l.path(fp), err)
	}
	return e, nil
}

func (l *Ledger) save(e LedgerEntry) error {
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return fmt.Errorf("importer: ledger: %w", err)
	}
	e.UpdatedAt = time.Now().UTC()
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	tmp := l.path(e.Fingerprint) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("importer: ledger: %w", err)
	}
	if err := os.Rename(tmp, l.path(e.Fingerprint)); err != nil {
		return fmt.Errorf("importer: ledger: %w", err)
	}
	return nil
}

// fingerprint names a source: its kind, the options that shape its events,
// and each file's name, size and modification time. The same files read
// the same way have the same fingerprint.
func fingerprint(kind, options string, paths []string) string {
	h := sha256.New()
	h.Write([]byte(kind + "\x00" + options + "\x00"))
	ps := slices.Clone(paths)
	slices.Sort(ps)
	for _, p := range ps {
		h.Write([]byte(filepath.Base(p) + "\x00"))
		if st, err := os.Stat(p); err == nil {
			h.Write(strconv.AppendInt(nil, st.Size(), 10))
			h.Write([]byte{0})
			h.Write(strconv.AppendInt(nil, st.ModTime().UnixNano(), 10))
		}
		h.Write([]byte{0})
	}
	return kind + "-" + hex.EncodeToString(h.Sum(nil)[:12])
}
