package features

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Register mounts the read API on mux:
//
//	GET /v1/users/{id}/features[?at=T]  → UserView
//	GET /v1/items/{id}/features[?at=T]  → ItemView
//
// T (RFC 3339 or unix milliseconds, default now) is the time at which decayed
// counts are evaluated. Answers: 200 with the view; 404 for an id this
// instance does not hold; 400 for a bad "at"; 503 while no partition of the
// stage is ready here (or the stage stopped) and for store errors. Reads see
// committed state only.
func (p *Process) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/users/{id}/features", p.serveUser)
	mux.HandleFunc("GET /v1/items/{id}/features", p.serveItem)
}

// Handler returns a handler serving the read API alone (for a server that
// swaps Processes, as the role does when it restarts one).
func (p *Process) Handler() http.Handler {
	mux := http.NewServeMux()
	p.Register(mux)
	return mux
}

func (p *Process) serveUser(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	at, ok := queryTime(w, r)
	if !ok {
		return
	}
	st, found, err := p.User(id)
	if !answerLookup(w, "user", found, err) {
		return
	}
	writeJSON(w, http.StatusOK, st.View(id, at))
}

func (p *Process) serveItem(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	at, ok := queryTime(w, r)
	if !ok {
		return
	}
	st, found, err := p.Item(id)
	if !answerLookup(w, "item", found, err) {
		return
	}
	writeJSON(w, http.StatusOK, st.View(id, at))
}

// answerLookup writes the error answer of a lookup and reports whether the
// caller should write the view.
func answerLookup(w http.ResponseWriter, what string, found bool, err error) bool {
	switch {
	case errors.Is(err, ErrNotReady):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("%s features are not ready on this instance", what))
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case !found:
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown %s (or held by another instance)", what))
	default:
		return true
	}
	return false
}

func queryTime(w http.ResponseWriter, r *http.Request) (time.Time, bool) {
	s := r.URL.Query().Get("at")
	if s == "" {
		return time.Now(), true
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), true
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		writeError(w, http.StatusBadRequest, `query "at": want RFC 3339 or unix milliseconds`)
		return time.Time{}, false
	}
	return t, true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
