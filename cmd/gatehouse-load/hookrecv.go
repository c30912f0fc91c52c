package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// hookReceiver is the app's webhook endpoint for the webhooks run: a real HTTP listener on
// loopback that verifies every delivery by the Standard Webhooks scheme (written here from
// the specification, not with Gatehouse's signing code), acknowledges it with 204 and counts
// the distinct events and how long after the event each was acknowledged.
type hookReceiver struct {
	ln  net.Listener
	srv *http.Server

	mu    sync.Mutex
	keys  map[string][]byte // tenant slug → key of its endpoint's secret
	seen  map[string]bool   // webhook-id → acknowledged
	lags  []time.Duration   // acknowledgement time − occurred_at, one per distinct event
	last  time.Time         // the latest first acknowledgement
	dupes int               // repeated webhook-ids (retries of an acknowledged event)
	bad   int               // deliveries that failed verification (answered 401)
}

func startHookReceiver() (*hookReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &hookReceiver{ln: ln, keys: map[string][]byte{}, seen: map[string]bool{}}
	h.srv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = h.srv.Serve(ln) }()
	return h, nil
}

func (h *hookReceiver) close() { _ = h.srv.Close() }

// url is the endpoint URL of slug's endpoint.
func (h *hookReceiver) url(slug string) string {
	return "http://" + h.ln.Addr().String() + "/hooks/" + slug
}

func (h *hookReceiver) trust(slug, secret string) error {
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || !strings.HasPrefix(secret, "whsec_") {
		return errors.New("the endpoint's secret is not whsec_ and base64")
	}
	h.mu.Lock()
	h.keys[slug] = k
	h.mu.Unlock()
	return nil
}

// verify checks the signature headers against key: "v1,<base64 HMAC-SHA256 of
// id.timestamp.body>", any of several, with a timestamp within five minutes.
func verify(key []byte, hdr http.Header, body []byte) bool {
	id, ts := hdr.Get("webhook-id"), hdr.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || id == "" || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	want := m.Sum(nil)
	for _, sig := range strings.Fields(hdr.Get("webhook-signature")) {
		if v, b64, ok := strings.Cut(sig, ","); ok && v == "v1" {
			if got, err := base64.StdEncoding.DecodeString(b64); err == nil && hmac.Equal(got, want) {
				return true
			}
		}
	}
	return false
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	slug, ok := strings.CutPrefix(r.URL.Path, "/hooks/")
	h.mu.Lock()
	key := h.keys[slug]
	h.mu.Unlock()
	var ev struct {
		ID         string    `json:"id"`
		OccurredAt time.Time `json:"occurred_at"`
	}
	if err != nil || !ok || r.Method != http.MethodPost || key == nil || !verify(key, r.Header, body) ||
		json.Unmarshal(body, &ev) != nil || ev.ID != r.Header.Get("webhook-id") {
		h.mu.Lock()
		h.bad++
		h.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	now := time.Now()
	h.mu.Lock()
	if h.seen[ev.ID] {
		h.dupes++
	} else {
		h.seen[ev.ID] = true
		h.lags = append(h.lags, now.Sub(ev.OccurredAt))
		h.last = now
	}
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// stats returns the distinct events acknowledged, the latest first acknowledgement, the
// lag quantiles, repeats and refused deliveries.
func (h *hookReceiver) stats() (n int, last time.Time, p50, p99 time.Duration, dupes, bad int) {
	return h.statsFrom(0)
}

// statsFrom is stats over the events acknowledged after the first skip (n counts them all).
func (h *hookReceiver) statsFrom(skip int) (n int, last time.Time, p50, p99 time.Duration, dupes, bad int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	lags := slices.Clone(h.lags[min(skip, len(h.lags)):])
	slices.Sort(lags)
	return len(lags), h.last, quantile(lags, 0.50), quantile(lags, 0.99), h.dupes, h.bad
}
