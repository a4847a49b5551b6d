package task

import (
	"bytes"
	"errors"
	"testing"
)

func TestMetaRoundTrip(t *testing.T) {
	for _, m := range []partitionMeta{{-1, 0}, {0, 0}, {12345, 678}, {1 << 62, 1 << 61}} {
		got, err := decodeMeta(m.appendTo(nil))
		if err != nil || got != m {
			t.Errorf("decodeMeta(encode(%+v)) = %+v, %v", m, got, err)
		}
	}
}

func TestDecodeMetaRejects(t *testing.T) {
	good := partitionMeta{5, 6}.appendTo(nil)
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"version 2", append([]byte{2}, good[1:]...)},
		{"short", good[:16]},
		{"long", append(good, 0)},
		{"source below -1", partitionMeta{-2, 0}.appendTo(nil)},
		{"negative changelog", partitionMeta{0, -1}.appendTo(nil)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeMeta(tc.in); !errors.Is(err, errCorrupt) {
				t.Fatalf("decodeMeta(%x) = %v, want errCorrupt", tc.in, err)
			}
		})
	}
}

func TestDecodeChangelog(t *testing.T) {
	ckpt := appendCheckpoint(nil, 42)
	tests := []struct {
		name       string
		key, value []byte
		want       changelogEntry
		err        bool
	}{
		{"put", []byte("suser-1"), []byte("v"), changelogEntry{Key: []byte("user-1"), Value: []byte("v")}, false},
		{"empty value is not a delete", []byte("sk"), []byte{}, changelogEntry{Key: []byte("k"), Value: []byte{}}, false},
		{"tombstone", []byte("sk"), nil, changelogEntry{Key: []byte("k")}, false},
		{"checkpoint", []byte("c"), ckpt, changelogEntry{Checkpoint: true, SourceNext: 42}, false},
		{"no key", nil, []byte("v"), changelogEntry{}, true},
		{"empty state key", []byte("s"), []byte("v"), changelogEntry{}, true},
		{"unknown kind", []byte("xk"), []byte("v"), changelogEntry{}, true},
		{"checkpoint with suffix", []byte("cc"), ckpt, changelogEntry{}, true},
		{"checkpoint short", []byte("c"), ckpt[:5], changelogEntry{}, true},
		{"checkpoint bad version", []byte("c"), append([]byte{9}, ckpt[1:]...), changelogEntry{}, true},
		{"checkpoint negative", []byte("c"), appendCheckpoint(nil, -5), changelogEntry{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeChangelog(tc.key, tc.value)
			if tc.err {
				if !errors.Is(err, errCorrupt) {
					t.Fatalf("err = %v, want errCorrupt", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Checkpoint != tc.want.Checkpoint || got.SourceNext != tc.want.SourceNext ||
				!bytes.Equal(got.Key, tc.want.Key) || !bytes.Equal(got.Value, tc.want.Value) ||
				(got.Value == nil) != (tc.want.Value == nil) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestStateKeyLayout(t *testing.T) {
	k := appendStateKey(nil, 258, []byte("ab"))
	want := []byte{'s', 0, 0, 1, 2, 'a', 'b'}
	if !bytes.Equal(k, want) {
		t.Fatalf("state key %x, want %x", k, want)
	}
	if !bytes.Equal(appendStateKeyString(nil, 258, "ab"), want) {
		t.Fatal("string and byte key builders differ")
	}
	if !bytes.HasPrefix(k, statePrefix(258)) || bytes.HasPrefix(k, statePrefix(257)) {
		t.Fatal("state prefix does not select the partition")
	}
}

// FuzzDecodeChangelog feeds arbitrary records (the changelog is outside
// input: anyone with write access to the topic can put bytes there).
func FuzzDecodeChangelog(f *testing.F) {
	f.Add([]byte("suser"), []byte("v"))
	f.Add([]byte("c"), appendCheckpoint(nil, 7))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		e, err := decodeChangelog(key, value)
		if err != nil {
			return
		}
		if e.Checkpoint {
			if e.SourceNext < 0 {
				t.Fatalf("negative checkpoint offset %d", e.SourceNext)
			}
			if again, _ := decodeCheckpoint(appendCheckpoint(nil, e.SourceNext)); again != e.SourceNext {
				t.Fatal("checkpoint round trip differs")
			}
			return
		}
		if len(e.Key) == 0 || len(e.Key) > MaxKeyLen || !bytes.Equal(e.Key, key[1:]) {
			t.Fatalf("state key %q from record key %q", e.Key, key)
		}
	})
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add(partitionMeta{3, 4}.appendTo(nil))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		if !bytes.Equal(m.appendTo(nil), b) {
			t.Fatalf("meta %x decodes to %+v which encodes differently", b, m)
		}
	})
}
