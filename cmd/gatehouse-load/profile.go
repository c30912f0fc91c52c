package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// profiler captures Gatehouse's CPU and allocation profiles during a timed run, through
// the server's GATEHOUSE_PPROF_ADDR listener (-pprof-url), into -profile-dir as
// NAME.cpu.pprof and NAME.allocs.pprof (the allocations of the same seconds: a delta).
type profiler struct {
	url, dir string
}

// during starts both profiles for the middle of a run of dur (from 1 s in to 2 s before
// its end) and returns a wait that reports the first error. A zero profiler does nothing.
func (p profiler) during(ctx context.Context, name string, dur time.Duration) (wait func() error) {
	if p.url == "" || p.dir == "" {
		return func() error { return nil }
	}
	secs := max(1, int((dur-3*time.Second)/time.Second))
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, kind := range []string{"profile", "allocs"} {
		file := filepath.Join(p.dir, name+map[string]string{"profile": ".cpu.pprof", "allocs": ".allocs.pprof"}[kind])
		wg.Go(func() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			errs[i] = p.fetch(ctx, fmt.Sprintf("%s/debug/pprof/%s?seconds=%d", strings.TrimRight(p.url, "/"), kind, secs), file)
		})
	}
	return func() error {
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	}
}

func (p profiler) fetch(ctx context.Context, u, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profile %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("profile %s: status %d %s", u, resp.StatusCode, b)
	}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("profile %s: %w", u, err)
	}
	return f.Close()
}
