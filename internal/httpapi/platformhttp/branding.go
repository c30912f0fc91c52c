package platformhttp

import (
	"fmt"
	"net/http"

	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
)

// HandleBrandCSS serves the tenant's colour as a stylesheet (the pages' CSP allows no
// inline styles). The colour was validated as #rrggbb when it was saved. Pages link it as
// /brand.css?v=HASH (kit.BrandCSSURL): the URL of the current colour may be cached for a
// year, any other is not cached, so a saved colour shows on the next page.
func HandleBrandCSS() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		c := t.Policy.Branding.PrimaryColor
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		if c != "" && r.URL.Query().Get("v") == kit.BrandVersion(c) {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		if c != "" {
			fmt.Fprintf(w, ":root { --primary: %s; }\n", c)
		}
	}
}
