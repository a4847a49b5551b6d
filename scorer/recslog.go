package scorer

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddyrec/eddy/stream/task"
)

// ServedList is one record value of <prefix>recs (key = user_id). Its JSON
// matches drift.ServedList (ts is unix milliseconds); the scorer keeps its
// own type so that it does not import drift. Policy is written only by a
// scorer running an experiment (--variants): the variant's serving policy,
// so that readers can tell a popularity arm's lists, which carry no
// ranker features and are not fallbacks, from the ranker's (readers of
// recs/v1 ignore fields they do not know; drift does).
type ServedList struct {
	RequestID    string       `json:"request_id"`
	UserID       string       `json:"user_id"`
	ModelVersion string       `json:"model_version"`
	Variant      string       `json:"variant,omitempty"`
	Policy       string       `json:"policy,omitempty"`
	Fallback     bool         `json:"fallback"`
	TsMillis     int64        `json:"ts"`
	Items        []ServedItem `json:"items"`
}

// ServedItem is one served item with its position (0-based), score and
// the ranker's feature values.
type ServedItem struct {
	ItemID   string             `json:"item_id"`
	Position int                `json:"position"`
	Score    float64            `json:"score"`
	Features map[string]float64 `json:"features,omitempty"`
}

// ServedListSchema is the eddy-schema header value of recs records.
const ServedListSchema = "recs/v1"

// Producer is the part of *kgo.Client the served-list log uses.
type Producer interface {
	Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error))
}

// recsLog publishes served lists without ever blocking a response: Offer
// puts the response on a bounded queue or drops it (counted); one
// goroutine encodes and produces.
type recsLog struct {
	topic string
	p     Producer
	q     chan *Response
	m     *metrics
	wg    sync.WaitGroup

	// drift copies the sampled users' lists to the drift role's input
	// (Config.DriftSample; nil: no copy).
	drift *task.Copier

	mu     sync.RWMutex
	closed bool
}

// PublishServedLists starts publishing every response to topic through p.
// Call it once, before serving; StopPublishing stops it.
func (s *Scorer) PublishServedLists(p Producer, topic string) {
	l := &recsLog{topic: topic, p: p, q: make(chan *Response, s.cfg.RecsBuffer), m: s.metrics}
	if c := s.cfg; c.DriftSample > 0 {
		l.drift = task.NewCopier(c.DriftInput, c.DriftSample, kgo.RecordHeader{Key: c.DriftHeaderKey, Value: []byte(c.DriftHeaderValue)})
	}
	l.wg.Add(1)
	go l.run()
	s.recs = l
}

// StopPublishing drains the queue and stops the publisher; responses
// served afterwards are not logged.
func (s *Scorer) StopPublishing() {
	if l := s.recs; l != nil {
		l.mu.Lock()
		if !l.closed {
			l.closed = true
			close(l.q)
		}
		l.mu.Unlock()
		l.wg.Wait()
	}
}

func (l *recsLog) offer(r *Response) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return
	}
	select {
	case l.q <- r:
	default:
		l.m.recsDrop.Inc()
	}
}

// recsHeaders is every served-list record's header list (read-only).
var recsHeaders = []kgo.RecordHeader{{Key: "eddy-schema", Value: []byte(ServedListSchema)}}

func (l *recsLog) run() {
	defer l.wg.Done()
	var (
		buf   []byte
		names []string // the feature names order was computed for
		order []int
	)
	promise, copied := l.promise, l.copied // one func value each, not one per record
	for r := range l.q {
		if len(r.names) != len(names) || (len(names) > 0 && &r.names[0] != &names[0]) {
			names, order = r.names, featureOrder(r.names)
		}
		var err error
		buf, err = appendServedList(buf[:0], r, time.Now().UnixMilli(), order)
		if err != nil {
			l.m.recsFail.Inc()
			continue
		}
		// The record keeps its value until the producer is done with it,
		// so it gets its own copy of the reused buffer: with the key, two
		// allocations per list.
		value := make([]byte, len(buf)+len(r.UserID))
		copy(value, buf)
		key := value[len(buf):]
		copy(key, r.UserID)
		rec := &kgo.Record{Topic: l.topic, Key: key, Value: value[:len(buf):len(buf)], Headers: recsHeaders}
		l.p.Produce(context.Background(), rec, promise)
		if l.drift != nil {
			// The same bytes, keyed alike, so that the copy lands in the
			// input partition of the user's events; the header tells the
			// drift role it is a list.
			if c := l.drift.Copy(key, rec.Value, time.Time{}); c != nil {
				l.p.Produce(context.Background(), c, copied)
			}
		}
	}
}

func (l *recsLog) copied(_ *kgo.Record, err error) {
	if err != nil {
		l.m.recsFail.Inc()
		return
	}
	l.m.recsDrift.Inc()
}

func (l *recsLog) promise(_ *kgo.Record, err error) {
	if err != nil {
		l.m.recsFail.Inc()
		return
	}
	l.m.recsSent.Inc()
}

// servedList is the ServedList of r served at now; the recs log writes
// the same JSON with appendServedList (the tests compare the two).
func servedList(r *Response, now time.Time) ServedList {
	sl := ServedList{RequestID: r.RequestID, UserID: r.UserID, ModelVersion: r.ModelVersion,
		Variant: r.Variant, Policy: r.policy, Fallback: r.Fallback, TsMillis: now.UnixMilli(), Items: make([]ServedItem, len(r.Items))}
	for i, it := range r.Items {
		sl.Items[i] = ServedItem{ItemID: it.ItemID, Position: i, Score: it.Score}
		if i < len(r.features) {
			f := make(map[string]float64, len(r.names))
			for j, n := range r.names {
				f[n] = float64(r.features[i][j])
			}
			sl.Items[i].Features = f
		}
	}
	return sl
}
