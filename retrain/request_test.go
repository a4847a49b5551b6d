package retrain

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/eddyrec/eddy/drift"
)

// The drift role's RetrainRequest decodes as a retrain request triggered
// by drift, keeping its report ids.
func TestDecodeDriftRequest(t *testing.T) {
	b, err := json.Marshal(drift.RetrainRequest{Schema: drift.RetrainRequestSchemaVersion, Kind: "retrain", ID: "rr-1",
		Time: time.Unix(100, 0).UTC(), Reason: "score drifted", ReportIDs: []string{"rep-1", "rep-2"}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := DecodeRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != KindRetrain || r.Trigger != TriggerDrift || r.ID != "rr-1" || len(r.ReportIDs) != 2 {
		t.Fatalf("%+v", r)
	}
}

func TestDecodeRequest(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // error substring, "" for success, "other" for another role's record
		trigger  string
	}{
		{"manual", `{"schema":1,"kind":"retrain","id":"a","trigger":"manual"}`, "", TriggerManual},
		{"schedule", `{"schema":1,"kind":"retrain","id":"a","trigger":"schedule"}`, "", TriggerSchedule},
		{"rollback", `{"schema":1,"kind":"rollback","id":"a","version":3}`, "", TriggerRollback},
		{"another role's", `{"schema":1,"kind":"reference","id":"a"}`, "other", ""},
		{"no kind", `{"schema":1,"id":"a"}`, "other", ""},
		{"not json", `retrain please`, "bad control record", ""},
		{"wrong type", `{"schema":1,"kind":"retrain","id":7}`, "bad control record", ""},
		{"unknown schema", `{"schema":2,"kind":"retrain","id":"a"}`, "schema 2", ""},
		{"no id", `{"schema":1,"kind":"retrain"}`, "id of 0 bytes", ""},
		{"rollback without version", `{"schema":1,"kind":"rollback","id":"a"}`, "names no version", ""},
		{"unknown trigger", `{"schema":1,"kind":"retrain","id":"a","trigger":"cron"}`, "trigger \"cron\"", ""},
		{"invalid utf-8", "{\"schema\":1,\"kind\":\"retrain\",\"id\":\"\xff\"}", "not UTF-8", ""},
		{"oversized", `{"schema":1,"kind":"retrain","id":"a","reason":"` + strings.Repeat("x", MaxRequestBytes) + `"}`, "bytes (max", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := DecodeRequest([]byte(tc.in))
			switch {
			case tc.want == "":
				if err != nil || r.Trigger != tc.trigger {
					t.Fatalf("got %+v, %v; want trigger %s", r, err, tc.trigger)
				}
			case tc.want == "other":
				if !IsOtherKind(err) {
					t.Fatalf("got %v, want another role's record", err)
				}
			default:
				if err == nil || !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v, want ErrBadRequest with %q", err, tc.want)
				}
			}
		})
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"schema":1,"kind":"retrain","id":"a","trigger":"manual"}`))
	f.Add([]byte(`{"schema":1,"kind":"rollback","id":"a","version":3}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRequest(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to something that decodes the same.
		out, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		r2, err := DecodeRequest(out)
		if err != nil || r2.ID != r.ID || r2.Kind != r.Kind || r2.Trigger != r.Trigger || r2.Version != r.Version {
			t.Fatalf("round trip: %+v → %+v, %v", r, r2, err)
		}
	})
}

func FuzzDecodeVersion(f *testing.F) {
	v := &Version{Version: 2, Parent: 1, Decision: Rejected, Trigger: TriggerManual, RequestIDs: []string{"a"}}
	b, _ := v.Encode()
	f.Add(b)
	f.Add([]byte(`{"schema":1,"version":3,"decision":"promoted"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeVersion(b)
		if err != nil {
			return
		}
		if v.Version <= InitialVersion || (v.Decision == Promoted && v.Published == nil) {
			t.Fatalf("accepted %+v", v)
		}
	})
}

func TestHistory(t *testing.T) {
	var h History
	if h.Next() != 2 || h.LiveVersion() != 1 || h.ControlOffset() != 0 || h.Live() != nil {
		t.Fatal("empty history")
	}
	pub := &Publication{}
	h.Add(&Version{Version: 3, Decision: Rejected, ControlOffset: 9, RequestIDs: []string{"c"}})
	h.Add(&Version{Version: 2, Decision: Promoted, Published: pub, ControlOffset: 4, RequestIDs: []string{"a", "b"}})
	h.Add(&Version{Version: 4, Decision: Failed, ControlOffset: 12})
	if h.Next() != 5 || h.LiveVersion() != 2 || h.ControlOffset() != 13 {
		t.Fatalf("next %d live %d control %d", h.Next(), h.LiveVersion(), h.ControlOffset())
	}
	if v := h.Answered("b"); v == nil || v.Version != 2 {
		t.Fatalf("Answered(b) = %v", v)
	}
	h.Add(&Version{Version: 5, Decision: Promoted, Published: pub, ControlOffset: 14})
	if h.LiveVersion() != 5 || len(h.All()) != 4 || h.All()[0].Version != 2 {
		t.Fatalf("live %d, %d versions", h.LiveVersion(), len(h.All()))
	}
	// A record read twice replaces itself.
	h.Add(&Version{Version: 5, Decision: Promoted, Published: pub, ControlOffset: 14, Reason: "again"})
	if len(h.All()) != 4 || h.Get(5).Reason != "again" {
		t.Fatal("duplicate version record")
	}
}
