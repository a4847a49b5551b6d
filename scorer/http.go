package scorer

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Route is the recommendation endpoint's pattern.
const Route = "GET /v1/recommendations"

// Register mounts GET /v1/recommendations on mux.
func (s *Scorer) Register(mux *http.ServeMux) {
	mux.HandleFunc(Route, s.handleRecommendations)
}

// parseRequest reads and validates the query parameters. It walks the raw
// query itself instead of building url.Values (a map and a slice per
// parameter for every request).
func parseRequest(r *http.Request) (Request, error) {
	req := Request{K: 10, ExcludeSeen: true}
	var seen [4]bool // user_id, k, exclude_seen, explain
	for q := r.URL.RawQuery; q != ""; {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		if kv == "" {
			continue
		}
		key, v, _ := strings.Cut(kv, "=")
		var err error
		if key, err = unescapeParam(key); err != nil {
			return req, fmt.Errorf("parameter name %q: %v", key, err)
		}
		if v, err = unescapeParam(v); err != nil {
			return req, fmt.Errorf("parameter %s=%q: %v", key, v, err)
		}
		slot := -1
		switch key {
		case "user_id":
			slot = 0
			req.UserID = v
		case "k":
			slot = 1
			req.K, err = strconv.Atoi(v)
			if err == nil && (req.K < 1 || req.K > MaxK) {
				err = fmt.Errorf("want 1–%d", MaxK)
			}
		case "exclude_seen":
			slot = 2
			req.ExcludeSeen, err = strconv.ParseBool(v)
		case "explain":
			slot = 3
			req.Explain, err = strconv.ParseBool(v)
		default:
			return req, fmt.Errorf("unknown parameter %q (want user_id, k, exclude_seen, explain)", key)
		}
		if seen[slot] {
			return req, fmt.Errorf("parameter %q given %d times", key, countParam(r.URL.RawQuery, key))
		}
		seen[slot] = true
		if err != nil {
			return req, fmt.Errorf("parameter %s=%q: %v", key, v, err)
		}
	}
	if req.UserID == "" {
		return req, errors.New("parameter user_id is required")
	}
	return req, nil
}

// unescapeParam decodes a query component; the common plain case costs
// nothing.
func unescapeParam(s string) (string, error) {
	if !strings.ContainsAny(s, "%+") {
		return s, nil
	}
	return url.QueryUnescape(s)
}

// countParam counts the occurrences of key in a raw query (for the error
// message).
func countParam(raw, key string) int {
	n := 0
	for q := raw; q != ""; {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		k, _, _ := strings.Cut(kv, "=")
		if k, err := unescapeParam(k); err == nil && k == key {
			n++
		}
	}
	return n
}

func newRequestID() string {
	var b [16]byte
	const hex = "0123456789abcdef"
	x, y := rand.Uint64(), rand.Uint64()
	for i := range 8 {
		b[i] = hex[x>>(4*i)&15]
		b[8+i] = hex[y>>(4*i)&15]
	}
	return string(b[:])
}

// jsonContentType is shared by every response's header map (read-only).
var jsonContentType = []string{"application/json"}

// bodyPool holds response body buffers.
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func (s *Scorer) handleRecommendations(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := http.StatusOK
	var a *arm // nil until assigned
	defer func() {
		s.observe(a, code, time.Since(start))
	}()
	w.Header()["Content-Type"] = jsonContentType
	req, err := parseRequest(r)
	if err != nil {
		code = http.StatusBadRequest
		writeError(w, code, err)
		return
	}
	req.RequestID = newRequestID()
	a = s.assign(req.UserID)
	resp, err := s.recommend(req, a)
	if err != nil {
		code = http.StatusInternalServerError
		if errors.Is(err, ErrBadRequest) {
			code = http.StatusBadRequest
		}
		writeError(w, code, err)
		return
	}
	bp := bodyPool.Get().(*[]byte)
	defer bodyPool.Put(bp)
	b := (*bp)[:0]
	if req.Explain {
		var eb []byte
		if eb, err = json.Marshal(resp); err == nil {
			b = append(b, eb...)
		}
	} else {
		b, err = appendResponse(b, resp)
	}
	if err != nil {
		code = http.StatusInternalServerError
		writeError(w, code, err)
		return
	}
	b = append(b, '\n')
	_, _ = w.Write(b)
	*bp = b
	if s.recs != nil {
		s.recs.offer(resp)
	}
}

// observe records one request of variant a in the latency histogram and
// the request counter; each variant's (variant, 200) series are looked up
// once. A request rejected before assignment (a nil a) is labelled with
// the only variant when there is one, and "none" in an experiment.
func (s *Scorer) observe(a *arm, code int, d time.Duration) {
	if a == nil && len(s.arms) == 1 {
		a = &s.arms[0]
	}
	if a == nil {
		s.metrics.duration.WithLabelValues(routeLabel, unassignedMetric).Observe(d.Seconds())
		s.metrics.requests.WithLabelValues(unassignedMetric, strconv.Itoa(code)).Inc()
		return
	}
	a.okDuration.Observe(d.Seconds())
	if code == http.StatusOK {
		a.okRequests.Inc()
		return
	}
	s.metrics.requests.WithLabelValues(a.name, strconv.Itoa(code)).Inc()
}

func writeError(w http.ResponseWriter, code int, err error) {
	w.WriteHeader(code)
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{err.Error()})
	_, _ = w.Write(append(b, '\n'))
}
