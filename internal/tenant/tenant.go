// Package tenant owns tenants: the global tenants table, their policies, resolution of a
// request's host to a tenant, and declarative configuration from tenants/*.yaml.
package tenant

import (
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

// Statuses.
const (
	StatusActive    = "active"
	StatusSuspended = "suspended"
)

// Tenant is one customer of the Gatehouse operator, reached at {slug}.{base domain}.
type Tenant struct {
	ID         uuid.UUID  `json:"id"`
	Slug       string     `json:"slug"`
	Name       string     `json:"name"`
	Status     string     `json:"status"`
	Policy     Policy     `json:"policy"`
	PurgeAfter *time.Time `json:"purge_after,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

// DisplayName is the name people see: the branding's, else the tenant's.
func (t Tenant) DisplayName() string {
	if t.Policy.Branding.DisplayName != "" {
		return t.Policy.Branding.DisplayName
	}
	return t.Name
}

func fromRow(r sqlcgen.Tenant) Tenant {
	p, err := ParsePolicy(r.Policy, false)
	if err != nil {
		// A stored policy that no longer parses must not take the tenant down: defaults apply,
		// and Validate on the next update will name the problem.
		p = DefaultPolicy()
	}
	return Tenant{ID: r.ID, Slug: r.Slug, Name: r.Name, Status: r.Status, Policy: p,
		PurgeAfter: r.PurgeAfter, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

var slugPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// reservedSlugs are host names an operator will want for other things.
var reservedSlugs = []string{"www", "api", "admin", "app", "mail", "smtp", "static", "assets",
	"cdn", "status", "docs", "help", "support", "login", "auth", "sso", "id", "localhost"}

// ErrInvalidSlug is returned for a slug that cannot be a tenant's DNS label.
var ErrInvalidSlug = apperr.New(apperr.Invalid, "invalid_slug",
	"A tenant slug is 1-63 lower-case letters, digits or hyphens, starts and ends with a letter or digit, and is not reserved.")

// ValidateSlug checks that s can be a tenant's host label.
func ValidateSlug(s string) error {
	if !slugPattern.MatchString(s) || slices.Contains(reservedSlugs, s) {
		return ErrInvalidSlug
	}
	return nil
}

// ErrNotFound is the answer for unknown and suspended tenants alike.
var ErrNotFound = apperr.New(apperr.NotFound, "tenant_not_found", "There is no such tenant.")

// URLs builds absolute links to tenant hosts (for emails and redirects). Links never take
// their host from a request: only from the slug and the configured base domain.
type URLs struct {
	Scheme     string // https or http
	BaseDomain string
	Port       int // 0: the scheme's default
}

// Host returns slug's host, with the port when one is configured.
func (u URLs) Host(slug string) string {
	h := slug + "." + u.BaseDomain
	if u.Port != 0 && !(u.Scheme == "https" && u.Port == 443) && !(u.Scheme == "http" && u.Port == 80) {
		h += ":" + strconv.Itoa(u.Port)
	}
	return h
}

// Link returns scheme://{slug}.{base}[:port]{path}?{query}.
func (u URLs) Link(slug, path string, query url.Values) string {
	l := url.URL{Scheme: u.Scheme, Host: u.Host(slug), Path: path}
	if len(query) > 0 {
		l.RawQuery = query.Encode()
	}
	return l.String()
}
