package features

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eddyrec/eddy/event"
)

// The data-driven scripts in testdata/*.txt drive the feature state machines
// the way the runtime will: every event passes the Deduper, then the user
// state, then — through an encoded and decoded ItemUpdate — the item state.
// One command per line; '#' starts a comment. Numbers in expectations are
// arithmetic expressions (+ - * / ^ and parentheses), so a script states the
// formula it expects (2^(-1) + 1) instead of a value computed elsewhere.
//
//	event USER ITEM TYPE TS [id=ID] [value=V] [duration=D]
//	    apply one event (TS RFC 3339, or +DUR after the previous event's
//	    time, e.g. +10m); without id= it gets a fresh unique id
//	users ITEM TYPE TS N [repeat=R]
//	    apply events from N distinct users u0..u(N-1), each R times
//	items USER TYPE TS N
//	    apply events of USER on N distinct items i0..i(N-1), one second apart
//	replay-items N      re-deliver the last N item updates (same offsets)
//	roundtrip           encode and decode every state and the Deduper
//	expect user U FIELD VALUE [at TS] [tol=T]
//	expect item I FIELD VALUE [at TS] [tol=T]
//	    FIELD: a JSON path in the View (counts.click.decayed_1h, sessions,
//	    ctr, distinct_users, ...); tol= is a relative tolerance (default
//	    1e-9); the view is evaluated at TS (default: the last event time)
//	expect user U recent ITEM...   recent items, most recent first
//	expect user U seen ITEM [yes|no]
//	expect user U seen-count N     (and recent-count N)
//	expect dedup FIELD N           checked, duplicates, expired, evicted, remembered
//	expect-json user|item ID [at TS]
//	    followed by the expected View JSON, one or more lines, ended by a
//	    blank line (compared as JSON values)
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScript(t, f) })
	}
}

type harness struct {
	t       *testing.T
	dedup   *Deduper
	users   map[string]*UserState
	items   map[string]*ItemState
	updates [][]byte          // every encoded ItemUpdate, in order
	store   map[uint64][]byte // the Deduper's flushed segments
	offset  int64
	last    time.Time
	nextID  int
}

func runScript(t *testing.T, path string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dd, err := NewDeduper(DedupConfig{TTL: time.Hour, MaxIDs: 64, SegmentSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, dedup: dd, users: map[string]*UserState{}, items: map[string]*ItemState{}, store: map[uint64][]byte{}}
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = strings.TrimSpace(text[:i])
		}
		if text == "" {
			continue
		}
		pos := fmt.Sprintf("%s:%d", path, line)
		args := strings.Fields(text)
		if args[0] == "expect-json" {
			var block []string
			for sc.Scan() {
				line++
				if strings.TrimSpace(sc.Text()) == "" {
					break
				}
				block = append(block, sc.Text())
			}
			if err := h.expectJSON(args[1:], strings.Join(block, "\n")); err != nil {
				t.Errorf("%s: %s: %v", pos, text, err)
			}
			continue
		}
		if err := h.run(args); err != nil {
			t.Errorf("%s: %s: %v", pos, text, err)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) parseTime(s string) (time.Time, error) {
	if strings.HasPrefix(s, "+") || strings.HasPrefix(s, "-") {
		d, err := time.ParseDuration(s)
		if err != nil {
			return time.Time{}, err
		}
		return h.last.Add(d), nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

func (h *harness) apply(e *event.Event) error {
	h.last = e.Time
	if h.dedup.Duplicate(e.EventID, e.Time) {
		return nil
	}
	u := h.users[e.UserID]
	if u == nil {
		u = new(UserState)
		h.users[e.UserID] = u
	}
	if err := u.Apply(e); err != nil {
		return err
	}
	up := NewItemUpdate(e, 0, h.offset)
	h.offset++
	b, err := up.MarshalBinary()
	if err != nil {
		return err
	}
	h.updates = append(h.updates, b)
	return h.applyItem(b)
}

func (h *harness) applyItem(b []byte) error {
	var up ItemUpdate
	if err := up.UnmarshalBinary(b); err != nil {
		return err
	}
	it := h.items[up.ItemID]
	if it == nil {
		it = new(ItemState)
		h.items[up.ItemID] = it
	}
	_, err := it.ApplyUpdate(&up)
	return err
}

func (h *harness) freshID() string {
	h.nextID++
	return fmt.Sprintf("auto-%d", h.nextID)
}

func (h *harness) run(args []string) error {
	switch args[0] {
	case "event":
		if len(args) < 5 {
			return fmt.Errorf("want: event USER ITEM TYPE TS [k=v...]")
		}
		typ, ok := event.ParseType(args[3])
		if !ok {
			return fmt.Errorf("unknown type %q", args[3])
		}
		ts, err := h.parseTime(args[4])
		if err != nil {
			return err
		}
		e := event.Event{EventID: h.freshID(), UserID: args[1], ItemID: args[2], Type: typ, Time: ts.UTC()}
		for _, kv := range args[5:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "id":
				e.EventID = v
			case "value":
				e.Value, e.HasValue = mustFloat(v), true
			case "duration":
				e.Duration, e.HasDuration = mustFloat(v), true
			default:
				return fmt.Errorf("unknown option %q", k)
			}
		}
		return h.apply(&e)
	case "users":
		if len(args) < 5 {
			return fmt.Errorf("want: users ITEM TYPE TS N [repeat=R]")
		}
		typ, ok := event.ParseType(args[2])
		if !ok {
			return fmt.Errorf("unknown type %q", args[2])
		}
		ts, err := h.parseTime(args[3])
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(args[4])
		if err != nil {
			return err
		}
		repeat := 1
		if len(args) > 5 {
			if repeat, err = strconv.Atoi(strings.TrimPrefix(args[5], "repeat=")); err != nil {
				return err
			}
		}
		for r := range repeat {
			for i := range n {
				e := event.Event{EventID: h.freshID(), UserID: fmt.Sprintf("u%d", i), ItemID: args[1], Type: typ,
					Time: ts.Add(time.Duration(r*n+i) * time.Millisecond).UTC()}
				if err := h.apply(&e); err != nil {
					return err
				}
			}
		}
		return nil
	case "items":
		if len(args) < 5 {
			return fmt.Errorf("want: items USER TYPE TS N")
		}
		typ, ok := event.ParseType(args[2])
		if !ok {
			return fmt.Errorf("unknown type %q", args[2])
		}
		ts, err := h.parseTime(args[3])
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(args[4])
		if err != nil {
			return err
		}
		for i := range n {
			e := event.Event{EventID: h.freshID(), UserID: args[1], ItemID: fmt.Sprintf("i%d", i), Type: typ,
				Time: ts.Add(time.Duration(i) * time.Second).UTC()}
			if err := h.apply(&e); err != nil {
				return err
			}
		}
		return nil
	case "replay-items":
		n, err := strconv.Atoi(args[1])
		if err != nil || n > len(h.updates) {
			return fmt.Errorf("bad count %q", args[1])
		}
		for _, b := range h.updates[len(h.updates)-n:] {
			if err := h.applyItem(b); err != nil {
				return err
			}
		}
		return nil
	case "roundtrip":
		return h.roundtrip()
	case "expect":
		return h.expect(args[1:])
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func (h *harness) roundtrip() error {
	for id, u := range h.users {
		b, _ := u.MarshalBinary()
		var x UserState
		if err := x.UnmarshalBinary(b); err != nil {
			return fmt.Errorf("user %s: %w", id, err)
		}
		h.users[id] = &x
	}
	for id, it := range h.items {
		b, _ := it.MarshalBinary()
		var x ItemState
		if err := x.UnmarshalBinary(b); err != nil {
			return fmt.Errorf("item %s: %w", id, err)
		}
		h.items[id] = &x
	}
	// The store plays Badger: Flush writes changed segments and deletes
	// dropped ones; the restored Deduper sees only what was stored.
	if err := h.dedup.Flush(func(seq uint64, data []byte) error {
		if data == nil {
			delete(h.store, seq)
		} else {
			h.store[seq] = append([]byte(nil), data...)
		}
		return nil
	}); err != nil {
		return err
	}
	var segs [][]byte
	for _, b := range h.store {
		segs = append(segs, b)
	}
	old := h.dedup.Stats()
	d, err := RestoreDeduper(h.dedup.cfg, segs)
	if err != nil {
		return err
	}
	if d.Stats().Remembered != old.Remembered {
		return fmt.Errorf("dedup restored %d ids, had %d", d.Stats().Remembered, old.Remembered)
	}
	d.stats = old
	h.dedup = d
	return nil
}

// viewOf returns the JSON-decoded View of a user or item at the time given
// by an optional "at TS" in args, and the remaining args.
func (h *harness) viewOf(kind, id string, args []string) (map[string]any, []string, error) {
	at := h.last
	rest := args[:0:0]
	for i := 0; i < len(args); i++ {
		if args[i] == "at" && i+1 < len(args) {
			t, err := h.parseTime(args[i+1])
			if err != nil {
				return nil, nil, err
			}
			at = t
			i++
			continue
		}
		rest = append(rest, args[i])
	}
	var v any
	switch kind {
	case "user":
		u := h.users[id]
		if u == nil {
			return nil, nil, fmt.Errorf("unknown user %q", id)
		}
		v = u.View(id, at)
	case "item":
		it := h.items[id]
		if it == nil {
			return nil, nil, fmt.Errorf("unknown item %q", id)
		}
		v = it.View(id, at)
	default:
		return nil, nil, fmt.Errorf("unknown kind %q", kind)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, nil, err
	}
	var m map[string]any
	return m, rest, json.Unmarshal(b, &m)
}

func (h *harness) expect(args []string) error {
	if len(args) < 3 {
		return fmt.Errorf("want: expect KIND ID/FIELD ...")
	}
	if args[0] == "dedup" {
		s := h.dedup.Stats()
		got := map[string]float64{"checked": float64(s.Checked), "duplicates": float64(s.Duplicates),
			"expired": float64(s.Expired), "evicted": float64(s.Evicted), "remembered": float64(s.Remembered)}[args[1]]
		return compare(got, args[2:])
	}
	kind, id := args[0], args[1]
	switch args[2] {
	case "recent":
		u := h.users[id]
		if u == nil {
			return fmt.Errorf("unknown user %q", id)
		}
		var got []string
		for _, r := range u.recent {
			got = append(got, r.id)
		}
		if strings.Join(got, " ") != strings.Join(args[3:], " ") {
			return fmt.Errorf("recent = %v, want %v", got, args[3:])
		}
		return nil
	case "seen":
		u := h.users[id]
		if u == nil {
			return fmt.Errorf("unknown user %q", id)
		}
		want := len(args) < 5 || args[4] == "yes"
		if got := u.HasSeen(args[3]); got != want {
			return fmt.Errorf("seen %s = %v, want %v", args[3], got, want)
		}
		snap := u.Snapshot(id)
		if want && !snap.Seen.Contains(args[3]) {
			return fmt.Errorf("digest misses seen item %s", args[3])
		}
		return nil
	case "recent-count":
		u := h.users[id]
		if u == nil {
			return fmt.Errorf("unknown user %q", id)
		}
		return compare(float64(len(u.recent)), args[3:])
	case "seen-count":
		u := h.users[id]
		if u == nil {
			return fmt.Errorf("unknown user %q", id)
		}
		return compare(float64(u.seen.len()), args[3:])
	}
	m, rest, err := h.viewOf(kind, id, args[3:])
	if err != nil {
		return err
	}
	var cur any = m
	for _, k := range strings.Split(args[2], ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return fmt.Errorf("field %s: %v is not an object", args[2], cur)
		}
		if cur, ok = obj[k]; !ok {
			return fmt.Errorf("field %s: no key %q in %v", args[2], k, obj)
		}
	}
	switch v := cur.(type) {
	case float64:
		return compare(v, rest)
	case string:
		if len(rest) != 1 || v != rest[0] {
			return fmt.Errorf("%s = %q, want %q", args[2], v, rest)
		}
		return nil
	case nil:
		if len(rest) != 1 || rest[0] != "null" {
			return fmt.Errorf("%s = null, want %v", args[2], rest)
		}
		return nil
	}
	return fmt.Errorf("field %s: unsupported value %v", args[2], cur)
}

// compare checks got against args: an expression and an optional tol=.
func compare(got float64, args []string) error {
	tol := 1e-9
	var expr []string
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "tol="); ok {
			tol = mustFloat(v)
			continue
		}
		expr = append(expr, a)
	}
	want, err := evalExpr(strings.Join(expr, ""))
	if err != nil {
		return err
	}
	if diff := math.Abs(got - want); diff > tol*math.Max(1, math.Abs(want)) {
		return fmt.Errorf("got %.12g, want %.12g (|diff| %.3g > tol %g)", got, want, diff, tol)
	}
	return nil
}

func (h *harness) expectJSON(args []string, want string) error {
	if len(args) < 2 {
		return fmt.Errorf("want: expect-json KIND ID [at TS]")
	}
	got, _, err := h.viewOf(args[0], args[1], args[2:])
	if err != nil {
		return err
	}
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		return fmt.Errorf("expected JSON: %w", err)
	}
	if !jsonNear(got, w) {
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(w)
		return fmt.Errorf("view\n got %s\nwant %s", gb, wb)
	}
	return nil
}

// jsonNear compares decoded JSON values, numbers to a relative 1e-12 (the
// last bits of math.Exp2 may differ between platforms).
func jsonNear(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if w, ok := y[k]; !ok || !jsonNear(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonNear(x[i], y[i]) {
				return false
			}
		}
		return true
	case float64:
		y, ok := b.(float64)
		return ok && math.Abs(x-y) <= 1e-12*math.Max(1, math.Abs(y))
	}
	return a == b
}

func mustFloat(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return math.NaN()
	}
	return f
}

// evalExpr evaluates + - * / ^ (right-associative, binds tighter than unary
// minus on its left operand only as in maths: -2^2 = -4) and parentheses.
func evalExpr(s string) (float64, error) {
	p := exprParser{s: s}
	v := p.sum()
	if p.err == nil && p.i != len(p.s) {
		p.err = fmt.Errorf("expression %q: unexpected %q", s, p.s[p.i:])
	}
	return v, p.err
}

type exprParser struct {
	s   string
	i   int
	err error
}

func (p *exprParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *exprParser) sum() float64 {
	v := p.product()
	for p.err == nil {
		switch p.peek() {
		case '+':
			p.i++
			v += p.product()
		case '-':
			p.i++
			v -= p.product()
		default:
			return v
		}
	}
	return v
}

func (p *exprParser) product() float64 {
	v := p.unary()
	for p.err == nil {
		switch p.peek() {
		case '*':
			p.i++
			v *= p.unary()
		case '/':
			p.i++
			v /= p.unary()
		default:
			return v
		}
	}
	return v
}

func (p *exprParser) unary() float64 {
	if p.peek() == '-' {
		p.i++
		return -p.unary()
	}
	return p.power()
}

func (p *exprParser) power() float64 {
	b := p.atom()
	if p.peek() == '^' {
		p.i++
		return math.Pow(b, p.unary())
	}
	return b
}

func (p *exprParser) atom() float64 {
	if p.peek() == '(' {
		p.i++
		v := p.sum()
		if p.peek() != ')' {
			p.err = fmt.Errorf("expression %q: missing )", p.s)
			return 0
		}
		p.i++
		return v
	}
	j := p.i
	for j < len(p.s) && (p.s[j] >= '0' && p.s[j] <= '9' || p.s[j] == '.' || p.s[j] == 'e' && j > p.i) {
		j++
	}
	f, err := strconv.ParseFloat(p.s[p.i:j], 64)
	if err != nil {
		p.err = fmt.Errorf("expression %q at %d: %w", p.s, p.i, err)
		return 0
	}
	p.i = j
	return f
}
