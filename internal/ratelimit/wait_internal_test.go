package ratelimit

import "testing"

// TestWait: the words of a 429's message round the wait up, in the unit a person uses.
func TestWait(t *testing.T) {
	for secs, want := range map[int]string{0: "1 second", 1: "1 second", 2: "2 seconds", 59: "59 seconds", 60: "1 minute",
		61: "2 minutes", 899: "15 minutes", 900: "15 minutes", 3599: "60 minutes", 3600: "1 hour", 3601: "2 hours", 7200: "2 hours"} {
		if got := Wait(secs); got != want {
			t.Errorf("Wait(%d) = %q, want %q", secs, got, want)
		}
	}
	if got := Limited(90 * 1e9).Error(); got != "rate_limited: Too many attempts. Try again in 2 minutes." {
		t.Errorf("Limited(90s): %q", got)
	}
}
