package archive

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/eddyrec/eddy/learner/modelrec"
)

func sampleModel() []ModelRecord {
	return []ModelRecord{
		{ID: "u1", Vector: modelrec.Vector{Kind: modelrec.KindUser, ModelVersion: 3, Updates: 9, TsMillis: 5, Vec: []float32{1, 2}, Seen: []string{"i1", "ï2"}}},
		{ID: "i1", Vector: modelrec.Vector{Kind: modelrec.KindItem, Updates: 4, TsMillis: 6, Popularity: 2, Vec: []float32{3, 4}}},
		{ID: "ï2", Vector: modelrec.Vector{Kind: modelrec.KindItem, Vec: []float32{-1, 0}, Bias: 0.5}},
	}
}

func TestModelRoundTrip(t *testing.T) {
	ctx := context.Background()
	st, err := OpenStore(ctx, t.TempDir(), S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs := sampleModel()
	if err := WriteModel(ctx, st, ModelsFolder+"m.parquet", []byte(`{"trainer":"ials"}`), recs); err != nil {
		t.Fatal(err)
	}
	m, err := ReadModel(ctx, st, ModelsFolder+"m.parquet")
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Meta) != `{"trainer":"ials"}` || len(m.Users) != 1 || len(m.Items) != 2 {
		t.Fatalf("model %+v", m)
	}
	if !reflect.DeepEqual(m.Users[0], recs[0]) || !reflect.DeepEqual(m.Items[1], recs[2]) {
		t.Fatalf("records\n got %+v %+v\nwant %+v %+v", m.Users[0], m.Items[1], recs[0], recs[2])
	}
	// Snapshots do not disturb the archive's own readers.
	if _, err := ScanEvents(ctx, st, ScanOptions{}, func(*EventRow) error { return nil }); err != nil {
		t.Fatal(err)
	}
}

func TestEncodeModelRejects(t *testing.T) {
	for name, mut := range map[string]func([]ModelRecord){
		"nan":        func(r []ModelRecord) { r[1].Vector.Vec[0] = float32(math.NaN()) },
		"mixed dims": func(r []ModelRecord) { r[2].Vector.Vec = []float32{1} },
		"item seen":  func(r []ModelRecord) { r[1].Vector.Seen = []string{"x"} },
	} {
		recs := sampleModel()
		mut(recs)
		if _, err := EncodeModel(nil, recs); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}

func TestDecodeModelRejects(t *testing.T) {
	good, err := EncodeModel([]byte("{}"), sampleModel())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeModel(bytes.NewReader(good[:len(good)/2]), int64(len(good)/2)); !errors.Is(err, ErrModel) {
		t.Errorf("truncated: %v", err)
	}
	// An archive events file is not a model.
	ev, err := encodeFile([]EventRow{{EventID: "e", UserID: "u", ItemID: "i", Type: "click"}}, eventSchema, fileMeta{kind: Events})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeModel(bytes.NewReader(ev), int64(len(ev))); !errors.Is(err, ErrSchemaVersion) {
		t.Errorf("events file: %v", err)
	}
}

func FuzzDecodeModel(f *testing.F) {
	good, _ := EncodeModel([]byte("{}"), sampleModel())
	f.Add(good)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeModel(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		for _, r := range append(m.Users, m.Items...) {
			if _, err := modelrec.AppendVector(nil, &r.Vector); err != nil {
				t.Fatalf("decoded a record that does not encode: %v", err)
			}
		}
	})
}

// TestDecodeModelSurvivesCorruption flips random bytes of a snapshot: every
// result is an error or a valid model, never a panic (parquet-go v0.32
// panics on some corrupt page indexes; Recover turns that into ErrCorrupt)
// and never a page allocated at the size a corrupt header claims
// (CheckPages).
func TestDecodeModelSurvivesCorruption(t *testing.T) {
	if raceEnabled {
		t.Skip("SKIPPED under -race: checkptr turns parquet-go's recoverable panic on a corrupt page into a fatal error (see race_test.go); runs in make unit")
	}
	good, err := EncodeModel([]byte("{}"), sampleModel())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	corrupt := 0
	for range 2000 {
		b := bytes.Clone(good)
		for range 1 + rng.IntN(3) {
			b[rng.IntN(len(b))] = byte(rng.IntN(256))
		}
		if _, err := DecodeModel(bytes.NewReader(b), int64(len(b))); errors.Is(err, ErrCorrupt) {
			corrupt++
		}
	}
	t.Logf("%d of 2000 corruptions rejected as corrupt (the rest: other errors or a valid model)", corrupt)
}
