package snapshot

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"unicode/utf8"

	"github.com/eddyrec/eddy/learner/modelrec"
)

// Version is the layout version Write produces and Read accepts.
const Version = 1

const (
	magic       = "EDDYSNAP"
	maxMeta     = 1 << 20
	maxKey      = 256
	maxValue    = 1 << 20
	headerLen   = 16
	trailerLen  = 12
	recordFixed = 1 + 2 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is returned for a file that is not a whole, valid snapshot.
var ErrCorrupt = errors.New("snapshot: corrupt or truncated")

// Meta describes the run that produced a snapshot.
type Meta struct {
	Trainer  string         `json:"trainer"` // "ials"
	Config   map[string]any `json:"config"`
	Dim      int            `json:"dim"`
	Users    int            `json:"users"`
	Items    int            `json:"items"`
	Pairs    int            `json:"pairs"`
	Events   int            `json:"events"`
	FromTs   string         `json:"from,omitempty"` // the training range
	ToTs     string         `json:"to,omitempty"`
	Source   string         `json:"source"`
	Loss     float64        `json:"loss"`
	Seconds  float64        `json:"train_seconds"`
	Created  string         `json:"created"`
	Validate []float64      `json:"validation_hr_at_10,omitempty"`
}

// Record is one row of the model: its id and its modelrec Vector.
type Record struct {
	Key    string
	Vector modelrec.Vector
}

// Write stores meta and the records yielded by rows (users and items in
// any order) at path, atomically.
func Write(path string, meta Meta, rows func(yield func(*Record) error) error) (err error) {
	mb, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	if len(mb) > maxMeta {
		return fmt.Errorf("snapshot: meta of %d bytes: at most %d", len(mb), maxMeta)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	crc := crc32.New(castagnoli)
	w := bufio.NewWriterSize(io.MultiWriter(tmp, crc), 1<<20)
	var hdr [headerLen]byte
	copy(hdr[:], magic)
	binary.LittleEndian.PutUint32(hdr[8:], Version)
	binary.LittleEndian.PutUint32(hdr[12:], uint32(len(mb)))
	w.Write(hdr[:])
	w.Write(mb)
	var n uint64
	var buf []byte
	err = rows(func(r *Record) error {
		if l := len(r.Key); l == 0 || l > maxKey || !utf8.ValidString(r.Key) {
			return fmt.Errorf("snapshot: key of %d bytes: want 1–%d bytes of UTF-8", l, maxKey)
		}
		var err error
		if buf, err = modelrec.AppendVector(buf[:0], &r.Vector); err != nil {
			return err
		}
		var fix [recordFixed]byte
		fix[0] = byte(r.Vector.Kind)
		binary.LittleEndian.PutUint16(fix[1:], uint16(len(r.Key)))
		w.Write(fix[:3])
		w.WriteString(r.Key)
		binary.LittleEndian.PutUint32(fix[3:], uint32(len(buf)))
		w.Write(fix[3:])
		w.Write(buf)
		n++
		return nil
	})
	if err != nil {
		return err
	}
	var cnt [8]byte
	binary.LittleEndian.PutUint64(cnt[:], n)
	w.Write(cnt[:])
	if err = w.Flush(); err != nil {
		return err
	}
	var sum [4]byte
	binary.LittleEndian.PutUint32(sum[:], crc.Sum32())
	if _, err = tmp.Write(sum[:]); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Snapshot is a file read back.
type Snapshot struct {
	Meta  Meta
	Users []Record
	Items []Record
}

// ReadFile reads and verifies the snapshot at path.
func ReadFile(path string) (*Snapshot, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Decode parses a whole snapshot held in b.
func Decode(b []byte) (*Snapshot, error) {
	if len(b) < headerLen+trailerLen || string(b[:8]) != magic {
		return nil, fmt.Errorf("%w: not a snapshot", ErrCorrupt)
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != Version {
		return nil, fmt.Errorf("snapshot: version %d: this build reads version %d", v, Version)
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	m := int(binary.LittleEndian.Uint32(b[12:]))
	if m > maxMeta || headerLen+m > len(body)-8 {
		return nil, fmt.Errorf("%w: meta length %d", ErrCorrupt, m)
	}
	s := &Snapshot{}
	if err := json.Unmarshal(b[headerLen:headerLen+m], &s.Meta); err != nil {
		return nil, fmt.Errorf("%w: meta: %v", ErrCorrupt, err)
	}
	want := binary.LittleEndian.Uint64(body[len(body)-8:])
	p := body[headerLen+m : len(body)-8]
	var n uint64
	for len(p) > 0 {
		if len(p) < 3 {
			return nil, fmt.Errorf("%w: record %d: truncated", ErrCorrupt, n)
		}
		kind := modelrec.Kind(p[0])
		k := int(binary.LittleEndian.Uint16(p[1:]))
		if k == 0 || k > maxKey || len(p) < 3+k+4 {
			return nil, fmt.Errorf("%w: record %d: key length %d", ErrCorrupt, n, k)
		}
		key := string(p[3 : 3+k])
		if !utf8.ValidString(key) {
			return nil, fmt.Errorf("%w: record %d: key is not UTF-8", ErrCorrupt, n)
		}
		v := int(binary.LittleEndian.Uint32(p[3+k:]))
		p = p[3+k+4:]
		if v > maxValue || v > len(p) {
			return nil, fmt.Errorf("%w: record %d: value length %d", ErrCorrupt, n, v)
		}
		r := Record{Key: key}
		if err := modelrec.DecodeVector(p[:v], &r.Vector); err != nil {
			return nil, fmt.Errorf("%w: record %d: %v", ErrCorrupt, n, err)
		}
		if r.Vector.Kind != kind {
			return nil, fmt.Errorf("%w: record %d: kind %d, vector of kind %d", ErrCorrupt, n, kind, r.Vector.Kind)
		}
		if kind == modelrec.KindUser {
			s.Users = append(s.Users, r)
		} else {
			s.Items = append(s.Items, r)
		}
		p = p[v:]
		n++
	}
	if n != want {
		return nil, fmt.Errorf("%w: %d records, trailer says %d", ErrCorrupt, n, want)
	}
	return s, nil
}
