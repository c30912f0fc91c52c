package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPerfScript runs the one command of docs/performance.md (scripts/perf.sh) for a few
// seconds against a real `gatehouse dev` and a second node: every operation of every run
// must succeed without errors, every ratio and scale point must be there, and the chart
// must be written. It checks the tool, not the figures.
func TestPerfScript(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two Gatehouse processes and a private PostgreSQL")
	}
	out := t.TempDir()
	cmd := exec.Command("bash", "../../scripts/perf.sh")
	cmd.Env = append(os.Environ(), "OUT="+out, "DURATION=2s", "CONNS=8", "LOAD_TENANTS=2",
		"SCALE_TENANTS=10,30", "SCALE_USERS=100,300", "SCALE_DURATION=1s", "MEMBENCH=0", "ACS_N=300")
	b, err := cmd.CombinedOutput()
	t.Logf("%s", b)
	if err != nil {
		t.Fatalf("scripts/perf.sh: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(out, "perf.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"bare net/http session check": {"session_check"}, "bare net/http session check (in-process)": {"session_check"},
		"session check (cached)":                    {"session_check"},
		"bare net/http session check (lean client)": {"session_check"}, "session check (cached, lean client)": {"session_check"},
		"session check (uncached node)": {"session_check"}, "login": {"login"}, "SAML ACS": {"saml_acs"},
		"signup+verify": {"signup_verify"}, "mix": {"session_check", "session_list", "login", "saml_acs", "signup_verify"},
		"OIDC authorize (to the code)": {"oidc_authorize"}, "OIDC token exchange": {"oidc_code"}, "OIDC refresh": {"oidc_refresh"},
		"bare net/http userinfo": {"oidc_userinfo"}, "bare net/http introspection": {"oidc_introspect"},
		"OIDC userinfo": {"oidc_userinfo"}, "OIDC introspection": {"oidc_introspect"},
		"sign-up, no endpoint": {"signup"}, "sign-up, endpoint subscribed": {"signup"}, "sign-up, no endpoint (again)": {"signup"},
		"webhook test events": {"webhook_test"},
	}
	for _, p := range r.Phases {
		ops, ok := want[p.Name]
		if !ok {
			t.Errorf("unexpected run %q", p.Name)
			continue
		}
		delete(want, p.Name)
		for _, name := range ops {
			o := p.op(name)
			if o.Requests == 0 || o.Errors != 0 || o.RPS <= 0 || o.P50ms <= 0 || o.P99ms < o.P50ms {
				t.Errorf("%s/%s: %+v", p.Name, name, o)
			}
		}
	}
	if len(want) != 0 {
		t.Errorf("runs missing from the report: %v", want)
	}
	if len(r.Ratios) != 16 || len(r.Bounds) != 8 {
		t.Errorf("ratios %d (want 16), bounds %d (want 8)", len(r.Ratios), len(r.Bounds))
	}
	if h := r.Webhooks; h == nil || h.Events == 0 || h.Acknowledged < h.Events || h.Refused != 0 || h.EventsPerSec <= 0 || h.TestAckedPerSec <= 0 {
		t.Errorf("webhooks: %+v", h)
	}
	for _, q := range r.Ratios {
		if q.Product <= 0 || q.Limit <= 0 {
			t.Errorf("ratio %s not measured: %+v", q.Name, q)
		}
	}
	if r.Scale == nil || len(r.Scale.Points) != 4 || len(r.Scale.Flat) != 6 {
		t.Fatalf("scale: %+v", r.Scale)
	}
	for _, p := range r.Scale.Points {
		if p.SessionCheck.Errors+p.Login.Errors != 0 || p.SessionCheck.Requests == 0 || p.Login.Requests == 0 || p.SessionUncached == nil {
			t.Errorf("scale point %+v", p)
		}
	}
	if last := r.Scale.Points[3]; last.Users < 300 || r.Scale.Points[1].Tenants < 30 {
		t.Errorf("the database did not grow: %+v", r.Scale.Points)
	}
	svg, err := os.ReadFile(filepath.Join(out, "perf.svg"))
	if err != nil || !strings.Contains(string(svg), "<svg") || !strings.Contains(string(svg), "SAML ACS vs bare crewjam") {
		t.Fatalf("chart: %v %.200s", err, svg)
	}
}
