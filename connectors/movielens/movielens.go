package movielens

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/eddyrec/eddy/event"
)

// Format names one of the MovieLens rating file layouts.
type Format int

const (
	// FormatUData is ml-100k's u.data: user, item, rating, unix seconds,
	// separated by tabs, no header.
	FormatUData Format = iota + 1
	// FormatDat is ml-1m / ml-10m ratings.dat: "user::item::rating::ts".
	FormatDat
	// FormatCSV is ml-latest(-small) ratings.csv: a header line, then
	// "userId,movieId,rating,timestamp".
	FormatCSV
)

// String returns the file name the format is usually stored under.
func (f Format) String() string {
	switch f {
	case FormatUData:
		return "u.data"
	case FormatDat:
		return "ratings.dat"
	case FormatCSV:
		return "ratings.csv"
	}
	return "unknown"
}

// ErrNoRatings is returned by Open when a directory holds none of the known
// rating files.
var ErrNoRatings = errors.New("movielens: no u.data, ratings.csv or ratings.dat")

// maxLineBytes bounds a single line; real rows are about 30 bytes, so anything
// longer is a wrong file rather than a long row.
const maxLineBytes = 4096

// Rating is one row of a MovieLens ratings file.
type Rating struct {
	UserID string
	ItemID string
	Value  float64 // 0.5–5 (ml-latest, in halves) or 1–5 (ml-100k, ml-1m)
	Unix   int64   // seconds since the epoch
}

// Find returns the path and format of the ratings file in dir, preferring
// u.data, then ratings.csv, then ratings.dat.
func Find(dir string) (string, Format, error) {
	for _, c := range []struct {
		name string
		f    Format
	}{{"u.data", FormatUData}, {"ratings.csv", FormatCSV}, {"ratings.dat", FormatDat}} {
		p := filepath.Join(dir, c.name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, c.f, nil
		}
	}
	return "", 0, fmt.Errorf("%w in %q", ErrNoRatings, dir)
}

// ReadDir finds the ratings file in dir, parses it and returns its rows
// sorted by time (stable: ties keep file order).
func ReadDir(dir string) ([]Rating, error) {
	path, f, err := Find(dir)
	if err != nil {
		return nil, err
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("movielens: open %q: %w", path, err)
	}
	defer fh.Close()
	rs, err := Parse(fh, f)
	if err != nil {
		return nil, fmt.Errorf("movielens: %s: %w", path, err)
	}
	SortByTime(rs)
	return rs, nil
}

// SortByTime orders rs by timestamp, keeping file order among equal times so
// that a replay is deterministic.
func SortByTime(rs []Rating) {
	slices.SortStableFunc(rs, func(a, b Rating) int {
		switch {
		case a.Unix < b.Unix:
			return -1
		case a.Unix > b.Unix:
			return 1
		}
		return 0
	})
}

// Parse reads every row of r in format f. Blank lines are skipped; any other
// malformed line is an error naming its line number.
func Parse(r io.Reader, f Format) ([]Rating, error) {
	var sep []byte
	switch f {
	case FormatUData:
		sep = []byte{'\t'}
	case FormatDat:
		sep = []byte("::")
	case FormatCSV:
		sep = []byte{','}
	default:
		return nil, fmt.Errorf("unknown format %d", int(f))
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, maxLineBytes), maxLineBytes)
	var out []Rating
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimRight(sc.Bytes(), "\r")
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		if f == FormatCSV && line == 1 {
			if bytes.HasPrefix(b, []byte("userId")) {
				continue
			}
		}
		row, err := parseRow(b, sep)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out, row)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	return out, nil
}

// ParseLine parses one row of a file in format f (without its line end),
// for a reader that reports bad rows one by one instead of stopping at the
// first.
func ParseLine(b []byte, f Format) (Rating, error) {
	switch f {
	case FormatUData:
		return parseRow(b, []byte{'\t'})
	case FormatDat:
		return parseRow(b, []byte("::"))
	case FormatCSV:
		return parseRow(b, []byte{','})
	}
	return Rating{}, fmt.Errorf("unknown format %d", int(f))
}

func parseRow(b, sep []byte) (Rating, error) {
	var fields [4][]byte
	for i := range 3 {
		j := bytes.Index(b, sep)
		if j < 0 {
			return Rating{}, fmt.Errorf("want 4 fields, got %d", i+1)
		}
		fields[i], b = b[:j], b[j+len(sep):]
	}
	if bytes.Contains(b, sep) {
		return Rating{}, errors.New("want 4 fields, got more")
	}
	fields[3] = b
	user, item := string(fields[0]), string(fields[1])
	if err := checkID("user id", user); err != nil {
		return Rating{}, err
	}
	if err := checkID("item id", item); err != nil {
		return Rating{}, err
	}
	v, err := strconv.ParseFloat(string(fields[2]), 64)
	if err != nil || v < 0.5 || v > 5 {
		return Rating{}, fmt.Errorf("rating %q: want a number in [0.5, 5]", fields[2])
	}
	ts, err := strconv.ParseInt(string(fields[3]), 10, 64)
	if err != nil || ts < 0 {
		return Rating{}, fmt.Errorf("timestamp %q: want non-negative unix seconds", fields[3])
	}
	return Rating{UserID: user, ItemID: item, Value: v, Unix: ts}, nil
}

// checkID accepts the decimal ids MovieLens uses; anything else means the
// file is not what its name says.
func checkID(what, s string) error {
	if s == "" || len(s) > 20 {
		return fmt.Errorf("%s %q: want 1–20 digits", what, s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return fmt.Errorf("%s %q: want 1–20 digits", what, s)
		}
	}
	return nil
}

// Event converts one rating into an event of type rating. The event id is
// "ml:<user>:<item>", unique within a MovieLens file because a user rates a
// movie at most once.
func (r Rating) Event() event.Event {
	return event.Event{
		EventID:  "ml:" + r.UserID + ":" + r.ItemID,
		UserID:   r.UserID,
		ItemID:   r.ItemID,
		Type:     event.Rating,
		Time:     time.Unix(r.Unix, 0).UTC(),
		Value:    r.Value,
		HasValue: true,
	}
}

// Events converts rows into events, keeping their order.
func Events(rs []Rating) []event.Event {
	out := make([]event.Event, len(rs))
	for i := range rs {
		out[i] = rs[i].Event()
	}
	return out
}
