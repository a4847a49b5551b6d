package jsonscan

import "testing"

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
