package app

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"time"
)

// servePprof starts the Go profiler's endpoints on GATEHOUSE_PPROF_ADDR, a loopback
// address (config refuses any other), on a listener of its own: never on the public or
// the metrics listener. It returns nil when the variable is unset.
func (a *App) servePprof(errc chan<- error) *http.Server {
	if a.cfg.PprofAddr == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: a.cfg.PprofAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("GATEHOUSE_PPROF_ADDR: %w", err)
		}
	}()
	a.logger.Warn("profiling listener on (GATEHOUSE_PPROF_ADDR)", "addr", a.cfg.PprofAddr)
	return srv
}
