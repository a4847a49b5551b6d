package drift

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestTriggerScript drives the retraining trigger policy with reports of
// given verdicts: report t=<window end> drifted=a,b ok=c insufficient=d.
// Windows are 5 minutes long and end at t.
func TestTriggerScript(t *testing.T) {
	var p *Policy
	var cfg TriggerConfig
	runScript(t, "testdata/trigger.txt", func(t *testing.T, c *scriptCase) string {
		dur := func(key, def string) Duration {
			d, err := time.ParseDuration(c.arg(key, def))
			if err != nil {
				t.Fatalf("%s: %s: %v", c.pos, key, err)
			}
			return Duration(d)
		}
		switch c.cmd {
		case "policy":
			k, _ := strconv.Atoi(c.arg("k", "3"))
			daily, _ := strconv.Atoi(c.arg("daily", "4"))
			cfg = TriggerConfig{Consecutive: k, Cooldown: dur("cooldown", "6h"), DailyMax: daily, Repeat: dur("repeat", "0s")}
			p = NewPolicy(cfg)
			return ""
		case "report":
			end := scriptTime(t, c)
			r := &Report{
				ID:          fmt.Sprintf("drift-%s", offset(end)),
				WindowStart: end.Add(-5 * time.Minute), WindowEnd: end, ReferenceID: "ref-1",
			}
			for _, st := range []string{"drifted", "ok", "insufficient"} {
				if c.arg(st, "") == "" {
					continue
				}
				for _, name := range strings.Split(c.arg(st, ""), ",") {
					sr := SignalResult{Name: name, Status: StatusOK}
					sr.Method, sr.Threshold = MethodJS, 0.25
					switch st {
					case "drifted":
						sr.Score, sr.Drifted = 0.5, true
					case "ok":
						sr.Score = 0.1
					case "insufficient":
						sr.Status = StatusInsufficient
					}
					r.Signals = append(r.Signals, sr)
				}
			}
			d := p.Observe(r)
			out := fmt.Sprintf("%s signals=%v latched=%v", d.Action, d.Signals, p.Latched())
			if d.Action != ActionNone && d.Action != ActionRequest {
				out += "\n  " + d.Reason
			}
			if rq := d.Request; rq != nil {
				out += fmt.Sprintf("\n  request %s data=[%s,%s] reports=%v\n  reason: %s",
					rq.ID, offset(rq.DataFrom), offset(rq.DataTo), rq.ReportIDs, rq.Reason)
			}
			return out
		case "rebase":
			p.Rebase()
			return ""
		case "restart":
			data, err := p.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			np, err := RestorePolicy(cfg, data)
			if err != nil {
				t.Fatalf("%s: %v", c.pos, err)
			}
			again, _ := np.MarshalBinary()
			if string(again) != string(data) {
				t.Fatalf("%s: policy state does not round-trip", c.pos)
			}
			p = np
			return fmt.Sprintf("restarted requests=%d", p.Requests())
		}
		t.Fatalf("%s: unknown command %q", c.pos, c.cmd)
		return ""
	})
}
