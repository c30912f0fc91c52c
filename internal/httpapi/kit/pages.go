package kit

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/internal/redirect"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/web"
)

// Page renders a page of the tenant host with its view (a struct of the page's package)
// inside the layout: brand, logo, colour stylesheet, the signed-in address.
func (rs *Responder) Page(w http.ResponseWriter, r *http.Request, status int, page, title string, view any) {
	rs.render(w, r, status, page, title, view, false)
}

// AdminPage renders a page of the admin portal (with its navigation).
func (rs *Responder) AdminPage(w http.ResponseWriter, r *http.Request, status int, page, title string, view any) {
	rs.render(w, r, status, page, title, view, true)
}

func (rs *Responder) render(w http.ResponseWriter, r *http.Request, status int, page, title string, view any, admin bool) {
	t, _ := TenantFrom(r.Context())
	p := web.Page{Title: title, Brand: t.DisplayName(), LogoURL: t.Policy.Branding.LogoURL, BrandCSS: BrandCSSURL(t),
		RequestID: Info(r.Context()).ID, Admin: admin, Path: r.URL.Path, SignupOn: t.Policy.Signup.Enabled, Data: view}
	if pr, ok := PrincipalFrom(r.Context()); ok {
		p.SignedIn = pr.Email
	}
	if err := rs.pages.Render(w, status, page, p); err != nil {
		rs.Error(w, r, err)
	}
}

// BrandCSSURL is the tenant's colour stylesheet, named by a hash of the colour so that a
// saved colour shows at once (a new URL) while the stylesheet itself may be cached; "" for
// a tenant without a colour.
func BrandCSSURL(t tenant.Tenant) string {
	c := t.Policy.Branding.PrimaryColor
	if c == "" {
		return ""
	}
	return "/brand.css?v=" + BrandVersion(c)
}

// BrandVersion is the version part of BrandCSSURL for colour c.
func BrandVersion(c string) string {
	sum := sha256.Sum256([]byte(c))
	return hex.EncodeToString(sum[:6])
}

// FormError turns an application error into a message for the form and its status (and
// the Retry-After header of a limit). Internal errors are answered here (ok false).
func (rs *Responder) FormError(w http.ResponseWriter, r *http.Request, err error) (msg string, status int, ok bool) {
	e := apperr.From(err)
	if e.Kind == apperr.Internal {
		rs.Error(w, r, err)
		return "", 0, false
	}
	if secs, ok := ratelimit.RetryAfter(err); ok {
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	return e.Message, StatusOf[e.Kind], true
}

// MessageView is the view of the shared message page.
type MessageView struct {
	Heading, Text, LinkText, Link string
}

// ContinueView is the shared page that sends the browser on to another origin after a
// form post (an IdP; an app, for the OpenID Provider). Heading and Button default to the
// IdP's wording.
type ContinueView struct{ URL, Text, Heading, Button string }

// Message renders the shared message page: a heading, a sentence and one link onwards.
func (rs *Responder) Message(w http.ResponseWriter, r *http.Request, title, text, linkText, link string) {
	rs.Page(w, r, http.StatusOK, "message", title, MessageView{Heading: title, Text: text, LinkText: linkText, Link: link})
}

// SafeReturn is the rebuilt same-host path of a return_to value, or /account
// (redirect.Local decides, for every redirect).
func SafeReturn(p string) string { return redirect.LocalOr(p, "/account") }
