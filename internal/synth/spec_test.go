package synth

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		spec    string
		want    func(*Config) // applied to DefaultConfig
		wantErr string
	}{
		{"", func(*Config) {}, ""},
		{"   ", func(*Config) {}, ""},
		{"users=1000,items=500,seed=7,drift-at=50000,drift-kind=taste,dim=16", func(c *Config) {
			c.Users, c.Items, c.Seed, c.DriftAt, c.DriftKind, c.Dim = 1000, 500, 7, 50000, DriftTaste, 16
		}, ""},
		{" users = 20 , items=30 ", func(c *Config) { c.Users, c.Items = 20, 30 }, ""},
		{"zipf-s=0.8,explore=0,ctr=0.12,inter-event=1ms", func(c *Config) {
			c.ZipfS, c.Explore, c.TargetCTR, c.MeanInterEvent = 0.8, 0, 0.12, time.Millisecond
		}, ""},
		{"start=2024-03-01T12:00:00Z,drift-at-time=2024-03-01T13:00:00Z,drift-kind=watch-ratio,drift-strength=0.5", func(c *Config) {
			c.Start = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
			c.DriftAtTime = time.Date(2024, 3, 1, 13, 0, 0, 0, time.UTC)
			c.DriftKind, c.DriftStrength = DriftWatchRatio, 0.5
		}, ""},
		{"start=1700000000000", func(c *Config) { c.Start = time.UnixMilli(1700000000000).UTC() }, ""},
		{"drift-kind=popularity,drift-at=1", func(c *Config) { c.DriftKind, c.DriftAt = DriftPopularity, 1 }, ""},
		{"users=10,users=20", nil, `key "users" given twice`},
		{"colour=blue", nil, `unknown key "colour"`},
		{"users", nil, `"users" is not key=value`},
		{"users=1000,", nil, `"" is not key=value`},
		{"users=many", nil, `users="many": not an integer`},
		{"seed=-1", nil, "not an unsigned integer"},
		{"ctr=high", nil, "not a number"},
		{"inter-event=20", nil, "not a duration"},
		{"start=yesterday", nil, "not an RFC 3339 time"},
		{"drift-kind=seasonal,drift-at=5", nil, "unknown drift kind"},
		{"drift-kind=taste", nil, "needs DriftAt or DriftAtTime"},
		{"drift-at=5", nil, "must be set when DriftAt"},
		{"users=0", nil, "Users = 0"},
		{"items=5", nil, "Items = 5"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := ParseSpec(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSpec(%q) error = %v, want one containing %q", tt.spec, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSpec(%q): %v", tt.spec, err)
			}
			want := DefaultConfig()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("ParseSpec(%q) =\n%+v\nwant\n%+v", tt.spec, got, want)
			}
		})
	}
}

func TestSpecRoundTrip(t *testing.T) {
	if s := DefaultConfig().Spec(); s != "" {
		t.Errorf("DefaultConfig().Spec() = %q, want empty", s)
	}
	c := DefaultConfig()
	c.Seed, c.Users, c.Items, c.Dim = 42, 123, 45, 8
	c.ZipfS, c.Explore, c.TargetCTR, c.LikeRate = 0.3, 0.05, 0.1234567, 0.01
	c.Start = time.Date(2030, 6, 1, 8, 30, 0, 123_000_000, time.UTC)
	c.MeanInterEvent = 1500 * time.Microsecond
	c.DriftAtTime, c.DriftKind, c.DriftStrength = c.Start.Add(time.Hour), DriftPopularity, 0.25
	spec := c.Spec()
	want := "seed=42,users=123,items=45,dim=8,zipf-s=0.3,explore=0.05,ctr=0.1234567,like-rate=0.01," +
		"start=2030-06-01T08:30:00.123Z,inter-event=1.5ms,drift-at-time=2030-06-01T09:30:00.123Z," +
		"drift-kind=popularity,drift-strength=0.25"
	if spec != want {
		t.Errorf("Spec() =\n%s\nwant\n%s", spec, want)
	}
	back, err := ParseSpec(spec)
	if err != nil {
		t.Fatalf("ParseSpec(Spec()): %v", err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip changed the config:\n%+v\n%+v", back, c)
	}
}

func TestSpecKeysCoverConfig(t *testing.T) {
	// Every Config field must be reachable from a spec: one key per field.
	if got, want := len(SpecKeys()), reflect.TypeFor[Config]().NumField(); got != want {
		t.Errorf("%d spec keys for %d Config fields", got, want)
	}
}

func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{
		"", "users=1000,items=500,seed=7,drift-at=50000,drift-kind=taste,dim=16",
		"start=2024-03-01T12:00:00+02:00,drift-at-time=1700000000000,drift-kind=watch-ratio",
		"ctr=NaN", "explore=1e400", "users=10,users=10", "=", ",", "inter-event=-5ms",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseSpec(s)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseSpec(%q) returned an invalid Config: %v", s, err)
		}
		back, err := ParseSpec(c.Spec())
		if err != nil {
			t.Fatalf("ParseSpec(%q) failed on its own Spec %q: %v", s, c.Spec(), err)
		}
		if back.Spec() != c.Spec() {
			t.Fatalf("Spec not stable: %q then %q", c.Spec(), back.Spec())
		}
	})
}
