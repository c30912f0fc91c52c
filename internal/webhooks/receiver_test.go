package webhooks_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// receiver is an app's webhook endpoint on a real HTTP listener. It verifies every
// delivery with its own implementation of the Standard Webhooks scheme, written here from
// the specification (https://www.standardwebhooks.com): the signed content is
// "{webhook-id}.{webhook-timestamp}.{body}", HMAC-SHA256 under the base64 key after the
// "whsec_" prefix, sent base64 as "v1,<sig>", several space-separated; the timestamp is
// Unix seconds and must be recent. It does not call the package's signing code.
type receiver struct {
	t      *testing.T
	ln     net.Listener
	srv    *http.Server
	mu     sync.Mutex
	status int               // the answer; 0 = 200
	keys   map[string][]byte // secret name → key
	got    []delivery        // every verified request, in arrival order
	byID   map[string]int    // webhook-id → deliveries seen
	bad    []string          // requests that failed verification
	hold   chan struct{}     // when set, requests wait on it (a slow receiver)
	active int               // requests in flight
	peak   int               // the most in flight at once
	clock  func() time.Time  // the receiver's time (the server's test clock)
	// answer, when set, may refuse one verified delivery: a non-zero status is sent
	// instead of 204 and the delivery is not recorded as received.
	answer   func(d delivery) int
	rejected map[string]int // webhook-id → refused by answer
	// redirect, when set, answers every request 307 to this URL.
	redirect string
}

type delivery struct {
	ID       string
	Verified []string // names of the secrets whose signature verified
	Sigs     int
	Body     struct {
		ID         string `json:"id"`
		Type       string `json:"type"`
		Tenant     struct{ ID, Slug string }
		OccurredAt time.Time      `json:"occurred_at"`
		Data       map[string]any `json:"data"`
	}
	Raw map[string]any
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, ln: ln, keys: map[string][]byte{}, byID: map[string]int{}, rejected: map[string]int{}, clock: time.Now}
	r.serve()
	t.Cleanup(func() { r.stop() })
	return r
}

func (r *receiver) serve() {
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(r.ln) }()
}

func (r *receiver) stop() { _ = r.srv.Close() }

// restart listens again on the same address (after stop: connections were refused).
func (r *receiver) restart() {
	r.t.Helper()
	var err error
	for i := 0; i < 50; i++ {
		if r.ln, err = net.Listen("tcp", r.ln.Addr().String()); err == nil {
			r.serve()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("listen again: %v", err)
}

func (r *receiver) URL() string { return "http://" + r.ln.Addr().String() + "/hooks" }

func (r *receiver) trust(name, secret string) {
	r.t.Helper()
	if !strings.HasPrefix(secret, "whsec_") {
		r.t.Fatalf("secret %q is not whsec_", secret)
	}
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	r.keys[name] = k
	r.mu.Unlock()
}

func (r *receiver) setStatus(s int) {
	r.mu.Lock()
	r.status = s
	r.mu.Unlock()
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	redirect := r.redirect
	r.mu.Unlock()
	if redirect != "" {
		http.Redirect(w, req, redirect, http.StatusTemporaryRedirect)
		return
	}
	id, ts, sig := req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature")
	r.mu.Lock()
	r.active++
	r.peak = max(r.peak, r.active)
	hold := r.hold
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.active--
		r.mu.Unlock()
	}()
	if hold != nil {
		<-hold
	}
	d := delivery{ID: id}
	sec, err := strconv.ParseInt(ts, 10, 64)
	fresh := err == nil && r.clock().Sub(time.Unix(sec, 0)).Abs() < 5*time.Minute
	signed := []byte(id + "." + ts + "." + string(body))
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, part := range strings.Fields(sig) {
		version, value, ok := strings.Cut(part, ",")
		if !ok || version != "v1" {
			continue
		}
		d.Sigs++
		got, err := base64.StdEncoding.DecodeString(value)
		if err != nil {
			continue
		}
		for name, k := range r.keys {
			m := hmac.New(sha256.New, k)
			m.Write(signed)
			if hmac.Equal(m.Sum(nil), got) {
				d.Verified = append(d.Verified, name)
			}
		}
	}
	if err := json.Unmarshal(body, &d.Body); err != nil || json.Unmarshal(body, &d.Raw) != nil {
		r.bad = append(r.bad, "body is not JSON: "+string(body))
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if len(d.Verified) == 0 || !fresh || req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" || d.Body.ID != id {
		r.bad = append(r.bad, "unverified delivery "+id+" "+sig)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.status != 0 {
		w.WriteHeader(r.status)
		_, _ = w.Write([]byte(`{"error":"not now"}`))
		return
	}
	if r.answer != nil {
		if st := r.answer(d); st != 0 {
			r.rejected[id]++
			w.WriteHeader(st)
			return
		}
	}
	r.got = append(r.got, d)
	r.byID[id]++
	w.WriteHeader(http.StatusNoContent)
}

// deliveries returns what verified so far.
func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// waitFor waits until ok holds for the deliveries received.
func (r *receiver) waitFor(what string, timeout time.Duration, ok func([]delivery) bool) []delivery {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := r.deliveries()
		if ok(got) {
			return got
		}
		if time.Now().After(deadline) {
			r.mu.Lock()
			bad := r.bad
			r.mu.Unlock()
			var types []string
			for _, d := range got {
				types = append(types, d.Body.Type)
			}
			r.t.Fatalf("%s: not within %s; received %v; refused %v", what, timeout, types, bad)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *receiver) refused() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bad...)
}

func ofType(ds []delivery, typ string) []delivery {
	var out []delivery
	for _, d := range ds {
		if d.Body.Type == typ {
			out = append(out, d)
		}
	}
	return out
}
