package scorer

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// Route is the recommendation endpoint's pattern.
const Route = "GET /v1/recommendations"

// Register mounts GET /v1/recommendations on mux.
func (s *Scorer) Register(mux *http.ServeMux) {
	mux.HandleFunc(Route, s.handleRecommendations)
}

// parseRequest reads and validates the query parameters.
func parseRequest(r *http.Request) (Request, error) {
	req := Request{K: 10, ExcludeSeen: true}
	q := r.URL.Query()
	for key, vals := range q {
		if len(vals) != 1 {
			return req, fmt.Errorf("parameter %q given %d times", key, len(vals))
		}
		v := vals[0]
		var err error
		switch key {
		case "user_id":
			req.UserID = v
		case "k":
			req.K, err = strconv.Atoi(v)
			if err == nil && (req.K < 1 || req.K > MaxK) {
				err = fmt.Errorf("want 1–%d", MaxK)
			}
		case "exclude_seen":
			req.ExcludeSeen, err = strconv.ParseBool(v)
		case "explain":
			req.Explain, err = strconv.ParseBool(v)
		default:
			return req, fmt.Errorf("unknown parameter %q (want user_id, k, exclude_seen, explain)", key)
		}
		if err != nil {
			return req, fmt.Errorf("parameter %s=%q: %v", key, v, err)
		}
	}
	if req.UserID == "" {
		return req, errors.New("parameter user_id is required")
	}
	return req, nil
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

func (s *Scorer) handleRecommendations(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := http.StatusOK
	defer func() {
		s.metrics.duration.WithLabelValues("recommendations", s.cfg.Variant).Observe(time.Since(start).Seconds())
		s.metrics.requests.WithLabelValues(s.cfg.Variant, strconv.Itoa(code)).Inc()
	}()
	w.Header().Set("Content-Type", "application/json")
	req, err := parseRequest(r)
	if err != nil {
		code = http.StatusBadRequest
		writeError(w, code, err)
		return
	}
	req.RequestID = newRequestID()
	resp, err := s.Recommend(r.Context(), req)
	if err != nil {
		code = http.StatusInternalServerError
		if errors.Is(err, ErrBadRequest) {
			code = http.StatusBadRequest
		}
		writeError(w, code, err)
		return
	}
	b, err := json.Marshal(resp)
	if err != nil {
		code = http.StatusInternalServerError
		writeError(w, code, err)
		return
	}
	_, _ = w.Write(append(b, '\n'))
	if s.recs != nil {
		s.recs.offer(resp)
	}
}

func writeError(w http.ResponseWriter, code int, err error) {
	w.WriteHeader(code)
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{err.Error()})
	_, _ = w.Write(append(b, '\n'))
}
