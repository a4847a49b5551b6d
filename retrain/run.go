package retrain

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/eddyrec/eddy/connectors/archive"
	"github.com/eddyrec/eddy/learner"
	"github.com/eddyrec/eddy/learner/ials"
	"github.com/eddyrec/eddy/learner/offline"
	"github.com/eddyrec/eddy/learner/snapshot"
)

// The list lengths of the gate's metrics (HR and NDCG at 10, recall at 20).
const (
	gateK       = 10
	gateRecallK = 20
)

// SnapshotKey is where version v's vectors are kept in the archive.
func SnapshotKey(v uint64) string {
	return archive.ModelsFolder + strconv.FormatUint(v, 10) + "/model.parquet"
}

// candidate is what a run produced: its record and, when promoted, the
// rows to publish.
type candidate struct {
	v    *Version
	rows []snapshot.Record
}

// fail ends v as failed with err's words.
func fail(v *Version, err error) *candidate {
	v.Decision, v.Reason = Failed, err.Error()
	return &candidate{v: v}
}

// retrain runs the challenger against the champion for v (numbered,
// parented and triggered by the caller): waits for the archive, reads
// and divides the events, trains, judges both, and on promotion keeps the
// snapshot. Errors that say nothing about the data (ctx cancelled, the
// broker unreachable) are returned, so the request is run again; the
// others end the run as failed.
func (r *Role) retrain(ctx context.Context, v *Version) (*candidate, error) {
	cfg := &r.cfg
	v.Gate, v.IALS = &cfg.Gate, &cfg.IALS
	ends, err := r.eventEnds(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.waitArchive(ctx, ends); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return fail(v, err), nil
	}
	r.log.Info("retrain: reading the archive", "version", v.Version, "archive", cfg.ArchiveName)
	last := time.Now()
	// The champion is judged on events neither model learned from: when
	// the live version is a batch model, only on those after its data.
	var notBefore time.Time
	r.mu.Lock()
	if lv := r.hist.Live(); lv != nil && lv.Data != nil {
		notBefore = lv.Data.To.Add(time.Millisecond)
	}
	r.mu.Unlock()
	d, err := collect(ctx, cfg.Archive, ends, cfg.Window, cfg.Holdout, notBefore, learner.DefaultConfidence(), func(s archive.ScanStats) {
		if time.Since(last) >= 2*time.Second {
			last = time.Now()
			r.log.Info("retrain: archive scan", "files", s.Files, "rows", s.Rows)
		}
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return fail(v, err), nil
	}
	v.Data = &d.rng
	r.log.Info("retrain: archive read", "version", v.Version, "events", d.rng.Events, "train_events", d.rng.TrainEvents,
		"holdout_events", d.rng.HoldoutEvents, "users", d.rng.Users, "items", d.rng.Items, "cutoff", d.rng.Cutoff.Format(time.RFC3339))
	sp, err := offline.SplitAt(d.set, d.train, cfg.MaxHoldoutUsers, cfg.IALS.Seed)
	if err != nil {
		return fail(v, err), nil
	}
	v.Data.HoldoutUsers = len(sp.Cases)
	if len(sp.Cases) < cfg.Gate.MinHoldoutUsers {
		v.Decision = Rejected
		v.Reason = fmt.Sprintf("only %d users in the held-out slice since %s (want at least %d): widen --holdout, lower --min-holdout-users, or let more events arrive after the live version's data",
			len(sp.Cases), d.rng.Cutoff.Format(time.RFC3339), cfg.Gate.MinHoldoutUsers)
		return &candidate{v: v}, nil
	}
	mat, err := d.set.Matrix(func(t int) bool { return d.train[t] })
	if err != nil {
		return fail(v, fmt.Errorf("events before the cut-off %s: %w", d.rng.Cutoff.Format(time.RFC3339), err)), nil
	}
	fac, sum, err := ials.Train(ctx, mat, cfg.IALS, ials.Options{Progress: func(e ials.EpochStats) {
		r.log.Info("retrain: epoch", "version", v.Version, "epoch", e.Epoch, "of", e.Epochs, "loss", e.Loss, "seconds", e.Seconds)
	}})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return fail(v, err), nil
	}
	chall := offline.Evaluate(sp, factorScorer{fac}, gateK, gateRecallK)
	v.Challenger = &chall
	lm, err := readLive(ctx, cfg.ClientOpts, cfg.Topics.Users, cfg.Topics.Items, v.Parent, d.rng.Cutoff.UnixMilli())
	if err != nil {
		return nil, err
	}
	if lm.dim != 0 && lm.dim != cfg.IALS.Dim {
		return fail(v, fmt.Errorf("the live model has %d dimensions and the challenger %d: retrain with --dim %d (the online stages continue from the promoted vectors)", lm.dim, cfg.IALS.Dim, lm.dim)), nil
	}
	cs, nu, ni := newChampionScorer(lm, d.set)
	champ := offline.Evaluate(sp, cs, gateK, gateRecallK)
	v.Champion, v.ChampionUsers, v.ChampionItems = &champ, nu, ni
	ok, reason := cfg.Gate.Decide(&champ, &chall, len(sp.Cases))
	r.m.gate(v)
	r.log.Info("retrain: gate", "version", v.Version, "promote", ok, "challenger_hr_at_10", chall.HR, "champion_hr_at_10", champ.HR,
		"challenger_coverage", chall.Coverage, "champion_coverage", champ.Coverage, "holdout_users", len(sp.Cases),
		"train_seconds", sum.Seconds)
	if !ok {
		v.Decision, v.Reason = Rejected, reason
		return &candidate{v: v}, nil
	}
	v.Decision, v.Reason = Promoted, reason
	// The gate judged the configuration on events it had not seen; the
	// model served learns from all of them, so that nothing acknowledged
	// before the run is left for the stages to re-apply.
	r.log.Info("retrain: promoted; training the served model on every event read", "version", v.Version, "events", d.rng.Events)
	full, err := d.set.Matrix(nil)
	if err != nil {
		return fail(v, err), nil
	}
	fac, sum, err = ials.Train(ctx, full, cfg.IALS, ials.Options{Progress: func(e ials.EpochStats) {
		r.log.Info("retrain: epoch (served model)", "version", v.Version, "epoch", e.Epoch, "of", e.Epochs, "loss", e.Loss, "seconds", e.Seconds)
	}})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return fail(v, err), nil
	}
	v.Data.ReplayOffsets = ends
	rows := snapshot.RowsOf(d.set, fac, cfg.SeenItems, v.Version, nil)
	first, last := d.set.Span()
	meta := snapshot.Meta{Trainer: "ials", Config: cfg.IALS, Dim: cfg.IALS.Dim, Users: full.Users, Items: full.Items, Pairs: full.NNZ(),
		Events: d.rng.Events, FromTs: first.Format(time.RFC3339), ToTs: last.Format(time.RFC3339),
		Source: "archive " + cfg.ArchiveName, Loss: sum.Loss, Seconds: sum.Seconds, Created: time.Now().UTC().Format(time.RFC3339)}
	if v.Snapshot, err = r.keepSnapshot(ctx, v.Version, meta, rows); err != nil {
		return nil, err
	}
	return &candidate{v: v, rows: rows}, nil
}

// rollback restores version target's snapshot as v.
func (r *Role) rollback(ctx context.Context, v *Version, target uint64) (*candidate, error) {
	t := r.hist.Get(target)
	switch {
	case target == InitialVersion:
		return fail(v, fmt.Errorf("version %d is the initial online model, which has no snapshot to restore", target)), nil
	case t == nil:
		return fail(v, fmt.Errorf("no version %d (eddy model list shows them)", target)), nil
	case t.Decision != Promoted || t.Snapshot == "":
		return fail(v, fmt.Errorf("version %d was %s, never served: only promoted versions can be restored", target, t.Decision)), nil
	}
	m, err := archive.ReadModel(ctx, r.cfg.Archive, SnapshotKey(target))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return fail(v, fmt.Errorf("read the snapshot of version %d: %w", target, err)), nil
	}
	rows := make([]snapshot.Record, 0, len(m.Users)+len(m.Items))
	for _, recs := range [][]archive.ModelRecord{m.Users, m.Items} {
		for _, rec := range recs {
			rec.Vector.ModelVersion = v.Version
			rows = append(rows, snapshot.Record{Key: rec.ID, Vector: rec.Vector})
		}
	}
	v.Parent, v.Decision = target, Promoted
	v.Reason = fmt.Sprintf("rollback to version %d by the operator (live was %d)", target, r.hist.LiveVersion())
	v.Data, v.IALS, v.Challenger, v.Champion = t.Data, t.IALS, t.Challenger, t.Champion
	var meta snapshot.Meta
	_ = json.Unmarshal(m.Meta, &meta)
	meta.Created = time.Now().UTC().Format(time.RFC3339)
	if v.Snapshot, err = r.keepSnapshot(ctx, v.Version, meta, rows); err != nil {
		return nil, err
	}
	return &candidate{v: v, rows: rows}, nil
}

// keepSnapshot writes the rows of version n to the archive.
func (r *Role) keepSnapshot(ctx context.Context, n uint64, meta snapshot.Meta, rows []snapshot.Record) (string, error) {
	mb, err := json.Marshal(meta)
	if err != nil {
		return "", err
	}
	recs := make([]archive.ModelRecord, len(rows))
	for i, row := range rows {
		recs[i] = archive.ModelRecord{ID: row.Key, Vector: row.Vector}
	}
	key := SnapshotKey(n)
	if err := archive.WriteModel(ctx, r.cfg.Archive, key, mb, recs); err != nil {
		return "", fmt.Errorf("retrain: keep the snapshot of version %d: %w", n, err)
	}
	return key, nil
}

// eventEnds returns the events topic's last stable offsets: everything
// acknowledged (committed) so far.
func (r *Role) eventEnds(ctx context.Context) (map[int32]int64, error) {
	adm := kadm.NewClient(r.cons)
	offs, err := adm.ListCommittedOffsets(ctx, r.cfg.Topics.Events)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("retrain: end offsets of %s: %w", r.cfg.Topics.Events, err)
	}
	ends := map[int32]int64{}
	offs.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
	if len(ends) == 0 {
		return nil, fmt.Errorf("retrain: topic %s has no partitions", r.cfg.Topics.Events)
	}
	return ends, nil
}

// waitArchive waits until the archive holds every partition up to ends.
func (r *Role) waitArchive(ctx context.Context, ends map[int32]int64) error {
	deadline := time.Now().Add(r.cfg.ArchiveWait)
	lastLog := time.Now()
	for {
		got, err := archive.Archived(ctx, r.cfg.Archive, archive.Events)
		if err != nil {
			return fmt.Errorf("retrain: read the archive's progress: %w", err)
		}
		var behind int64
		for p, end := range ends {
			if got[p] < end {
				behind += end - got[p]
			}
		}
		if behind == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the archive is still %d events behind what Kafka acknowledged after %v: is the archive role running (eddy archive status)?", behind, r.cfg.ArchiveWait)
		}
		if time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			r.log.Info("retrain: waiting for the archive to flush", "events_behind", behind)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// factorScorer scores with trained iALS factors.
type factorScorer struct{ f *ials.Factors }

func (f factorScorer) Scores(u int32, dst []float32) []float32 { return f.f.Scores(int(u), dst) }
