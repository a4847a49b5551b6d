package offline

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/eddyrec/eddy/learner/trainset"
)

// Export writes cfg's split of s to dir for peer libraries, with dense
// integer ids (the set's catalogue indices):
//
//   - train.csv: user,item,confidence,target — the training matrix exactly
//     as iALS sees it (pairs merged, weights from learner.Confidence);
//   - seen.csv: user,item — each test user's training items, excluded
//     from its ranking;
//   - test.csv: user,item — the held-out items;
//   - candidates.csv: user,item — for the sampled protocol, each test
//     user's candidates, the held-out item first;
//   - meta.json: the sizes, the protocol and iALS's hyperparameters.
func Export(dir string, s *trainset.Set, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	sp, err := makeSplit(s, nil, cfg.splitOptions())
	if err != nil {
		return err
	}
	m, err := s.Matrix(func(t int) bool { return sp.Train[t] })
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	write := func(name, header string, rows func(w *bufio.Writer)) error {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		w := bufio.NewWriter(f)
		w.WriteString(header + "\n")
		rows(w)
		if err := w.Flush(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	pair := func(w *bufio.Writer, u, i int32) {
		w.WriteString(strconv.Itoa(int(u)))
		w.WriteByte(',')
		w.WriteString(strconv.Itoa(int(i)))
		w.WriteByte('\n')
	}
	err = write("train.csv", "user,item,confidence,target", func(w *bufio.Writer) {
		a := &m.ByUser
		for u := range m.Users {
			for j := a.Ptr[u]; j < a.Ptr[u+1]; j++ {
				t := float32(1)
				if a.Target != nil {
					t = a.Target[j]
				}
				fmt.Fprintf(w, "%d,%d,%g,%g\n", u, a.Idx[j], a.Conf[j], t)
			}
		}
	})
	if err != nil {
		return err
	}
	if err := write("seen.csv", "user,item", func(w *bufio.Writer) {
		for _, c := range sp.Cases {
			for _, i := range sp.Seen[c.User] {
				pair(w, c.User, i)
			}
		}
	}); err != nil {
		return err
	}
	if err := write("test.csv", "user,item", func(w *bufio.Writer) {
		for _, c := range sp.Cases {
			for _, i := range c.Targets {
				pair(w, c.User, i)
			}
		}
	}); err != nil {
		return err
	}
	if cfg.Protocol == Sampled {
		if err := write("candidates.csv", "user,item", func(w *bufio.Writer) {
			for _, c := range sp.Cases {
				for _, i := range c.Candidates {
					pair(w, c.User, i)
				}
			}
		}); err != nil {
			return err
		}
	}
	meta := map[string]any{
		"users": m.Users, "items": m.Items, "pairs": m.NNZ(), "train_items": sp.TrainItems, "protocol": cfg.Protocol,
		"k": cfg.K, "recall_k": cfg.RecallK, "test_cases": len(sp.Cases),
		"ials": cfg.IALS,
	}
	b, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "meta.json"), append(b, '\n'), 0o644)
}
