package drift

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eddyrec/eddy/event"
)

// TestAlignScript runs testdata/align.txt: records pushed per source, and
// the records each push releases, in order.
//
//	aligner span=<duration> max=<records>
//	push src=events|recs t=<offset from scriptBase> [id=<label>]
//	snapshot            (encode, decode into a fresh aligner, continue with it)
func TestAlignScript(t *testing.T) {
	var a *aligner
	runScript(t, "testdata/align.txt", func(t *testing.T, c *scriptCase) string {
		switch c.cmd {
		case "aligner":
			span, err := time.ParseDuration(c.arg("span", "1m"))
			if err != nil {
				t.Fatal(err)
			}
			var max int
			fmt.Sscan(c.arg("max", "1000"), &max)
			a = newAligner(span.Milliseconds(), max)
			return ""
		case "push":
			off, err := time.ParseDuration(c.arg("t", "0s"))
			if err != nil {
				t.Fatal(err)
			}
			ts := scriptBase.Add(off)
			id := c.arg("id", c.arg("t", ""))
			var raw []byte
			switch c.arg("src", "") {
			case "events":
				e := event.Event{EventID: id, UserID: "u", ItemID: "i", Type: event.Click, Time: ts}
				raw = e.AppendJSON(nil)
				if !a.push(SourceEvents, raw, time.Time{}) {
					return "invalid"
				}
				a.own()
			case "recs":
				raw = []byte(fmt.Sprintf(`{"request_id":%q,"user_id":"u","model_version":"m","fallback":false,"ts":%d,"items":[]}`, id, ts.UnixMilli()))
				if !a.push(SourceRecs, raw, time.Time{}) {
					return "invalid"
				}
				a.own()
			default:
				t.Fatalf("%s: src events or recs", c.pos)
			}
			return released(a)
		case "snapshot":
			var e encoder
			a.encode(&e)
			b := newAligner(a.maxSpan, a.maxRecords)
			d := &decoder{b: e.b}
			if err := b.decode(d); err != nil || len(d.b) != 0 {
				t.Fatalf("%s: decode: %v (%d trailing)", c.pos, err, len(d.b))
			}
			a = b
			return fmt.Sprintf("buffered events=%d recs=%d forced=%d", a.len(0), a.len(1), a.Forced)
		}
		t.Fatalf("%s: unknown command %s", c.pos, c.cmd)
		return ""
	})
}

func released(a *aligner) string {
	var out []string
	for {
		r, ok := a.next()
		if !ok {
			break
		}
		if r.ev != nil {
			out = append(out, fmt.Sprintf("event %s t=%s", r.ev.EventID, r.ev.Time.Sub(scriptBase)))
		} else {
			out = append(out, fmt.Sprintf("list %s t=%s", r.sl.RequestID, r.sl.Time.Sub(scriptBase)))
		}
	}
	if len(out) == 0 {
		return "waiting"
	}
	return strings.Join(out, "\n") + fmt.Sprintf("\n(forced %d)", a.Forced)
}

func FuzzAlignerDecode(f *testing.F) {
	a := newAligner(60_000, 10)
	e := event.Event{EventID: "e", UserID: "u", ItemID: "i", Type: event.Click, Time: scriptBase}
	a.push(SourceEvents, e.AppendJSON(nil), time.Time{})
	var enc encoder
	a.encode(&enc)
	f.Add(enc.b)
	f.Fuzz(func(t *testing.T, data []byte) {
		b := newAligner(60_000, 10)
		_ = b.decode(&decoder{b: data}) // must not panic
	})
}

func FuzzMonitorStageDecode(f *testing.F) {
	s, err := NewSchema(DefaultConfig())
	if err != nil {
		f.Fatal(err)
	}
	rc := DefaultRoleConfig(DefaultConfig())
	m := newMonitorProcessor(s, 2, &rc, nil, nil, discardLog())
	m.fresh()
	var e encoder
	e.b = append(e.b, monitorStateM...)
	e.u8(stateV1)
	e.u32(2)
	e.u32(0)
	e.u8(0)
	_ = e.str16("")
	e.i64(0)
	mb, _ := m.merger.MarshalBinary()
	e.blob(mb)
	nb, _ := m.monitor.MarshalBinary()
	e.blob(nb)
	if err := m.decode(e.b); err != nil {
		f.Fatalf("seed does not decode: %v", err)
	}
	f.Add(e.b)
	f.Fuzz(func(t *testing.T, data []byte) {
		m := newMonitorProcessor(s, 2, &rc, nil, nil, discardLog())
		m.fresh()
		_ = m.decode(data) // must not panic
	})
}

// TestAlignerOwnsWhatItKeeps: a record still buffered after the push is
// copied (own) before the caller's buffer changes, and one released at once
// never needs to be; Events released by the Partition are reused without
// changing what was taken from them.
func TestAlignerOwnsWhatItKeeps(t *testing.T) {
	a := newAligner(60_000, 10)
	buf := (&event.Event{EventID: "e1", UserID: "u", ItemID: "i", Type: event.Click, Time: scriptBase,
		Context: map[string]string{"device": "tv"}}).AppendJSON(nil)
	if !a.push(SourceEvents, buf, time.Time{}) {
		t.Fatal("valid event refused")
	}
	a.own()
	for i := range buf {
		buf[i] = 'x' // the caller's buffer is reused
	}
	var e encoder
	a.encode(&e)
	b := newAligner(60_000, 10)
	if err := b.decode(&decoder{b: e.b}); err != nil {
		t.Fatalf("the buffered record was not owned: %v", err)
	}
	// Served lists arrive: the event is released, observed, given back.
	list := []byte(fmt.Sprintf(`{"request_id":"r","user_id":"u","model_version":"m","fallback":false,"ts":%d,"items":[]}`, scriptBase.Add(time.Minute).UnixMilli()))
	if !a.push(SourceRecs, list, time.Time{}) {
		t.Fatal("valid list refused")
	}
	r, ok := a.next()
	if !ok || r.ev == nil {
		t.Fatalf("event not released: %+v", r)
	}
	device := r.ev.Context["device"]
	a.release(r.ev)
	next := (&event.Event{EventID: "e2", UserID: "u", ItemID: "j", Type: event.Click, Time: scriptBase.Add(2 * time.Minute),
		Context: map[string]string{"device": "phone"}}).AppendJSON(nil)
	if !a.push(SourceEvents, next, time.Time{}) {
		t.Fatal("valid event refused")
	}
	if device != "tv" || len(a.free) != 0 {
		t.Errorf("value taken from a released event changed to %q, or the event was not reused (%d free)", device, len(a.free))
	}
}

// TestAlignerFutureSkewByRecordTime: an event is judged against its
// record's time, as the process role judges it, not against the clock of
// whenever it is read; zero (records validated before) skips the rule.
func TestAlignerFutureSkewByRecordTime(t *testing.T) {
	ahead := (&event.Event{EventID: "e", UserID: "u", ItemID: "i", Type: event.Click, Time: scriptBase.Add(event.MaxFutureSkew + time.Hour)}).AppendJSON(nil)
	for _, tc := range []struct {
		now  time.Time
		want bool
	}{
		{scriptBase, false},
		{scriptBase.Add(2 * time.Hour), true},
		{time.Time{}, true},
	} {
		a := newAligner(60_000, 10)
		if got := a.push(SourceEvents, ahead, tc.now); got != tc.want {
			t.Errorf("record time %v: push = %v, want %v", tc.now, got, tc.want)
		}
	}
}
