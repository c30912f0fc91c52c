package oidcop

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// App is a tenant's OAuth 2 / OpenID Connect client, as the admin API shows it.
type App struct {
	ID                     uuid.UUID `json:"id"`
	ClientID               string    `json:"client_id"`
	Name                   string    `json:"name"`
	Type                   string    `json:"type"`
	RedirectURIs           []string  `json:"redirect_uris"`
	PostLogoutRedirectURIs []string  `json:"post_logout_redirect_uris"`
	BackchannelLogoutURI   string    `json:"backchannel_logout_uri,omitempty"`
	FirstParty             bool      `json:"first_party"`
	AllowedScopes          []string  `json:"allowed_scopes"`
	GrantTypes             []string  `json:"grant_types"`
	AccessTokenTTLSeconds  int       `json:"access_token_ttl_seconds"`
	RefreshTokenTTLSeconds int       `json:"refresh_token_ttl_seconds"`
	// PreviousSecretExpiresAt is set while a rotated-out secret still works.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
	CreatedAt               time.Time  `json:"created_at"`
	UpdatedAt               time.Time  `json:"updated_at"`
}

// AppInput creates or changes an app; nil fields keep their value (or take the default).
type AppInput struct {
	Name                   *string   `json:"name"`
	Type                   *string   `json:"type"`
	RedirectURIs           *[]string `json:"redirect_uris"`
	PostLogoutRedirectURIs *[]string `json:"post_logout_redirect_uris"`
	BackchannelLogoutURI   *string   `json:"backchannel_logout_uri"`
	FirstParty             *bool     `json:"first_party"`
	AllowedScopes          *[]string `json:"allowed_scopes"`
	GrantTypes             *[]string `json:"grant_types"`
	AccessTokenTTLSeconds  *int      `json:"access_token_ttl_seconds"`
	RefreshTokenTTLSeconds *int      `json:"refresh_token_ttl_seconds"`
}

// Created is a new app, or one with a new secret: the secret exists only here.
type Created struct {
	App          App    `json:"app"`
	ClientSecret string `json:"client_secret,omitempty"`
}

var (
	ErrAppNotFound  = apperr.New(apperr.NotFound, "not_found", "There is no such app.")
	ErrInvalidApp   = apperr.New(apperr.Invalid, "invalid_app", "The app settings are not valid.")
	ErrPublicSecret = apperr.New(apperr.Invalid, "invalid_app", "A public app has no secret to rotate.")
)

func invalidApp(field, reason string) error {
	return ErrInvalidApp.WithDetails(map[string]any{"field": field, "reason": reason})
}

// Scopes and grant types an app may be allowed.
var (
	knownScopes = []string{"openid", "profile", "email", "offline_access"}
	knownGrants = []string{"authorization_code", "refresh_token", "client_credentials"}
)

// SecretOverlap is how long a rotated-out client secret keeps working.
const SecretOverlap = 24 * time.Hour

func newSecret() (string, []byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	s := "ghs_" + base64.RawURLEncoding.EncodeToString(b)
	h := sha256.Sum256([]byte(s))
	return s, h[:], nil
}

func newClientID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "app_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)), nil
}

func appFrom(r sqlcgen.App) App {
	a := App{ID: r.ID, ClientID: r.ClientID, Name: r.Name, Type: r.Type, RedirectURIs: r.RedirectURIs,
		PostLogoutRedirectURIs: r.PostLogoutRedirectURIs, FirstParty: r.FirstParty, AllowedScopes: r.AllowedScopes,
		GrantTypes: r.GrantTypes, AccessTokenTTLSeconds: int(r.AccessTokenTTLSeconds),
		RefreshTokenTTLSeconds: int(r.RefreshTokenTTLSeconds), CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	if r.BackchannelLogoutURI != nil {
		a.BackchannelLogoutURI = *r.BackchannelLogoutURI
	}
	if r.PreviousSecretExpiresAt != nil && r.PreviousSecretHash != nil {
		a.PreviousSecretExpiresAt = r.PreviousSecretExpiresAt
	}
	return a
}

// merge applies in over a (defaults for a new app) and validates the result.
func (s *Service) merge(a App, in AppInput, creating bool) (App, error) {
	if in.Name != nil {
		a.Name = strings.TrimSpace(*in.Name)
	}
	if a.Name == "" || utf8.RuneCountInString(a.Name) > 200 || strings.ContainsAny(a.Name, "\x00\r\n") {
		return a, invalidApp("name", "give a name of 1 to 200 characters on one line")
	}
	if in.Type != nil {
		if !creating && *in.Type != a.Type {
			return a, invalidApp("type", "the type of an app cannot change; create a new app")
		}
		a.Type = *in.Type
	}
	if a.Type != "confidential" && a.Type != "public" {
		return a, invalidApp("type", `must be "confidential" or "public"`)
	}
	var err error
	if in.RedirectURIs != nil {
		if a.RedirectURIs, err = redirectURIs("redirect_uris", *in.RedirectURIs); err != nil {
			return a, err
		}
	}
	if in.PostLogoutRedirectURIs != nil {
		if a.PostLogoutRedirectURIs, err = redirectURIs("post_logout_redirect_uris", *in.PostLogoutRedirectURIs); err != nil {
			return a, err
		}
	}
	if in.BackchannelLogoutURI != nil {
		a.BackchannelLogoutURI = strings.TrimSpace(*in.BackchannelLogoutURI)
		if a.BackchannelLogoutURI != "" {
			u, err := s.out.CheckURL(a.BackchannelLogoutURI, "back-channel logout URIs")
			if err != nil || u.Fragment != "" {
				return a, invalidApp("backchannel_logout_uri", "give an absolute https URL without a fragment")
			}
		}
	}
	if in.FirstParty != nil {
		a.FirstParty = *in.FirstParty
	}
	if in.AllowedScopes != nil {
		a.AllowedScopes = []string{} // an empty list is stored as one, never as NULL
		for _, sc := range *in.AllowedScopes {
			if !slices.Contains(knownScopes, sc) {
				return a, invalidApp("allowed_scopes", "scopes are openid, profile, email and offline_access")
			}
			if !slices.Contains(a.AllowedScopes, sc) {
				a.AllowedScopes = append(a.AllowedScopes, sc)
			}
		}
	}
	if in.GrantTypes != nil {
		a.GrantTypes = []string{}
		for _, g := range *in.GrantTypes {
			if !slices.Contains(knownGrants, g) {
				return a, invalidApp("grant_types", "grant types are authorization_code, refresh_token and client_credentials")
			}
			if !slices.Contains(a.GrantTypes, g) {
				a.GrantTypes = append(a.GrantTypes, g)
			}
		}
	}
	if len(a.GrantTypes) == 0 {
		return a, invalidApp("grant_types", "give at least one grant type")
	}
	if slices.Contains(a.GrantTypes, "authorization_code") && !slices.Contains(a.AllowedScopes, "openid") {
		// An app that signs users in needs openid; a machine-to-machine app may have no scope.
		return a, invalidApp("allowed_scopes", "an app that signs users in needs the openid scope")
	}
	if a.Type == "public" && slices.Contains(a.GrantTypes, "client_credentials") {
		return a, invalidApp("grant_types", "client_credentials needs a confidential app (it has a secret)")
	}
	if slices.Contains(a.GrantTypes, "authorization_code") && len(a.RedirectURIs) == 0 {
		return a, invalidApp("redirect_uris", "the authorization code flow needs at least one redirect URI")
	}
	if in.AccessTokenTTLSeconds != nil {
		a.AccessTokenTTLSeconds = *in.AccessTokenTTLSeconds
	}
	if a.AccessTokenTTLSeconds < 60 || a.AccessTokenTTLSeconds > 86400 {
		return a, invalidApp("access_token_ttl_seconds", "from 60 seconds to 24 hours")
	}
	if in.RefreshTokenTTLSeconds != nil {
		a.RefreshTokenTTLSeconds = *in.RefreshTokenTTLSeconds
	}
	if a.RefreshTokenTTLSeconds < 300 || a.RefreshTokenTTLSeconds > 365*86400 {
		return a, invalidApp("refresh_token_ttl_seconds", "from 5 minutes to 365 days")
	}
	return a, nil
}

// redirectURIs validates redirect URIs (exact match later): https; http only to a loopback
// host (native apps, RFC 8252); a private-use scheme with a dot (com.example.app:/cb); no
// fragment, no wildcard.
func redirectURIs(field string, in []string) ([]string, error) {
	if len(in) > 20 {
		return nil, invalidApp(field, "at most 20 URIs")
	}
	out := []string{}
	for _, raw := range in {
		raw = strings.TrimSpace(raw)
		u, err := url.Parse(raw)
		if err != nil || len(raw) > 2048 || u.Fragment != "" || strings.Contains(raw, "*") || u.Scheme == "" {
			return nil, invalidApp(field, "give absolute URIs without fragments or wildcards")
		}
		switch {
		case u.Scheme == "https" && u.Host != "":
		case u.Scheme == "http" && isLoopback(u.Hostname()):
		case strings.Contains(u.Scheme, ".") && u.Scheme != "http" && u.Scheme != "https":
		default:
			return nil, invalidApp(field, "use https (http only for 127.0.0.1, [::1] or localhost)")
		}
		if !slices.Contains(out, raw) {
			out = append(out, raw)
		}
	}
	return out, nil
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1" || strings.HasSuffix(host, ".localhost")
}

// CreateApp registers an app. A confidential app gets a secret, returned once.
// Errors: invalid_app.
func (s *Service) CreateApp(ctx context.Context, t tenant.Tenant, in AppInput, who audit.Who) (Created, error) {
	a, err := s.merge(App{Type: "confidential", RedirectURIs: []string{}, PostLogoutRedirectURIs: []string{},
		AllowedScopes: slices.Clone(knownScopes), GrantTypes: []string{"authorization_code", "refresh_token"},
		AccessTokenTTLSeconds: 300, RefreshTokenTTLSeconds: 30 * 86400}, in, true)
	if err != nil {
		return Created{}, err
	}
	clientID, err := newClientID()
	if err != nil {
		return Created{}, err
	}
	var secret string
	var hash []byte
	if a.Type == "confidential" {
		if secret, hash, err = newSecret(); err != nil {
			return Created{}, err
		}
	}
	var out Created
	err = s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		row, err := q.InsertApp(ctx, sqlcgen.InsertAppParams{ClientID: clientID, Name: a.Name, Type: a.Type, SecretHash: hash,
			RedirectURIs: a.RedirectURIs, PostLogoutRedirectURIs: a.PostLogoutRedirectURIs, BackchannelLogoutURI: optional(a.BackchannelLogoutURI),
			FirstParty: a.FirstParty, AllowedScopes: a.AllowedScopes, GrantTypes: a.GrantTypes,
			AccessTokenTTLSeconds: int32(a.AccessTokenTTLSeconds), RefreshTokenTTLSeconds: int32(a.RefreshTokenTTLSeconds)})
		if err != nil {
			return err
		}
		out = Created{App: appFrom(row), ClientSecret: secret}
		return audit.Record(ctx, q, who, audit.Event{Action: audit.AppCreated, SubjectID: row.ID, SubjectLabel: row.Name,
			Details: map[string]any{"client_id": row.ClientID, "type": row.Type, "first_party": row.FirstParty}})
	})
	return out, err
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// UpdateApp changes an app. Errors: not_found, invalid_app.
func (s *Service) UpdateApp(ctx context.Context, t tenant.Tenant, id uuid.UUID, in AppInput, who audit.Who) (App, error) {
	var out App
	defer s.cache.dropApp(id)
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		row, err := q.GetApp(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return ErrAppNotFound
		}
		if err != nil {
			return err
		}
		a, err := s.merge(appFrom(row), in, false)
		if err != nil {
			return err
		}
		row, err = q.UpdateApp(ctx, sqlcgen.UpdateAppParams{ID: id, Name: a.Name, RedirectURIs: a.RedirectURIs,
			PostLogoutRedirectURIs: a.PostLogoutRedirectURIs, BackchannelLogoutURI: optional(a.BackchannelLogoutURI),
			FirstParty: a.FirstParty, AllowedScopes: a.AllowedScopes, GrantTypes: a.GrantTypes,
			AccessTokenTTLSeconds: int32(a.AccessTokenTTLSeconds), RefreshTokenTTLSeconds: int32(a.RefreshTokenTTLSeconds)})
		if err != nil {
			return err
		}
		if err := s.appChanged(ctx, q, id); err != nil {
			return err
		}
		out = appFrom(row)
		return audit.Record(ctx, q, who, audit.Event{Action: audit.AppUpdated, SubjectID: row.ID, SubjectLabel: row.Name,
			Details: map[string]any{"client_id": row.ClientID}})
	})
	return out, err
}

// RotateSecret gives a confidential app a new secret; the previous one works for
// SecretOverlap more. Errors: not_found, invalid_app (a public app).
func (s *Service) RotateSecret(ctx context.Context, t tenant.Tenant, id uuid.UUID, who audit.Who) (Created, error) {
	secret, hash, err := newSecret()
	if err != nil {
		return Created{}, err
	}
	var out Created
	defer s.cache.dropApp(id)
	err = s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		row, err := q.GetApp(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return ErrAppNotFound
		}
		if err != nil {
			return err
		}
		if row.Type != "confidential" {
			return ErrPublicSecret
		}
		until := s.now().Add(SecretOverlap)
		if row, err = q.RotateAppSecret(ctx, sqlcgen.RotateAppSecretParams{ID: id, SecretHash: hash, PreviousExpiresAt: &until}); err != nil {
			return err
		}
		if err := s.appChanged(ctx, q, id); err != nil {
			return err
		}
		out = Created{App: appFrom(row), ClientSecret: secret}
		return audit.Record(ctx, q, who, audit.Event{Action: audit.AppSecretRotated, SubjectID: row.ID, SubjectLabel: row.Name,
			Details: map[string]any{"client_id": row.ClientID, "previous_works_until": until}})
	})
	return out, err
}

// DeleteApp removes an app with its requests, tokens and grants. Errors: not_found.
func (s *Service) DeleteApp(ctx context.Context, t tenant.Tenant, id uuid.UUID, who audit.Who) error {
	defer s.cache.dropApp(id)
	return s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		row, err := q.GetApp(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return ErrAppNotFound
		}
		if err != nil {
			return err
		}
		if _, err := q.DeleteApp(ctx, id); err != nil {
			return err
		}
		if err := s.appChanged(ctx, q, id); err != nil {
			return err
		}
		return audit.Record(ctx, q, who, audit.Event{Action: audit.AppDeleted, SubjectID: row.ID, SubjectLabel: row.Name,
			Details: map[string]any{"client_id": row.ClientID}})
	})
}

// GetApp returns one app. Errors: not_found.
func (s *Service) GetApp(ctx context.Context, t tenant.Tenant, id uuid.UUID) (App, error) {
	var out App
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		row, err := q.GetApp(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return ErrAppNotFound
		}
		out = appFrom(row)
		return err
	}, store.ReadOnly(), store.Idempotent())
	return out, err
}

// ListApps returns the tenant's apps, oldest first.
func (s *Service) ListApps(ctx context.Context, t tenant.Tenant) ([]App, error) {
	out := []App{}
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		rows, err := q.ListApps(ctx)
		out = out[:0]
		for _, r := range rows {
			out = append(out, appFrom(r))
		}
		return err
	}, store.ReadOnly(), store.Idempotent())
	return out, err
}
