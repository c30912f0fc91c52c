package ratelimit

import (
	"testing"
	"time"
)

// TestDelays pins the schedules that docs/accounts.md (Rate limits) documents.
func TestDelays(t *testing.T) {
	cases := []struct {
		failures         int
		address, account time.Duration
	}{
		{0, 0, 0},
		{4, 0, 0},
		{5, time.Second, time.Second},
		{6, 2 * time.Second, 2 * time.Second},
		{9, 16 * time.Second, 16 * time.Second},
		{10, 32 * time.Second, AccountLock}, // the per-account lock starts
		{11, 64 * time.Second, AccountLock}, // and starts again after each later failure
		{15, MaxDelay, AccountLock},
		{1000, MaxDelay, AccountLock},
	}
	for _, c := range cases {
		if got := delayAfter(c.failures); got != c.address {
			t.Errorf("address delay after %d failures: %v, want %v", c.failures, got, c.address)
		}
		if got := accountDelayAfter(c.failures); got != c.account {
			t.Errorf("account delay after %d failures: %v, want %v", c.failures, got, c.account)
		}
	}
}
