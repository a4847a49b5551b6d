package drift

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eddyrec/eddy/event"
)

// scriptBase is time zero of the scripts: t=90s means base+90s.
var scriptBase = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func scriptTime(t *testing.T, c *scriptCase) time.Time {
	d, err := time.ParseDuration(c.arg("t", "0s"))
	if err != nil {
		t.Fatalf("%s: t: %v", c.pos, err)
	}
	return scriptBase.Add(d)
}

func offset(x time.Time) string { return x.Sub(scriptBase).String() }

// describeWindow prints a window's counts and every non-empty summary.
func describeWindow(w *Window) string {
	var b strings.Builder
	fmt.Fprintf(&b, "w=%d [%s,%s) events=%d lists=%d parts=%d", w.Index, offset(w.Start), offset(w.End), w.Events, w.Lists, w.Partitions)
	if w.UsersDropped > 0 {
		fmt.Fprintf(&b, " users_dropped=%d", w.UsersDropped)
	}
	for i, sg := range w.schema.signals {
		if w.N(i) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n  %s:", sg.Name)
		if sk := w.sketches[i]; sk != nil {
			fmt.Fprintf(&b, " n=%d min=%g max=%g mean=%.4g", sk.Count(), sk.Min(), sk.Max(), sk.Mean())
			continue
		}
		cats := w.tables[i].Categories()
		slices.SortFunc(cats, func(a, b Category) int { return strings.Compare(a.Key, b.Key) })
		for _, c := range cats {
			fmt.Fprintf(&b, " %s=%d", c.Key, c.Count)
		}
		if o := w.tables[i].Other(); o > 0 {
			fmt.Fprintf(&b, " (other)=%d", o)
		}
	}
	return b.String()
}

type windowHarness struct {
	schema *Schema
	parts  []*Partition
	merger *Merger
}

func (h *windowHarness) drain(t *testing.T, b *strings.Builder) {
	for p, part := range h.parts {
		closed := part.TakeClosed(nil)
		for _, w := range closed {
			fmt.Fprintf(b, "closed p=%d %s\n", p, describeWindow(w))
		}
		merged, err := h.merger.Add(int32(p), closed, part.ClosedThrough())
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range merged {
			fmt.Fprintf(b, "merged %s\n", describeWindow(w))
		}
	}
}

func TestWindowScripts(t *testing.T) {
	for _, name := range []string{"windows", "join", "merge"} {
		t.Run(name, func(t *testing.T) {
			var h *windowHarness
			runScript(t, "testdata/"+name+".txt", func(t *testing.T, c *scriptCase) string {
				var b strings.Builder
				part := func() *Partition {
					p, _ := strconv.Atoi(c.arg("p", "0"))
					return h.parts[p]
				}
				switch c.cmd {
				case "config":
					cfg, err := ParseConfig([]byte(c.input))
					if err != nil {
						return "error: " + err.Error()
					}
					s, err := NewSchema(cfg)
					if err != nil {
						return "error: " + err.Error()
					}
					n, _ := strconv.Atoi(c.arg("partitions", "1"))
					h = &windowHarness{schema: s}
					var ids []int32
					for p := range n {
						h.parts = append(h.parts, NewPartition(s))
						ids = append(ids, int32(p))
					}
					h.merger = NewMerger(s, ids)
					return fmt.Sprintf("%d signals, %d partitions", len(s.signals), n)
				case "event":
					e := event.Event{
						EventID: "e", UserID: c.arg("user", "u1"), ItemID: c.arg("item", "i1"),
						Time: scriptTime(t, c), RequestID: c.arg("req", ""),
					}
					typ, ok := event.ParseType(c.arg("type", "click"))
					if !ok {
						t.Fatalf("%s: bad type", c.pos)
					}
					e.Type = typ
					if v, ok := c.args["value"]; ok {
						e.Value, _ = strconv.ParseFloat(v, 64)
						e.HasValue = true
					}
					if v, ok := c.args["duration"]; ok {
						e.Duration, _ = strconv.ParseFloat(v, 64)
						e.HasDuration = true
					}
					if v, ok := c.args["device"]; ok {
						e.Context = map[string]string{"device": v}
					}
					part().ObserveEvent(&e)
				case "list":
					l := ServedList{
						RequestID: c.arg("req", "r1"), UserID: c.arg("user", "u1"), ModelVersion: "m1",
						Time: scriptTime(t, c), Fallback: c.arg("fallback", "false") == "true",
					}
					for k, it := range strings.Split(c.arg("items", ""), ",") {
						id, sc, _ := strings.Cut(it, ":")
						score, _ := strconv.ParseFloat(sc, 64)
						l.Items = append(l.Items, ServedItem{ItemID: id, Position: k, Score: score,
							Features: Features{{Name: "pop", Value: float64(k)}}})
					}
					if err := l.Validate(); err != nil {
						return "error: " + err.Error()
					}
					part().ObserveServedList(&l)
				case "advance":
					part().Advance(scriptTime(t, c))
				case "flush":
					for _, p := range h.parts {
						p.Flush()
					}
				case "state":
					for p, part := range h.parts {
						ct := "none"
						if part.ClosedThrough() != math.MinInt64 {
							ct = strconv.FormatInt(part.ClosedThrough(), 10)
						}
						fmt.Fprintf(&b, "p=%d watermark=%s closed_through=%s open=%d late=%d held=%d evicted=%d\n",
							p, offset(part.Watermark()), ct, len(part.open), part.Late, part.HeldLists(), part.JoinEvicted)
					}
					fmt.Fprintf(&b, "merger pending=%d late=%d\n", h.merger.Pending(), h.merger.Late)
					return b.String()
				case "restart":
					// Everything a SIGKILLed role would reload from its store.
					for p, part := range h.parts {
						data, err := part.MarshalBinary()
						if err != nil {
							t.Fatal(err)
						}
						np, err := RestorePartition(h.schema, data)
						if err != nil {
							t.Fatalf("%s: restore partition %d: %v", c.pos, p, err)
						}
						again, _ := np.MarshalBinary()
						if string(again) != string(data) {
							t.Fatalf("%s: partition %d state does not round-trip", c.pos, p)
						}
						h.parts[p] = np
					}
					data, err := h.merger.MarshalBinary()
					if err != nil {
						t.Fatal(err)
					}
					if h.merger, err = RestoreMerger(h.schema, data); err != nil {
						t.Fatalf("%s: restore merger: %v", c.pos, err)
					}
					return "restarted"
				default:
					t.Fatalf("%s: unknown command %q", c.pos, c.cmd)
				}
				h.drain(t, &b)
				return b.String()
			})
		})
	}
}
