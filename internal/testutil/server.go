package testutil

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/app"
	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/secretbox"
	"github.com/gatehouse-id/gatehouse/internal/telemetry"
)

// Server is a running Gatehouse on a random loopback port, wired exactly like `serve`.
type Server struct {
	App     *app.App
	MailDir string // where the directory sender writes (unless a test chose another sender)
	Addr    string // 127.0.0.1:PORT
	Port    int
	Config  config.Config
	client  *http.Client
}

// ServerOption adjusts the configuration before start.
type ServerOption func(*config.Config)

// WithConfig lets a test change any configuration field.
func WithConfig(f func(*config.Config)) ServerOption { return ServerOption(f) }

// NewServer starts the server against d and stops it (gracefully) when the test ends.
// Servers on one database share its job queue: a test that reads mail from MailDir needs a
// database of its own (FreshDB), or another server's worker may deliver its mail.
func NewServer(tb testing.TB, d *DB, opts ...ServerOption) *Server {
	tb.Helper()
	return newServer(tb, d, nil, opts)
}

// NewServerWithTelemetry is NewServer with tracer and meter providers the test built (to
// record spans).
func NewServerWithTelemetry(tb testing.TB, d *DB, tel *telemetry.Telemetry, opts ...ServerOption) *Server {
	tb.Helper()
	return newServer(tb, d, tel, opts)
}

func newServer(tb testing.TB, d *DB, tel *telemetry.Telemetry, opts []ServerOption) *Server {
	tb.Helper()
	env := map[string]string{
		"DATABASE_URL":            d.AppURL,
		"GATEHOUSE_BASE_DOMAIN":   "localhost",
		"GATEHOUSE_PUBLIC_SCHEME": "http",
		"GATEHOUSE_LOG_FORMAT":    "text",
		"GATEHOUSE_LOG_LEVEL":     "warn",
		"OTEL_SDK_DISABLED":       "true",
		"GATEHOUSE_SECRET_KEY":    secretbox.NewKey(),
	}
	if lvl := os.Getenv("GATEHOUSE_TEST_LOG_LEVEL"); lvl != "" {
		env["GATEHOUSE_LOG_LEVEL"] = lvl
	}
	mailDir := tb.TempDir()
	env["GATEHOUSE_MAIL"] = "dir:" + mailDir
	getenv := func(k string) string { return env[k] }
	cfg, err := config.Load(getenv)
	if err != nil {
		tb.Fatalf("config: %v", err)
	}
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.JobPollInterval = 50 * time.Millisecond
	cfg.MailRetryBase = 100 * time.Millisecond
	cfg.ResponseFloor = 20 * time.Millisecond
	cfg.DevMailDir = mailDir
	for _, o := range opts {
		o(&cfg)
	}
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	logger := slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: lvl}))
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		tb.Fatalf("listen: %v", err)
	}
	if cfg.PublicPort == 0 {
		cfg.PublicPort = ln.Addr().(*net.TCPAddr).Port
	}
	var a *app.App
	if tel != nil {
		a, err = app.NewWithTelemetry(ctx, cfg, logger, tel)
	} else {
		a, err = app.New(ctx, cfg, logger, getenv)
	}
	if err != nil {
		cancel()
		ln.Close()
		tb.Fatalf("start server: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("server stopped with error: %v", err)
		}
	})
	s := &Server{App: a, MailDir: mailDir, Addr: ln.Addr().String(), Port: ln.Addr().(*net.TCPAddr).Port, Config: cfg,
		client: &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
			// Keep connections for reuse: tests with dozens of concurrent requests would
			// otherwise leave thousands of sockets in TIME_WAIT across a parallel suite and
			// run out of local ports ("cannot assign requested address").
			Transport: &http.Transport{Proxy: nil, MaxIdleConns: 256, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}}}
	s.waitListening(tb)
	// Runs before the server stops (cleanups run last-in first-out): a connection the
	// client dialled but never used counts as active for 5 s in http.Server.Shutdown.
	tb.Cleanup(s.client.CloseIdleConnections)
	return s
}

func (s *Server) waitListening(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := s.client.Get("http://" + s.Addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("server did not answer on %s", s.Addr)
}

// Response is a read response.
type Response struct {
	*http.Response
	Body []byte
}

// JSON decodes the body into v, failing the test on error.
func (r *Response) JSON(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("decode %s: %v\nbody: %s", r.Request.URL, err, r.Body)
	}
}

// ErrorCode returns error.code of a JSON error body ("" when there is none).
func (r *Response) ErrorCode() string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Code
}

// Request describes one request to the server. Host is the Host header (a tenant host
// such as "acme.localhost"); the connection always goes to 127.0.0.1, because Go's
// resolver does not resolve *.localhost.
type Request struct {
	Method string
	Host   string
	Path   string
	Body   any // string, []byte or a value encoded as JSON
	Header http.Header
}

// Do sends req and reads the whole response.
func (s *Server) Do(tb testing.TB, req Request) *Response {
	tb.Helper()
	if req.Method == "" {
		req.Method = http.MethodGet
	}
	var body io.Reader
	switch b := req.Body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			tb.Fatalf("encode body: %v", err)
		}
		body = bytes.NewReader(js)
	}
	r, err := http.NewRequest(req.Method, "http://"+s.Addr+req.Path, body)
	if err != nil {
		tb.Fatalf("new request: %v", err)
	}
	if req.Host != "" {
		r.Host = req.Host
	}
	for k, vs := range req.Header {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	if body != nil && r.Header.Get("Content-Type") == "" {
		r.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(r)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, req.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read body: %v", err)
	}
	return &Response{Response: resp, Body: b}
}
