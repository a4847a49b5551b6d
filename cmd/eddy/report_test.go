package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/internal/testkafka"
	"github.com/eddyrec/eddy/scorer/abtest"
	"github.com/eddyrec/eddy/stream"
)

// TestReportAB runs the report over hand-written topics: lists of two
// variants (one a fallback, one retried), engagements that count and
// engagements the join rules drop, a transaction aborted in the events,
// and records of other schemas.
func TestReportAB(t *testing.T) {
	k := testkafka.Start(t, 2)
	cl := k.NewClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ts := time.Now().Add(-time.Hour).UnixMilli()
	list := func(req, user, variant string, fallback bool, items ...string) *kgo.Record {
		var b strings.Builder
		fmt.Fprintf(&b, `{"request_id":%q,"user_id":%q,"model_version":"1","variant":%q,"fallback":%v,"ts":%d,"items":[`, req, user, variant, fallback, ts)
		for i, it := range items {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"item_id":%q,"position":%d,"score":1}`, it, i)
		}
		b.WriteString("]}")
		return &kgo.Record{Topic: k.Layout.Name(stream.TopicRecs), Key: []byte(user), Value: []byte(b.String()),
			Headers: []kgo.RecordHeader{{Key: "eddy-schema", Value: []byte("recs/v1")}}}
	}
	ev := func(id, user, item, typ, req string, value float64) *kgo.Record {
		v := fmt.Sprintf(`{"event_id":%q,"user_id":%q,"item_id":%q,"type":%q,"ts":%d,"request_id":%q,"value":%v}`, id, user, item, typ, ts+1000, req, value)
		return &kgo.Record{Topic: k.Layout.Name(stream.TopicEvents), Key: []byte(user), Value: []byte(v)}
	}
	recs := []*kgo.Record{
		list("r1", "u1", "a", false, "i1", "i2", "i3"),
		list("r2", "u2", "a", true, "i4", "i5"),
		list("r3", "u3", "b", false, "i1", "i2", "i3"),
		list("r4", "u4", "b", false, "i6"),
		list("r3", "u3", "b", false, "i1", "i2", "i3"), // retried
		{Topic: k.Layout.Name(stream.TopicRecs), Key: []byte("u9"), Value: []byte(`{"request_id":""}`)},
		{Topic: k.Layout.Name(stream.TopicRecs), Key: []byte("u9"), Value: []byte(`{}`), Headers: []kgo.RecordHeader{{Key: "eddy-schema", Value: []byte("recs/v9")}}},
	}
	events := []*kgo.Record{
		ev("e1", "u1", "i1", "click", "r1", 0),
		ev("e1", "u1", "i1", "click", "r1", 0), // duplicate event
		ev("e2", "u1", "i1", "click", "r1", 0), // repeat click
		ev("e3", "u1", "i2", "watch", "r1", 40),
		ev("e4", "u2", "i5", "click", "r2", 0),
		ev("e5", "u3", "i3", "click", "r3", 0),
		ev("e6", "u3", "i3", "watch", "r3", 12.5),
		ev("e7", "u3", "i3", "watch", "r3", 7.5),
		ev("e8", "u3", "i9", "click", "r3", 0),   // not in the list
		ev("e9", "u5", "i1", "click", "r404", 0), // no such list
		ev("e10", "u4", "i6", "like", "r4", 0),   // not a click or a watch
		ev("e11", "u4", "i6", "click", "", 0),    // answers no list
		{Topic: k.Layout.Name(stream.TopicEvents), Value: []byte(`not json`)},
	}
	if err := cl.ProduceSync(ctx, append(recs, events...)...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// An aborted transaction: its click must not count, and its marker
	// must not keep the reader waiting.
	tx := k.NewClient(t, kgo.TransactionalID(k.Layout.Prefix+"tx"))
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := tx.ProduceSync(ctx, ev("e12", "u4", "i6", "click", "r4", 0)).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := tx.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}

	var out, errOut bytes.Buffer
	if err := reportAB(ctx, k.Client(), k.Layout, abOptions{json: true}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var rep abReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	a, b := rep.Variants["a"], rep.Variants["b"]
	if rep.Control != "a" || len(rep.Variants) != 2 {
		t.Fatalf("control %q variants %v", rep.Control, rep.Variants)
	}
	if a.Lists != 2 || a.FallbackLists != 1 || a.Impressions != 5 || a.Clicks != 2 || a.WatchSeconds != 40 || a.VsControl != nil {
		t.Fatalf("variant a %+v", a)
	}
	if b.Lists != 2 || b.Impressions != 4 || b.Clicks != 1 || b.WatchSeconds != 20 || b.WatchPerImpression != 5 || b.VsControl == nil {
		t.Fatalf("variant b %+v", b)
	}
	if z, p := abtest.TwoProportionZ(1, 4, 2, 5); b.VsControl.Z != z || b.VsControl.P != p {
		t.Fatalf("b vs a %+v", b.VsControl)
	}
	e := rep.Engagements
	if e["counted"] != 6 || e["duplicate_event"] != 1 || e["repeat_click"] != 1 || e["unknown_item"] != 1 || e["unknown_request"] != 1 {
		t.Fatalf("engagements %v", e)
	}
	if rep.Lists.Read != 7 || rep.Lists.Invalid != 2 || rep.Lists.Duplicate != 1 {
		t.Fatalf("lists %+v", rep.Lists)
	}
	if !strings.Contains(errOut.String(), "13 events") || !strings.Contains(errOut.String(), "(1 invalid)") {
		t.Fatalf("summary %q", errOut.String())
	}

	// The table, with b as the control.
	out.Reset()
	if err := reportAB(ctx, k.Client(), k.Layout, abOptions{control: "b"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "variant") || !strings.Contains(lines[0], "ΔCTR vs b") ||
		!strings.HasPrefix(lines[1], "b ") || !strings.Contains(lines[1], "(control)") || !strings.HasPrefix(lines[2], "a ") || !strings.Contains(lines[2], "40.000%") {
		t.Fatalf("table:\n%s", out.String())
	}
	if err := reportAB(ctx, k.Client(), k.Layout, abOptions{control: "c"}, &out, &errOut); err == nil || !strings.Contains(err.Error(), `"c"`) {
		t.Fatalf("unknown control: %v", err)
	}

	// --since after the lists: nothing counts.
	out.Reset()
	if err := reportAB(ctx, k.Client(), k.Layout, abOptions{since: time.UnixMilli(ts + 1), json: true}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	var none abReport
	if err := json.Unmarshal(out.Bytes(), &none); err != nil || len(none.Variants) != 0 || none.Lists.BeforeSince != 5 || none.Engagements["unknown_request"] != 10 {
		t.Fatalf("--since: %v %s", err, out.String())
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: "", want: time.Time{}},
		{in: "24h", want: now.Add(-24 * time.Hour)},
		{in: "2026-12-01T00:00:00Z", want: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
		{in: "-1h", bad: true},
		{in: "yesterday", bad: true},
	} {
		got, err := parseSince(c.in, now)
		if (err != nil) != c.bad || !got.Equal(c.want) {
			t.Errorf("parseSince(%q) = %v, %v", c.in, got, err)
		}
	}
}
