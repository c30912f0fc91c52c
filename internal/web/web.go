// Package web renders Gatehouse's HTML pages from embedded html/template files and serves
// their static assets. Pages work without JavaScript and obey a strict CSP (no inline
// scripts or styles). The layout and the shared pages live here; each HTTP domain package
// brings its own page templates (NewRenderer takes their file systems).
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// shared are the templates every page is parsed with.
var shared = []string{"layout.html", "admin_nav.html"}

// assetVersions maps each static file to the first 12 hex digits of its SHA-256.
var assetVersions = func() map[string]string {
	out := map[string]string{}
	_ = fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[strings.TrimPrefix(p, "static/")] = hex.EncodeToString(sum[:6])
		return nil
	})
	return out
}()

// Asset is the content-hashed URL of a static file: /assets/NAME?v=HASH. A new build with
// a changed file has a new URL, so the file can be cached for a year.
func Asset(name string) string {
	v, ok := assetVersions[name]
	if !ok {
		panic("web: no asset " + name)
	}
	return "/assets/" + name + "?v=" + v
}

// funcs are the helpers templates may call.
var funcs = template.FuncMap{
	"list3": func(a, b, c string) []string { return []string{a, b, c} },
	"asset": Asset,
}

// Renderer renders named pages inside the shared layout.
type Renderer struct {
	pages map[string]*template.Template
}

// Templates are the shared pages (message, error, landing…) of this package.
func Templates() fs.FS {
	sub, _ := fs.Sub(templateFS, "templates")
	return sub
}

// NewRenderer parses every page template of each set (a file system with NAME.html at its
// root) with the layout. Page names are unique across sets.
func NewRenderer(sets ...fs.FS) (*Renderer, error) {
	r := &Renderer{pages: map[string]*template.Template{}}
	layout := Templates()
	for _, set := range append([]fs.FS{layout}, sets...) {
		names, err := fs.Glob(set, "*.html")
		if err != nil {
			return nil, fmt.Errorf("list templates: %w", err)
		}
		for _, n := range names {
			if set == layout && (n == shared[0] || n == shared[1]) {
				continue
			}
			page := strings.TrimSuffix(n, ".html")
			if _, dup := r.pages[page]; dup {
				return nil, fmt.Errorf("web: page %q defined twice", page)
			}
			t, err := template.New("layout").Funcs(funcs).ParseFS(layout, shared...)
			if err != nil {
				return nil, fmt.Errorf("parse layout: %w", err)
			}
			if t, err = t.ParseFS(set, n); err != nil {
				return nil, fmt.Errorf("parse %s: %w", n, err)
			}
			r.pages[page] = t
		}
	}
	return r, nil
}

// Page is the data every page gets.
type Page struct {
	Title     string
	Brand     string // tenant display name, or "Gatehouse"
	LogoURL   string // tenant logo (https), optional
	BrandCSS  string // the tenant's colour stylesheet (content-hashed URL), or ""
	RequestID string
	SignedIn  string // the signed-in user's address, or ""
	Admin     bool   // an admin portal page (navigation)
	Path      string // the request's path (the navigation marks the current section)
	SignupOn  bool   // the tenant takes self-service sign-ups (pages link /signup only then)
	Data      any    // the page's own view, a struct of the page's package
}

// Current reports whether the page is in the portal section at href (for aria-current):
// the section itself or a page below it; /admin matches only the overview.
func (p Page) Current(href string) bool {
	if href == "/admin" {
		return p.Path == "/admin" || p.Path == "/admin/"
	}
	return p.Path == href || strings.HasPrefix(p.Path, href+"/")
}

// Render writes page with status. It renders into a buffer first, so a template error
// becomes a clean 500 instead of half a page.
func (r *Renderer) Render(w http.ResponseWriter, status int, page string, p Page) error {
	t, ok := r.pages[page]
	if !ok {
		return fmt.Errorf("web: no page %q", page)
	}
	if p.Brand == "" {
		p.Brand = "Gatehouse"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		return fmt.Errorf("render %s: %w", page, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// Has reports whether page exists (tests).
func (r *Renderer) Has(page string) bool { _, ok := r.pages[page]; return ok }

// Static serves /assets/*: a request naming the current version (?v=) may be cached for a
// year, anything else for a minute.
func Static() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/assets/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/assets/")
		if v := r.URL.Query().Get("v"); v != "" && v == assetVersions[name] {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "public, max-age=60")
		}
		files.ServeHTTP(w, r)
	})
}

// DataURL builds a data: URL for an embedded image (allowed by the pages' CSP img-src).
func DataURL(mediaType, base64Data string) template.URL {
	return template.URL("data:" + mediaType + ";base64," + base64Data)
}

// Names lists every page (tests render each one).
func (r *Renderer) Names() []string {
	out := make([]string, 0, len(r.pages))
	for n := range r.pages {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
