package event

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testNow is the receiver's clock in every test.
var testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

var testOpts = DecodeOptions{Now: func() time.Time { return testNow }}

// nowMs is testNow in unix milliseconds, written out independently of the
// code under test (2026-11-23T12:00:00Z; checked with `date -d ... +%s`).
const nowMs = "1795435200000"

// absent deletes a key in obj.
const absent = "\x00absent"

// obj builds an event object from the valid base event, replacing base keys
// (or deleting them with absent) and appending other keys, in order. Values
// are raw JSON text.
func obj(kv ...string) string {
	keys := []string{"event_id", "user_id", "item_id", "type", "ts"}
	vals := map[string]string{"event_id": `"e1"`, "user_id": `"u1"`, "item_id": `"i1"`, "type": `"click"`, "ts": nowMs}
	for i := 0; i+1 < len(kv); i += 2 {
		if _, ok := vals[kv[i]]; !ok {
			keys = append(keys, kv[i])
		}
		vals[kv[i]] = kv[i+1]
	}
	var b strings.Builder
	b.WriteByte('{')
	first := true
	for _, k := range keys {
		if vals[k] == absent {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(`"` + k + `":` + vals[k])
	}
	b.WriteByte('}')
	return b.String()
}

// errClass names the class of err for table comparisons.
func errClass(err error) string {
	var fe *FieldError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &fe):
		return "field " + fe.Field
	case errors.Is(err, ErrMalformed):
		return "malformed"
	case errors.Is(err, ErrNotObject):
		return "notobject"
	case errors.Is(err, ErrEmpty):
		return "empty"
	case errors.Is(err, ErrTooManyEvents):
		return "toomany"
	case errors.Is(err, ErrUnsupportedContentType):
		return "contenttype"
	}
	return "other: " + err.Error()
}

// realisticEvents returns n deterministic events shaped like production
// traffic: mostly impressions and clicks, watches with durations, a few
// ratings, request ids on most, small contexts on some.
func realisticEvents(n int) []Event {
	rng := rand.New(rand.NewPCG(1, 2))
	base := testNow.Add(-time.Hour).UnixMilli()
	platforms := []string{"ios", "android", "web", "tv"}
	out := make([]Event, n)
	for i := range out {
		e := &out[i]
		e.EventID = fmt.Sprintf("%016x-%04x", rng.Uint64(), i&0xffff)
		e.UserID = "user-" + strconv.Itoa(rng.IntN(1_000_000))
		e.ItemID = "item-" + strconv.Itoa(rng.IntN(100_000))
		e.Time = time.UnixMilli(base + int64(i)*3).UTC()
		switch p := rng.IntN(100); {
		case p < 50:
			e.Type = Impression
		case p < 70:
			e.Type = Click
		case p < 85:
			e.Type = Watch
			e.Duration, e.HasDuration = float64(60+rng.IntN(7200)), true
			e.Value, e.HasValue = float64(rng.IntN(int(e.Duration)*10))/10, true
		case p < 90:
			e.Type = Rating
			e.Value, e.HasValue = float64(1+rng.IntN(10))/2, true
		case p < 95:
			e.Type = Like
		default:
			e.Type = Skip
		}
		if rng.IntN(10) < 8 {
			e.RequestID = fmt.Sprintf("req-%012x", rng.Uint64()&0xffffffffffff)
		}
		if rng.IntN(10) < 3 {
			e.Context = map[string]string{
				"platform": platforms[rng.IntN(len(platforms))],
				"surface":  "home",
			}
		}
	}
	return out
}

func ndjson(t testing.TB, events []Event) []byte {
	t.Helper()
	var b []byte
	for i := range events {
		b = events[i].AppendJSON(b)
		b = append(b, '\n')
	}
	return b
}
