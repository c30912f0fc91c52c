package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// acsProfileSeconds is how long the server is profiled from the start of the timed ACS
// run: the prepared sign-ins may run out before the run's duration.
const acsProfileSeconds = 4

// startACSProfiles asks the server's pprof listener (-acs-pprof-url) for a CPU profile
// and an allocation profile (the allocations of that window only) of the first seconds of
// the timed ACS run, and returns the function that waits for both and writes them. Without
// the flags it does nothing.
func (f runFlags) startACSProfiles(ctx context.Context, dur time.Duration, logf func(string, ...any)) func() error {
	if f.pprofURL == "" || f.pprofOut == "" {
		return func() error { return nil }
	}
	secs := min(acsProfileSeconds, max(1, int(dur/time.Second)))
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, kind := range []string{"cpu", "allocs"} {
		path := "/debug/pprof/profile"
		if kind == "allocs" {
			path = "/debug/pprof/allocs"
		}
		wg.Go(func() {
			errs[i] = fetchProfile(ctx, fmt.Sprintf("%s%s?seconds=%d", f.pprofURL, path, secs), f.pprofOut+"-"+kind+".pprof")
		})
	}
	return func() error {
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return fmt.Errorf("ACS profile: %w", err)
			}
		}
		logf("  profiles of the first %d s: %s-cpu.pprof, %s-allocs.pprof", secs, f.pprofOut, f.pprofOut)
		return nil
	}
}

func fetchProfile(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	out, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, resp.Body); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
