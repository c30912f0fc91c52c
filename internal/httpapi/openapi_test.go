package httpapi

import (
	"bytes"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/gatehouse-id/gatehouse/internal/httpapi/adminhttp"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
)

// TestOpenAPIMatchesRouter: every JSON route of the router is in docs/openapi.yaml with the
// same method, and the document describes no route that does not exist.
func TestOpenAPIMatchesRouter(t *testing.T) {
	b, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	var documented []string
	for p, ops := range doc.Paths {
		for m := range ops {
			documented = append(documented, strings.ToUpper(m)+" "+p)
		}
	}
	sort.Strings(documented)

	pages, err := Pages()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := kit.NewResponder(slog.New(slog.DiscardHandler), pages)
	if err != nil {
		t.Fatal(err)
	}
	rt := routeTable(rs, Config{BaseDomain: "localhost"}, nil, nil, nil, nil, nil, nil, adminhttp.Deps{}, oidcDeps{}, nil, nil, nil)
	var served []string
	for _, r := range []chi.Router{rt.mux, rt.base, rt.tenantHost} {
		_ = chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
			route = strings.TrimSuffix(route, "/")
			if strings.HasPrefix(route, "/api/") || route == "/healthz" || route == "/readyz" {
				served = append(served, method+" "+route)
			}
			return nil
		})
	}
	sort.Strings(served)
	if d := cmp.Diff(documented, served); d != "" {
		t.Fatalf("docs/openapi.yaml and the router disagree (-documented +served):\n%s", d)
	}
}

// TestErrorCodesDocumented: every error code in the code base is listed in the OpenAPI file.
func TestErrorCodesDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	codeRe := regexp.MustCompile(`apperr\.New\(apperr\.\w+, "([a-z_]+)"`)
	var missing []string
	var files []string
	err = filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == ".gatehouse") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range codeRe.FindAllSubmatch(src, -1) {
			if !bytes.Contains(b, []byte("- "+string(m[1])+" ")) && !bytes.Contains(b, []byte("- "+string(m[1])+"\n")) {
				missing = append(missing, string(m[1])+" ("+f+")")
			}
		}
	}
	if len(missing) > 0 {
		t.Fatalf("error codes missing from docs/openapi.yaml ErrorCode: %v", missing)
	}
}
