package prequential

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// jsonModel is one model's entry in the JSON report.
type jsonModel struct {
	HR           float64 `json:"hr_at_k"`
	NDCG         float64 `json:"ndcg_at_k"`
	Coverage     float64 `json:"coverage"`
	EventsPerSec float64 `json:"events_per_sec"`
	Seconds      float64 `json:"seconds"`
	// Tests against other models, keyed "<metric>_vs_<model>".
	Tests map[string]PairedTest `json:"tests,omitempty"`
	// Recovery around Config.Shift, when set.
	Recovery *Recovery `json:"recovery,omitempty"`
}

type jsonRun struct {
	K         int     `json:"k"`
	Events    int     `json:"events"`
	Positives int     `json:"scored_positives"`
	Users     int     `json:"users"`
	Items     int     `json:"items"`
	Window    int     `json:"window"`
	Windows   int     `json:"windows"`
	FrozenAt  int     `json:"frozen_at_event,omitempty"`
	Shift     int     `json:"shift_at_event,omitempty"`
	Seconds   float64 `json:"seconds"`
}

// WriteJSON writes one JSON object with a key per model ("online_mf",
// "popularity", …) holding hr_at_k, ndcg_at_k, coverage, events_per_sec
// and its paired tests, plus a "run" key describing the replay.
func WriteJSON(w io.Writer, r *Result) error {
	out := map[string]any{"run": jsonRun{
		K: r.K, Events: r.Events, Positives: r.Positives, Users: r.Users, Items: r.Items,
		Window: r.Window, Windows: len(r.WindowEnd), FrozenAt: r.FrozenAt, Shift: r.Shift,
		Seconds: r.Seconds,
	}}
	for _, m := range r.Models {
		jm := jsonModel{HR: m.HR, NDCG: m.NDCG, Coverage: m.Coverage, EventsPerSec: m.EventsPerSec, Seconds: m.Seconds}
		for _, t := range r.Tests {
			if t.A == m.Name {
				if jm.Tests == nil {
					jm.Tests = map[string]PairedTest{}
				}
				jm.Tests[t.Metric+"_vs_"+t.B] = t
			}
		}
		jm.Recovery = r.RecoveryOf(m.Name)
		out[m.Name] = jm
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("prequential: write json: %w", err)
	}
	return nil
}

// WriteText writes a human-readable summary table and the tests.
func WriteText(w io.Writer, r *Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "prequential: %d events, %d scored positives, %d users, %d items, K=%d, %d windows of %d\n\n",
		r.Events, r.Positives, r.Users, r.Items, r.K, len(r.WindowEnd), r.Window)
	fmt.Fprintf(tw, "model\tHR@%d\tNDCG@%d\tcoverage\tevents/s\n", r.K, r.K)
	for _, m := range r.Models {
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.3f\t%.0f\n", m.Name, m.HR, m.NDCG, m.Coverage, m.EventsPerSec)
	}
	fmt.Fprintf(tw, "\npaired tests over windows (two-sided)\n")
	fmt.Fprintf(tw, "A − B\tmetric\tmean diff\tWilcoxon p\tpaired t p\n")
	for _, t := range r.Tests {
		fmt.Fprintf(tw, "%s − %s\t%s\t%+.4f\t%.3g\t%.3g\n", t.A, t.B, t.Metric, t.MeanDiff, t.WilcoxonP, t.TP)
	}
	if len(r.Recovery) > 0 {
		fmt.Fprintf(tw, "\nHR@%d around the shift at event %d (before: windows after event %d; tail: last windows)\n", r.K, r.Shift, r.FrozenAt)
		fmt.Fprintf(tw, "model\tbefore\tdip\ttail\ttail/before\twindows to %.0f%%\n", 100*RecoverAt)
		for _, rc := range r.Recovery {
			rw := "never"
			if rc.RecoverWindows >= 0 {
				rw = strconv.Itoa(rc.RecoverWindows)
			}
			fmt.Fprintf(tw, "%s\t%.4f (%d)\t%.4f\t%.4f (%d)\t%.2f\t%s\n", rc.Model, rc.Before, rc.BeforeWindows, rc.Dip, rc.Tail, rc.TailWindows, rc.Ratio, rw)
		}
	}
	fmt.Fprintf(tw, "\nwall time %.1fs\n", r.Seconds)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("prequential: write summary: %w", err)
	}
	return nil
}

// WriteCSV writes the per-window curves: one row per window with its index,
// the number of scored positives up to its end, its end time, the index of
// its last event, and each model's HR@K and NDCG@K in that window.
func WriteCSV(w io.Writer, r *Result) error {
	cw := csv.NewWriter(w)
	head := []string{"window", "positives", "end_time", "end_event"}
	for _, m := range r.Models {
		head = append(head, m.Name+"_hr_at_k", m.Name+"_ndcg_at_k")
	}
	if err := cw.Write(head); err != nil {
		return fmt.Errorf("prequential: write csv: %w", err)
	}
	for wi := range r.WindowEnd {
		row := []string{
			strconv.Itoa(wi),
			strconv.Itoa(min((wi+1)*r.Window, r.Positives)),
			r.WindowEnd[wi].UTC().Format(time.RFC3339),
			strconv.Itoa(r.WindowEndEvent[wi]),
		}
		for _, m := range r.Models {
			row = append(row, strconv.FormatFloat(m.WindowHR[wi], 'f', 6, 64),
				strconv.FormatFloat(m.WindowNDCG[wi], 'f', 6, 64))
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("prequential: write csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("prequential: write csv: %w", err)
	}
	return nil
}

var modelColors = map[string]color.RGBA{
	OnlineMF:       {R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	OnlineMFRanker: {R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	Popularity:     {R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	FrozenMF:       {R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff},
}

// WritePlot draws each model's HR@K per window as a PNG (title names the
// dataset) and writes it to w.
func WritePlot(w io.Writer, r *Result, title string) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = fmt.Sprintf("scored positive events (windows of %d)", r.Window)
	p.Y.Label.Text = fmt.Sprintf("HR@%d", r.K)
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	// Headroom above the highest window so the legend does not cover the
	// curves.
	var top float64
	for _, m := range r.Models {
		for _, v := range m.WindowHR {
			top = max(top, v)
		}
	}
	p.Y.Max = max(top*1.35, 0.01)
	// A last window of under half the usual size is mostly noise (a
	// handful of positives); the plot leaves it out, the CSV keeps it.
	nw := len(r.WindowEnd)
	if last := r.Positives - (nw-1)*r.Window; nw > 1 && 2*last < r.Window {
		nw--
	}
	for _, m := range r.Models {
		pts := make(plotter.XYs, nw)
		for wi, v := range m.WindowHR[:nw] {
			pts[wi].X = float64(min((wi+1)*r.Window, r.Positives))
			pts[wi].Y = v
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("prequential: plot %s: %w", m.Name, err)
		}
		l.Color = modelColors[m.Name]
		l.Width = vg.Points(1.5)
		if m.Name == FrozenMF {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s (%.3f)", m.Name, m.HR), l)
	}
	// Dotted verticals mark where the frozen model stopped learning and
	// where the stream changed.
	for _, mk := range []struct {
		at    int
		x     int
		label string
		c     color.RGBA
	}{
		{r.FrozenAt, r.FrozenPositives, "frozen_mf stops learning", modelColors[FrozenMF]},
		{r.Shift, r.ShiftPositives, "stream shift", color.RGBA{A: 0xff}},
	} {
		if mk.at <= 0 {
			continue
		}
		l, err := plotter.NewLine(plotter.XYs{{X: float64(mk.x), Y: 0}, {X: float64(mk.x), Y: p.Y.Max}})
		if err != nil {
			return fmt.Errorf("prequential: plot marker: %w", err)
		}
		l.Color = mk.c
		l.Width = vg.Points(1)
		l.Dashes = []vg.Length{vg.Points(1), vg.Points(3)}
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s (event %d)", mk.label, mk.at), l)
	}
	wt, err := p.WriterTo(9*vg.Inch, 4.5*vg.Inch, "png")
	if err != nil {
		return fmt.Errorf("prequential: render plot: %w", err)
	}
	if _, err := wt.WriteTo(w); err != nil {
		return fmt.Errorf("prequential: write plot: %w", err)
	}
	return nil
}
