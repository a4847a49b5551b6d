package movielens

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eddyrec/eddy/connectors/movielens/movielenstest"
	"github.com/eddyrec/eddy/event"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name   string
		format Format
		in     string
		want   []Rating
	}{
		{
			name:   "udata",
			format: FormatUData,
			in:     "196\t242\t3\t881250949\n186\t302\t3\t891717742\n",
			want: []Rating{
				{UserID: "196", ItemID: "242", Value: 3, Unix: 881250949},
				{UserID: "186", ItemID: "302", Value: 3, Unix: 891717742},
			},
		},
		{
			name:   "csv with header and CRLF",
			format: FormatCSV,
			in:     "userId,movieId,rating,timestamp\r\n1,1,4.0,964982703\r\n1,3,0.5,964981247\r\n",
			want: []Rating{
				{UserID: "1", ItemID: "1", Value: 4, Unix: 964982703},
				{UserID: "1", ItemID: "3", Value: 0.5, Unix: 964981247},
			},
		},
		{
			name:   "dat",
			format: FormatDat,
			in:     "1::1193::5::978300760\n\n1::661::3::978302109\n",
			want: []Rating{
				{UserID: "1", ItemID: "1193", Value: 5, Unix: 978300760},
				{UserID: "1", ItemID: "661", Value: 3, Unix: 978302109},
			},
		},
		{name: "empty", format: FormatCSV, in: "", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.in), tt.format)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d rows, want %d: %+v", len(got), len(tt.want), got)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("row %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name   string
		format Format
		in     string
		want   string
	}{
		{"three fields", FormatUData, "1\t2\t3\n", "line 1: want 4 fields, got 3"},
		{"five fields", FormatUData, "1\t2\t3\t4\t5\n", "got more"},
		{"bad rating", FormatCSV, "userId,movieId,rating,timestamp\n1,2,x,5\n", "line 2: rating \"x\""},
		{"rating too high", FormatCSV, "1,2,5.5,5\n", "rating \"5.5\""},
		{"negative ts", FormatDat, "1::2::3::-4\n", "timestamp \"-4\""},
		{"non numeric user", FormatUData, "ab\t2\t3\t4\n", "user id \"ab\""},
		{"empty item", FormatUData, "1\t\t3\t4\n", "item id \"\""},
		{"csv header only valid on line 1", FormatCSV, "1,2,3,4\nuserId,movieId,rating,timestamp\n", "line 2"},
		{"unknown format", Format(99), "", "unknown format"},
		{"long line", FormatUData, strings.Repeat("1", maxLineBytes+10), "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.in), tt.format)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestReadDirSortsStably(t *testing.T) {
	dir := t.TempDir()
	data := "1\t10\t5\t300\n2\t20\t1\t100\n3\t30\t4\t300\n4\t40\t2\t200\n"
	if err := os.WriteFile(filepath.Join(dir, "u.data"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	rs, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, r := range rs {
		users = append(users, r.UserID)
	}
	if got, want := strings.Join(users, ","), "2,4,1,3"; got != want {
		t.Fatalf("order = %s, want %s", got, want)
	}
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := Find(dir); !errors.Is(err, ErrNoRatings) {
		t.Fatalf("empty dir: err = %v, want ErrNoRatings", err)
	}
	for _, name := range []string{"ratings.dat", "ratings.csv", "u.data"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		_, f, err := Find(dir)
		if err != nil {
			t.Fatal(err)
		}
		if f.String() != name {
			t.Errorf("after adding %s: found %s", name, f)
		}
	}
}

func TestEvent(t *testing.T) {
	e := Rating{UserID: "7", ItemID: "42", Value: 4.5, Unix: 964982703}.Event()
	want := event.Event{
		EventID: "ml:7:42", UserID: "7", ItemID: "42", Type: event.Rating,
		Time: time.Unix(964982703, 0).UTC(), Value: 4.5, HasValue: true,
	}
	if e.EventID != want.EventID || e.UserID != want.UserID || e.ItemID != want.ItemID ||
		e.Type != want.Type || !e.Time.Equal(want.Time) || e.Value != want.Value || !e.HasValue {
		t.Fatalf("Event() = %+v, want %+v", e, want)
	}
	if e.Time.Location() != time.UTC {
		t.Errorf("time not in UTC: %v", e.Time.Location())
	}
}

func FuzzParse(f *testing.F) {
	f.Add("196\t242\t3\t881250949\n", uint8(FormatUData))
	f.Add("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n", uint8(FormatCSV))
	f.Add("1::1193::5::978300760\n", uint8(FormatDat))
	f.Fuzz(func(t *testing.T, in string, format uint8) {
		rs, err := Parse(strings.NewReader(in), Format(format%4))
		if err != nil {
			return
		}
		for _, r := range rs {
			if r.Value < 0.5 || r.Value > 5 || r.Unix < 0 || r.UserID == "" || r.ItemID == "" {
				t.Fatalf("accepted invalid row %+v", r)
			}
		}
	})
}

// The shared copies: counts from the GroupLens READMEs.
func TestSharedDatasets(t *testing.T) {
	tests := []struct {
		name         string
		rows         int
		users, items int
		first, last  int64
	}{
		{"ml-100k", 100000, 943, 1682, 874724710, 893286638},
		{"ml-latest-small", 100836, 610, 9724, 828124615, 1537799250},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := ReadDir(movielenstest.Dir(t, tt.name))
			if err != nil {
				t.Fatal(err)
			}
			users, items := map[string]bool{}, map[string]bool{}
			for i, r := range rs {
				users[r.UserID], items[r.ItemID] = true, true
				if i > 0 && rs[i-1].Unix > r.Unix {
					t.Fatalf("row %d out of time order", i)
				}
			}
			if len(rs) != tt.rows || len(users) != tt.users || len(items) != tt.items {
				t.Errorf("rows/users/items = %d/%d/%d, want %d/%d/%d",
					len(rs), len(users), len(items), tt.rows, tt.users, tt.items)
			}
			if rs[0].Unix != tt.first || rs[len(rs)-1].Unix != tt.last {
				t.Errorf("time range %d..%d, want %d..%d", rs[0].Unix, rs[len(rs)-1].Unix, tt.first, tt.last)
			}
		})
	}
}
