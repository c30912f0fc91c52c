// Package archtest holds the tests that keep the code base's shape: which packages may
// reach the database, and how long a hand-written file may grow.
package archtest

import (
	"bufio"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/gatehouse-id/gatehouse"

// root is the module's directory (this package is internal/archtest).
func root(t *testing.T) string {
	t.Helper()
	r, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(r, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s", r)
	}
	return r
}

type pkg struct {
	dir     string // relative to the module root
	imports map[string]bool
}

// packages parses the import lists of every non-test Go file under the module.
func packages(t *testing.T) map[string]*pkg {
	t.Helper()
	r := root(t)
	out := map[string]*pkg{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(r, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") && path != r {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(r, filepath.Dir(path))
		p := out[rel]
		if p == nil {
			p = &pkg{dir: filepath.ToSlash(rel), imports: map[string]bool{}}
			out[rel] = p
		}
		for _, im := range f.Imports {
			v, _ := strconv.Unquote(im.Path.Value)
			p.imports[v] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// servesRequests: a package that routes requests (chi) or renders pages (internal/web).
func servesRequests(p *pkg) bool {
	return p.imports["github.com/go-chi/chi/v5"] || p.imports[module+"/internal/web"] || strings.HasPrefix(p.dir, "internal/httpapi")
}

// wiring may reach everything: it builds the services.
func wiring(dir string) bool {
	return dir == "internal/app" || dir == "internal/cli" || strings.HasPrefix(dir, "cmd/")
}

// TestHTTPReachesTheDatabaseOnlyThroughDomains: no package that routes or renders requests
// imports the store or the generated queries; each domain owns its operations and the HTTP
// code decodes, calls one method and encodes. There is no allowlist.
func TestHTTPReachesTheDatabaseOnlyThroughDomains(t *testing.T) {
	pkgs := packages(t)
	checked := 0
	for _, p := range pkgs {
		if wiring(p.dir) || !servesRequests(p) {
			continue
		}
		checked++
		for _, forbidden := range []string{module + "/internal/store", module + "/internal/store/sqlcgen"} {
			if p.imports[forbidden] {
				t.Errorf("%s serves requests and imports %s: call a domain service instead", p.dir, forbidden)
			}
		}
	}
	if checked == 0 {
		t.Fatal("found no package that serves requests: the rule checks nothing")
	}
}

// TestNoHugeFiles: a hand-written Go file past ~700 lines is a sign to split along the
// domain (generated sqlc code is exempt).
func TestNoHugeFiles(t *testing.T) {
	const maxLines = 700
	r := root(t)
	var huge []string
	err := filepath.WalkDir(r, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != r {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		n, generated := 0, false
		for sc.Scan() {
			if n < 5 && strings.HasPrefix(sc.Text(), "// Code generated ") {
				generated = true
			}
			n++
		}
		if !generated && n > maxLines {
			rel, _ := filepath.Rel(r, path)
			huge = append(huge, rel+" ("+strconv.Itoa(n)+" lines)")
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(huge)
	for _, h := range huge {
		t.Errorf("%s: over %d lines, split it along the domain", h, maxLines)
	}
}
