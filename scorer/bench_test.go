package scorer

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// BenchmarkRecommendHTTP measures one GET /v1/recommendations through the
// handler (parsing, retrieval of 200 candidates with the int8 index,
// ranker, JSON, served-list log) without the network, over 20k items of
// dim 64: the allocations it reports are the scorer's own per request.
func BenchmarkRecommendHTTP(b *testing.B) {
	for _, index := range []string{IndexInt8, IndexExact} {
		b.Run("index="+index, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Index = index
			s := syntheticScorer(b, cfg, SyntheticSpec{Items: 20000, Users: 1000, Dim: 64, Seen: 20, Seed: 1, Ranker: true})
			p := &fakeProducer{discard: true}
			s.PublishServedLists(p, "bench.recs")
			defer s.StopPublishing()
			mux := http.NewServeMux()
			s.Register(mux)
			reqs := make([]*http.Request, 1000)
			for i := range reqs {
				reqs[i] = httptest.NewRequest("GET", "/v1/recommendations?k=10&user_id=u"+strconv.Itoa(i), nil)
			}
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				w.code = 0
				mux.ServeHTTP(w, reqs[i%len(reqs)])
				if w.code != 0 && w.code != http.StatusOK {
					b.Fatalf("status %d", w.code)
				}
				i++
			}
		})
	}
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkFreeze measures taking a frozen variant's copy of a 100k-item,
// 100k-user, dim-64 model (int8 index): the time the state's read lock is
// held, which delays the consumer's next batch by as much.
func BenchmarkFreeze(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Variants = "online=1,frozen=1"
	s := syntheticScorer(b, cfg, SyntheticSpec{Items: 100000, Users: 100000, Dim: 64, Seen: 20, Seed: 1, Ranker: true})
	for b.Loop() {
		s.Freeze()
	}
}

// syntheticScorer returns a scorer for cfg over a state loaded with spec,
// closed when the benchmark ends.
func syntheticScorer(b *testing.B, cfg Config, spec SyntheticSpec) *Scorer {
	b.Helper()
	st := NewState(cfg)
	if err := LoadSynthetic(st, spec); err != nil {
		b.Fatal(err)
	}
	s, err := New(cfg, st, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	return s
}
