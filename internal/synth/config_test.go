package synth

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string // substring; "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"zero users", func(c *Config) { c.Users = 0 }, "Users = 0"},
		{"items below list size", func(c *Config) { c.Items = 9 }, "Items = 9"},
		{"items equal to list size", func(c *Config) { c.Items = 10 }, ""},
		{"dim too large", func(c *Config) { c.Dim = 513 }, "Dim = 513"},
		{"vectors too large", func(c *Config) { c.Users, c.Items, c.Dim = 40_000_000, 10_000_000, 16 }, "(Users+Items)*Dim"},
		{"NaN zipf", func(c *Config) { c.ZipfS = math.NaN() }, "ZipfS = NaN"},
		{"uniform popularity", func(c *Config) { c.ZipfS = 0 }, ""},
		{"explore above 1", func(c *Config) { c.Explore = 1.5 }, "Explore = 1.5"},
		{"session length below 1", func(c *Config) { c.SessionLength = 0.5 }, "SessionLength = 0.5"},
		{"no sessions", func(c *Config) { c.ConcurrentSessions = 0 }, "ConcurrentSessions = 0"},
		{"zero ctr", func(c *Config) { c.TargetCTR = 0 }, "TargetCTR = 0"},
		{"ctr 1", func(c *Config) { c.TargetCTR = 1 }, "TargetCTR = 1"},
		{"negative like rate", func(c *Config) { c.LikeRate = -0.1 }, "LikeRate = -0.1"},
		{"infinite length", func(c *Config) { c.ItemLengthMedian = math.Inf(1) }, "ItemLengthMedian = +Inf"},
		{"zero start", func(c *Config) { c.Start = time.Time{} }, "Start"},
		{"zero gap", func(c *Config) { c.MeanInterEvent = 0 }, "MeanInterEvent = 0s"},
		{"negative drift-at", func(c *Config) { c.DriftAt = -1 }, "DriftAt = -1"},
		{"drift-at without kind", func(c *Config) { c.DriftAt = 10 }, "DriftKind = none: must be set"},
		{"kind without trigger", func(c *Config) { c.DriftKind = DriftTaste }, "DriftKind = taste: needs DriftAt"},
		{"two triggers", func(c *Config) {
			c.DriftAt, c.DriftAtTime, c.DriftKind = 10, c.Start.Add(time.Hour), DriftTaste
		}, "one trigger only"},
		{"drift at count", func(c *Config) { c.DriftAt, c.DriftKind = 10, DriftPopularity }, ""},
		{"drift at time", func(c *Config) { c.DriftAtTime, c.DriftKind = c.Start.Add(time.Hour), DriftWatchRatio }, ""},
		{"unknown kind", func(c *Config) { c.DriftAt, c.DriftKind = 10, DriftKind(9) }, "unknown drift kind"},
		{"zero strength", func(c *Config) { c.DriftStrength = 0 }, "DriftStrength = 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("Validate() = nil, want error containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.wantErr)
			}
			if tt.wantErr != "" {
				if _, err := New(c); err == nil {
					t.Fatal("New accepted an invalid Config")
				}
			}
		})
	}
}

func TestValidateReportsEveryField(t *testing.T) {
	c := DefaultConfig()
	c.Users, c.Dim, c.WatchProb = 0, 0, 2
	err := c.Validate()
	for _, field := range []string{"Users", "Dim", "WatchProb"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate() = %v, want it to name %s", err, field)
		}
	}
}

func TestParseDriftKind(t *testing.T) {
	tests := []struct {
		in      string
		want    DriftKind
		wantErr bool
	}{
		{"", DriftNone, false},
		{"none", DriftNone, false},
		{"popularity", DriftPopularity, false},
		{"taste", DriftTaste, false},
		{"watch-ratio", DriftWatchRatio, false},
		{"Taste", DriftNone, true},
		{"watch_ratio", DriftNone, true},
		{"seasonal", DriftNone, true},
	}
	for _, tt := range tests {
		got, err := ParseDriftKind(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseDriftKind(%q) = %v, %v; want %v, error %t", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "popularity, taste, watch-ratio") {
			t.Errorf("ParseDriftKind(%q) error %q does not list the valid kinds", tt.in, err)
		}
	}
}

func TestDriftKindText(t *testing.T) {
	for _, k := range []DriftKind{DriftNone, DriftPopularity, DriftTaste, DriftWatchRatio} {
		b, err := k.MarshalText()
		if err != nil {
			t.Fatalf("MarshalText(%v): %v", k, err)
		}
		var back DriftKind
		if err := back.UnmarshalText(b); err != nil || back != k {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", b, back, err, k)
		}
	}
	if _, err := DriftKind(7).MarshalText(); err == nil {
		t.Error("MarshalText(7) succeeded")
	}
	if got := DriftKind(7).String(); got != "DriftKind(7)" {
		t.Errorf("String() = %q", got)
	}
}
