package app

import (
	"net/http"
	"net/http/pprof"
	"time"
)

// pprofServer serves Go's runtime profiles on GATEHOUSE_PPROF_ADDR (config refuses any
// address but loopback). It is for measuring this process (scripts/perf.sh captures CPU and
// allocation profiles of the session check and login through it); off by default.
func pprofServer(addr string) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	// A CPU profile runs for its ?seconds; the write timeout must outlast it.
	return &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 10 * time.Minute}
}
