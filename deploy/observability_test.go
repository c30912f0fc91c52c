package deploy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

var metricRe = regexp.MustCompile(`\b((?:gatehouse|http|go|process)_[a-z0-9_]+)`)

// TestDashboardAndAlerts: the Grafana dashboard and the alert rules parse, and every metric
// they query is one Gatehouse exports — seen in a live scrape after some traffic, or (for
// counters that have not counted anything yet, such as failed mails) declared in the code.
func TestDashboardAndAlerts(t *testing.T) {
	var exprs []string
	b, err := os.ReadFile("grafana/gatehouse-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil || len(dash.Panels) == 0 {
		t.Fatalf("dashboard: %v", err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	b, err = os.ReadFile("prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil || len(rules.Groups) == 0 {
		t.Fatalf("alerts: %v", err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" {
				t.Fatalf("rule without name or expression: %+v", r)
			}
			exprs = append(exprs, r.Expr)
		}
	}

	// A live scrape after a little traffic: requests, a failed and a good sign-in.
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	tn := testutil.NewTenant(t, d, "obs")
	if _, err := srv.App.Accounts.CreateVerifiedUser(t.Context(), tn, "obs@example.com", "purple monkey dishwasher", ""); err != nil {
		t.Fatal(err)
	}
	host := tn.Slug + ".localhost"
	for _, pw := range []string{"wrong password here", "purple monkey dishwasher"} {
		srv.Do(t, testutil.Request{Method: "POST", Host: host, Path: "/api/v1/login", Body: map[string]string{"email": "obs@example.com", "password": pw}})
	}
	srv.Do(t, testutil.Request{Host: host, Path: "/api/v1/session"})
	rec := httptest.NewRecorder()
	srv.App.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	scrape := rec.Body.String()
	src, err := exec.Command("git", "-C", "..", "grep", "-h", "-o", `"gatehouse\.[a-z_.]*"`, "--", "internal").Output()
	if err != nil {
		t.Fatalf("git grep: %v", err)
	}
	declared := string(src)
	for _, e := range exprs {
		for _, m := range metricRe.FindAllString(e, -1) {
			if strings.Contains(scrape, "\n"+m) || strings.HasPrefix(scrape, m) || strings.Contains(scrape, m+`="`) {
				continue // an exported metric, or a label of one
			}
			// An OpenTelemetry counter gatehouse.x.y is exported as gatehouse_x_y_total.
			instrument := strings.ReplaceAll(strings.TrimSuffix(m, "_total"), "_", ".")
			if strings.HasPrefix(m, "gatehouse_") && strings.HasSuffix(m, "_total") && strings.Contains(declared, `"`+instrument+`"`) {
				continue
			}
			t.Errorf("%q queries %s, which Gatehouse does not export", e, m)
		}
	}
}
