package main

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// op is one kind of request in a run. fn is called by one worker at a time per call; it
// gets the worker's random source.
type op struct {
	name   string
	weight int
	fn     func(ctx context.Context, r *rand.Rand) error
}

// OpResult is what one operation did during a run.
type OpResult struct {
	Op         string         `json:"op"`
	Requests   int            `json:"requests"` // successful
	Errors     int            `json:"errors"`
	ErrorKinds map[string]int `json:"error_kinds,omitempty"`
	RPS        float64        `json:"rps"`
	P50ms      float64        `json:"p50_ms"`
	P95ms      float64        `json:"p95_ms"`
	P99ms      float64        `json:"p99_ms"`
	Timeline   []int          `json:"per_second"` // successes in each second of the run
}

// PhaseResult is one timed run.
type PhaseResult struct {
	Name        string     `json:"name"`
	Concurrency int        `json:"concurrency"`
	Seconds     float64    `json:"seconds"`
	Ops         []OpResult `json:"ops"`
}

func (p PhaseResult) op(name string) OpResult {
	for _, o := range p.Ops {
		if o.Op == name {
			return o
		}
	}
	return OpResult{Op: name}
}

type workerStats struct {
	lat      [][]time.Duration
	errs     []map[string]int
	timeline [][]int
}

// runOps runs conc closed-loop workers for dur; each picks an operation by weight. A worker
// whose operation reports errExhausted stops.
func runOps(ctx context.Context, name string, ops []op, conc int, dur time.Duration) PhaseResult {
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	secs := int(dur/time.Second) + 2
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	stats := make([]workerStats, conc)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range conc {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano())))
			st := workerStats{lat: make([][]time.Duration, len(ops)), errs: make([]map[string]int, len(ops)), timeline: make([][]int, len(ops))}
			for k := range ops {
				st.errs[k] = map[string]int{}
				st.timeline[k] = make([]int, secs)
			}
			defer func() { stats[i] = st }()
			for ctx.Err() == nil {
				k := pick(ops, total, r)
				t0 := time.Now()
				err := ops[k].fn(ctx, r)
				if err == errExhausted {
					return
				}
				if ctx.Err() != nil {
					return // cut off by the end of the run: neither a success nor an error
				}
				if err != nil {
					st.errs[k][errKind(err)]++
					continue
				}
				st.lat[k] = append(st.lat[k], time.Since(t0))
				if s := int(time.Since(start) / time.Second); s < secs {
					st.timeline[k][s]++
				}
			}
		})
	}
	wg.Wait()
	names := make([]string, len(ops))
	for k, o := range ops {
		names[k] = o.name
	}
	return summarize(name, conc, names, stats, time.Since(start))
}

// summarize merges the workers' figures of a run that took elapsed.
func summarize(name string, conc int, ops []string, stats []workerStats, elapsed time.Duration) PhaseResult {
	res := PhaseResult{Name: name, Concurrency: conc, Seconds: elapsed.Seconds()}
	for k, opName := range ops {
		var all []time.Duration
		or := OpResult{Op: opName, ErrorKinds: map[string]int{}, Timeline: make([]int, int(elapsed.Seconds()+0.5))}
		for _, st := range stats {
			if k >= len(st.lat) {
				continue
			}
			all = append(all, st.lat[k]...)
			for e, n := range st.errs[k] {
				or.ErrorKinds[e] += n
				or.Errors += n
			}
			for s := range or.Timeline {
				if s < len(st.timeline[k]) {
					or.Timeline[s] += st.timeline[k][s]
				}
			}
		}
		slices.Sort(all)
		or.Requests = len(all)
		or.RPS = float64(len(all)) / elapsed.Seconds()
		or.P50ms, or.P95ms, or.P99ms = ms(quantile(all, 0.50)), ms(quantile(all, 0.95)), ms(quantile(all, 0.99))
		if len(or.ErrorKinds) == 0 {
			or.ErrorKinds = nil
		}
		res.Ops = append(res.Ops, or)
	}
	return res
}

type exhausted struct{}

func (exhausted) Error() string { return "prepared work exhausted" }

var errExhausted error = exhausted{}

func pick(ops []op, total int, r *rand.Rand) int {
	if len(ops) == 1 {
		return 0
	}
	n := r.IntN(total)
	for k, o := range ops {
		if n < o.weight {
			return k
		}
		n -= o.weight
	}
	return len(ops) - 1
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)))
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
