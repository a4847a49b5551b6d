package snapshot

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/eddyrec/eddy/learner/modelrec"
)

func sample() (Meta, []Record) {
	meta := Meta{Trainer: "ials", Dim: 2, Users: 1, Items: 2, Source: "test", Config: map[string]any{"reg": 0.003}}
	return meta, []Record{
		{Key: "u1", Vector: modelrec.Vector{Kind: modelrec.KindUser, Vec: []float32{1, 2}, Seen: []string{"i1"}, TsMillis: 5}},
		{Key: "i1", Vector: modelrec.Vector{Kind: modelrec.KindItem, Vec: []float32{3, 4}, Popularity: 1}},
		{Key: "ï2", Vector: modelrec.Vector{Kind: modelrec.KindItem, Vec: []float32{-1, 0}}},
	}
}

func write(t testing.TB, path string, meta Meta, rs []Record) {
	t.Helper()
	err := Write(path, meta, func(yield func(*Record) error) error {
		for i := range rs {
			if err := yield(&rs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.snap")
	meta, rs := sample()
	write(t, path, meta, rs)
	s, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Meta.Trainer != "ials" || s.Meta.Config["reg"] != 0.003 || len(s.Users) != 1 || len(s.Items) != 2 {
		t.Fatalf("snapshot %+v", s)
	}
	if !reflect.DeepEqual(s.Users[0], rs[0]) || s.Items[1].Key != "ï2" || s.Items[0].Vector.Popularity != 1 {
		t.Fatalf("records %+v", s)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

func TestWriteRejectsAndLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.snap")
	meta, rs := sample()
	rs[1].Key = ""
	err := Write(path, meta, func(yield func(*Record) error) error {
		for i := range rs {
			if err := yield(&rs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		t.Fatal("an empty key was written")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a failed write left %v", entries)
	}
}

func TestDecodeRejects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m")
	meta, rs := sample()
	write(t, path, meta, rs)
	good, _ := os.ReadFile(path)
	for name, b := range map[string][]byte{
		"empty":     nil,
		"magic":     append([]byte("EDDYSNAQ"), good[8:]...),
		"truncated": good[:len(good)-5],
		"flipped":   func() []byte { c := append([]byte(nil), good...); c[40] ^= 1; return c }(),
	} {
		if _, err := Decode(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	v2 := append([]byte(nil), good...)
	v2[8] = 2
	if _, err := Decode(v2); err == nil || errors.Is(err, ErrCorrupt) {
		t.Errorf("version 2: %v, want a version error", err)
	}
}

func FuzzDecode(f *testing.F) {
	path := filepath.Join(f.TempDir(), "m")
	meta, rs := sample()
	write(f, path, meta, rs)
	good, _ := os.ReadFile(path)
	f.Add(good)
	f.Add(good[:20])
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(b)
		if err != nil {
			return
		}
		for _, r := range append(s.Users, s.Items...) {
			if _, err := modelrec.AppendVector(nil, &r.Vector); err != nil {
				t.Fatalf("decoded a record that does not encode: %v", err)
			}
		}
	})
}
