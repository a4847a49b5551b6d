package offline

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/eddyrec/eddy/learner/ials"
)

// WriteJSON writes {"ials":{...},"online_mf":{...},"popularity":{...},
// "split":{...}}: one object per model with hr_at_10, ndcg_at_10,
// recall_at_20, coverage, cases, train_seconds and eval_seconds.
func WriteJSON(w io.Writer, r *Result) error {
	out := map[string]any{"split": r}
	for _, m := range r.Models {
		out[m.Name] = m
	}
	if r.IALSSummary != nil {
		c := r.IALS
		c.Threads = r.IALSSummary.Threads // the count used, not 0 for GOMAXPROCS
		out["ials_config"] = struct {
			ials.Config
			Kernel string `json:"kernel"`
		}{c, r.IALSSummary.Kernel}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// WriteText writes the report as a table.
func WriteText(w io.Writer, r *Result) error {
	fmt.Fprintf(w, "%s: %s, %d events (%d duplicates dropped), %d users, %d items\n", r.Dataset, r.Protocol, r.Events, r.Duplicates, r.Users, r.Items)
	fmt.Fprintf(w, "train: %d events over %d items; test: %d users (%d skipped: nothing left to learn from)\n\n",
		r.TrainEvents, r.TrainItems, r.TestCases, r.SkippedUsers)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "model\tHR@10\tNDCG@10\tRecall@20\tcoverage\ttrain s\t")
	for _, m := range r.Models {
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f\t%.4f\t%.2f\t\n", m.Name, m.HR, m.NDCG, m.Recall, m.Coverage, m.TrainSeconds)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if pop, ia := r.Model(Popularity), r.Model(IALS); pop != nil && ia != nil && pop.HR > 0 {
		fmt.Fprintf(w, "\nials HR@10 is %.2f× popularity's\n", ia.HR/pop.HR)
	}
	if r.IALSSummary != nil {
		c := r.IALS
		fmt.Fprintf(w, "ials: dim %d, %d epochs, reg %.4g, reg exponent %.4g, unobserved weight %.4g, init scale %.4g, %d CG steps, %d threads, %s kernels\n",
			c.Dim, c.Epochs, c.Reg, c.RegExponent, c.UnobservedWeight, c.InitScale, c.CGSteps, r.IALSSummary.Threads, r.IALSSummary.Kernel)
	}
	if len(r.ValidationCurve) > 0 {
		fmt.Fprintf(w, "ials validation HR@10 per epoch:")
		for _, v := range r.ValidationCurve {
			fmt.Fprintf(w, " %.4f", v)
		}
		fmt.Fprintln(w)
	}
	return nil
}

// WriteSweep writes a sweep's table, best point marked, then the test
// result of the best point.
func WriteSweep(w io.Writer, s *SweepResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "dim\tepochs\treg\tunobserved\treg exp\tval HR@10\tval NDCG@10\tseconds\t\t")
	for n, p := range s.Points {
		mark := ""
		if n == s.Best {
			mark = "best"
		}
		c := p.Config
		fmt.Fprintf(tw, "%d\t%d\t%.4g\t%.4g\t%.4g\t%.4f\t%.4f\t%.2f\t%s\t\n", c.Dim, c.Epochs, c.Reg, c.UnobservedWeight, c.RegExponent,
			p.Metrics.HR, p.Metrics.NDCG, p.Seconds, mark)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nthe best point (by validation HR@10, carved from the training part) on the test part:\n\n")
	return WriteText(w, s.Test)
}

// WriteSweepJSON writes {"points":[...],"best":n,"test":{...}}.
func WriteSweepJSON(w io.Writer, s *SweepResult) error {
	type point struct {
		Dim              int     `json:"dim"`
		Epochs           int     `json:"epochs"`
		Reg              float64 `json:"reg"`
		UnobservedWeight float64 `json:"unobserved_weight"`
		RegExponent      float64 `json:"reg_exponent"`
		Metrics
		Seconds float64 `json:"seconds"`
	}
	ps := make([]point, len(s.Points))
	for n, p := range s.Points {
		c := p.Config
		ps[n] = point{c.Dim, c.Epochs, c.Reg, c.UnobservedWeight, c.RegExponent, p.Metrics, p.Seconds}
	}
	test := map[string]any{"split": s.Test}
	for _, m := range s.Test.Models {
		test[m.Name] = m
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{"points": ps, "best": s.Best, "test": test})
}
