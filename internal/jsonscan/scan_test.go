package jsonscan

import (
	"strings"
	"testing"
)

func TestStringEscapes(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`"\b\f\n\r\t\/\\\""`, "\b\f\n\r\t/\\\""},
		{`"\u00E9\u00e9"`, "éé"},
		{`"a\uD83D\uDE00b"`, "a😀b"},
		{`"\u20AC"`, "€"},
	} {
		s := Scanner{Buf: []byte(tc.in)}
		got, err := s.ReadString()
		if err != nil || string(got) != tc.want || s.Pos != len(tc.in) {
			t.Errorf("ReadString(%s) = %q, %v (at %d)", tc.in, got, err, s.Pos)
		}
	}
	for _, bad := range []string{`"\u00G0"`, `"\`, `"\u12`, `"abc`, `"\q"`, "\"\x1f\"", `"\u0041`} {
		s := Scanner{Buf: []byte(bad)}
		if _, err := s.ReadString(); err == nil {
			t.Errorf("ReadString(%q) accepted", bad)
		}
	}
}

func TestNext(t *testing.T) {
	for _, tc := range []struct {
		in      string
		end     byte
		more    bool
		pos     int
		wantErr string
	}{
		{" , 1", '}', true, 2, ""},
		{"  }", '}', false, 3, ""},
		{"]", ']', false, 1, ""},
		{"}", ']', false, 0, "unexpected '}', expected ',' or ']'"},
		{"  ", '}', false, 2, "unexpected end of input, expected ',' or '}'"},
	} {
		s := Scanner{Buf: []byte(tc.in)}
		more, err := s.Next(tc.end)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if more != tc.more || !strings.Contains(got, tc.wantErr) || (tc.wantErr == "") != (err == nil) || err == nil && s.Pos != tc.pos {
			t.Errorf("Next(%q, %q) = %v, %v at %d; want %v, %q at %d", tc.in, tc.end, more, err, s.Pos, tc.more, tc.wantErr, tc.pos)
		}
	}
}
