package scim_test

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestSuspensionAcrossNodes: a user's session is checked on node B in a tight loop (warm
// in B's session cache) while the directory suspends the user through node A; B refuses
// the session within 100 ms of A's answer.
func TestSuspensionAcrossNodes(t *testing.T) {
	db := testutil.PackageDB(t)
	nodeA := testutil.NewServer(t, db)
	nodeB := testutil.NewServer(t, db)
	d := newDir(t, nodeA, "scimnodes", nil)
	uid, session := d.Person(t, "leaver@example.com")
	r, _ := d.scim(http.MethodPost, "/Users", oktaUser("leaver@example.com", "Lea", "Ver"))
	d.want(r, 201, "")
	onB := d.On(nodeB)

	var refusedAt atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 { // session-check load on B
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp := onB.Do(t, http.MethodGet, "/api/v1/session", session, nil)
				if resp.StatusCode == http.StatusUnauthorized {
					refusedAt.CompareAndSwap(0, time.Now().UnixNano())
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond) // B's cache is warm
	if refusedAt.Load() != 0 {
		t.Fatal("session refused before the suspension")
	}
	r, _ = d.scim(http.MethodPatch, "/Users/"+uid.String(), map[string]any{"Operations": []any{map[string]any{"op": "Replace", "path": "active", "value": "False"}}})
	answered := time.Now()
	d.want(r, 200, "")
	deadline := answered.Add(2 * time.Second)
	for refusedAt.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	at := refusedAt.Load()
	if at == 0 {
		t.Fatal("node B still accepts the suspended user's session after 2 s")
	}
	lag := time.Duration(at - answered.UnixNano())
	t.Logf("node B refused the session %v after node A answered", lag)
	if lag > 100*time.Millisecond {
		t.Fatalf("node B refused the session %v after the suspension, want ≤ 100 ms", lag)
	}
}
