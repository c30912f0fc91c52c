// Package web renders Gatehouse's HTML pages from embedded html/template files and serves
// their static assets. Pages work without JavaScript and obey a strict CSP (no inline
// scripts or styles).
package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// funcs are the helpers templates may call.
var funcs = template.FuncMap{
	"list3": func(a, b, c string) []string { return []string{a, b, c} },
}

// Renderer renders named pages inside the shared layout.
type Renderer struct {
	pages map[string]*template.Template
}

// NewRenderer parses every page template with the layout.
func NewRenderer() (*Renderer, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("list templates: %w", err)
	}
	r := &Renderer{pages: map[string]*template.Template{}}
	for _, n := range names {
		if n == "templates/layout.html" || n == "templates/admin_nav.html" {
			continue
		}
		t, err := template.New("layout").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/admin_nav.html", n)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", n, err)
		}
		r.pages[n[len("templates/"):len(n)-len(".html")]] = t
	}
	return r, nil
}

// Page is the data every page gets.
type Page struct {
	Title     string
	Brand     string // tenant display name, or "Gatehouse"
	LogoURL   string // tenant logo (https), optional
	BrandCSS  bool   // the tenant has a colour: link /brand.css
	RequestID string
	Data      any
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

// Static serves /assets/*.
func Static() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	return http.StripPrefix("/assets/", http.FileServerFS(sub))
}

// DataURL builds a data: URL for an embedded image (allowed by the pages' CSP img-src).
func DataURL(mediaType, base64Data string) template.URL {
	return template.URL("data:" + mediaType + ";base64," + base64Data)
}
