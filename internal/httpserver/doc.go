// Package httpserver is the HTTP shell every Eddy role shares: one mux with
// /healthz, /readyz and /metrics, routes mounted by the roles, and an ordered
// graceful shutdown. Inside `eddy up` all roles mount onto one Server, so they
// share one port.
package httpserver
