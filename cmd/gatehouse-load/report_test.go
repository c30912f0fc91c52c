package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// TestReportWithoutRequests: a run that completed nothing (0/0) still writes its report,
// with the ratio as 0 and not met, instead of failing on a NaN JSON cannot carry.
func TestReportWithoutRequests(t *testing.T) {
	out := filepath.Join(t.TempDir(), "perf.json")
	r := &Report{Ratios: []Ratio{
		{Name: "empty", Product: 0, Limit: 0, Ratio: math.NaN(), Met: ptr(true)},
		{Name: "no bound", Product: 1, Limit: 0, Ratio: math.Inf(1)},
		{Name: "fine", Product: 1, Limit: 2, Ratio: 0.5, Met: ptr(false)},
	}}
	if err := r.write(out, ""); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if q := got.Ratios[0]; q.Ratio != 0 || q.Met == nil || *q.Met || q.Footnote == "" {
		t.Errorf("empty run: %+v", q)
	}
	if q := got.Ratios[1]; q.Ratio != 0 || q.Met != nil {
		t.Errorf("no bound: %+v", q)
	}
	if q := got.Ratios[2]; q.Ratio != 0.5 || q.Footnote != "" {
		t.Errorf("a real ratio changed: %+v", q)
	}
}
