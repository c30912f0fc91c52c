package oidcop

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// MinSecretLength is the least length of a client secret an operator gives (SetSecret,
// client_secret_env in a tenant file); generated secrets are 256-bit random values.
const MinSecretLength = 32

// maxSecretLength bounds a given secret.
const maxSecretLength = 512

// ErrWeakSecret answers a given client secret that is too short or not printable.
var ErrWeakSecret = apperr.New(apperr.Invalid, "invalid_app", "A client secret needs at least 32 printable characters.")

// checkSecret validates a secret an operator gives.
func checkSecret(secret string) error {
	if len(secret) < MinSecretLength || len(secret) > maxSecretLength {
		return ErrWeakSecret.WithDetails(map[string]any{"field": "client_secret",
			"reason": fmt.Sprintf("from %d to %d characters (generate one with: openssl rand -base64 32)", MinSecretLength, maxSecretLength)})
	}
	for _, r := range secret {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return ErrWeakSecret.WithDetails(map[string]any{"field": "client_secret", "reason": "printable ASCII characters without spaces"})
		}
	}
	return nil
}

// SetSecret gives a confidential app the secret the operator chose (at least
// MinSecretLength characters), stored hashed; the previous one keeps working for
// SecretOverlap, as with RotateSecret. Errors: not_found, invalid_app (a public app, a weak
// secret).
func (s *Service) SetSecret(ctx context.Context, t tenant.Tenant, id uuid.UUID, secret string, who audit.Who) (App, error) {
	if err := checkSecret(secret); err != nil {
		return App{}, err
	}
	var out App
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		row, err := q.GetApp(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return ErrAppNotFound
		}
		if err != nil {
			return err
		}
		out, err = s.setSecret(ctx, q, row, secret, who, map[string]any{"source": "given"})
		return err
	})
	return out, err
}

func (s *Service) setSecret(ctx context.Context, q *sqlcgen.Queries, row sqlcgen.App, secret string, who audit.Who, details map[string]any) (App, error) {
	if row.Type != "confidential" {
		return App{}, ErrPublicSecret
	}
	until := s.now().Add(SecretOverlap)
	row, err := q.RotateAppSecret(ctx, sqlcgen.RotateAppSecretParams{ID: row.ID, SecretHash: hashOf(secret), PreviousExpiresAt: &until})
	if err != nil {
		return App{}, err
	}
	if err := s.appChanged(ctx, q, row.ID); err != nil {
		return App{}, err
	}
	d := map[string]any{"client_id": row.ClientID, "previous_works_until": until}
	for k, v := range details {
		d[k] = v
	}
	return appFrom(row), audit.Record(ctx, q, who, audit.Event{Action: audit.AppSecretRotated, SubjectID: row.ID, SubjectLabel: row.Name, Details: d})
}

// AppChange is one difference between a tenant file's apps and the database.
type AppChange struct {
	Action   string   // "create", "update", "delete"
	ClientID string   // the app's client_id
	Fields   []string // update: "field: old -> new"; create: where the secret comes from
	// Secret is the generated secret of a confidential app created without
	// client_secret_env: it exists only here, to be shown once. Empty on a dry run.
	Secret string
}

func (c AppChange) String() string {
	out := c.Action + " app " + c.ClientID
	if len(c.Fields) > 0 {
		out += "\n  " + strings.Join(c.Fields, "\n  ")
	}
	return out
}

// DeclaredError is a declaration the settings check refused, naming the app and field.
type DeclaredError struct {
	ClientID, Field, Reason string
}

func (e *DeclaredError) Error() string {
	return fmt.Sprintf("apps %s: %s: %s", e.ClientID, e.Field, e.Reason)
}

// ApplyDeclared makes the tenant's apps match the apps: of its tenant file, in one
// transaction: declared apps missing are created (with the declared client_id), differing
// ones updated, a changed client_secret_env value becomes the secret (the previous one
// works for SecretOverlap more); apps the file does not list are left alone unless the
// file says prune_apps: true. Every change is audited under the actor "tenants apply" with
// the file. getenv reads the variables client_secret_env names; a named variable that is
// unset is an error (on a dry run too). With dryRun nothing is written. A tenant that does
// not exist yet (a dry run before its creation) has no apps: t.ID may be uuid.Nil then.
func (s *Service) ApplyDeclared(ctx context.Context, t tenant.Tenant, f tenant.File, getenv func(string) string, dryRun bool) ([]AppChange, error) {
	secrets := map[string]string{}
	for _, d := range f.Apps {
		if d.ClientSecretEnv == "" {
			continue
		}
		v := getenv(d.ClientSecretEnv)
		if v == "" {
			return nil, fmt.Errorf("apps %s: client_secret_env: the environment variable %s is not set", d.ClientID, d.ClientSecretEnv)
		}
		if err := checkSecret(v); err != nil {
			return nil, fmt.Errorf("apps %s: client_secret_env: %s: %v", d.ClientID, d.ClientSecretEnv, apperr.From(err).Details["reason"])
		}
		secrets[d.ClientID] = v
	}
	if t.ID == uuid.Nil {
		if !dryRun {
			return nil, errors.New("oidc: apply apps: no tenant")
		}
		return s.planDeclared(ctx, nil, nil, f, secrets, true, "")
	}
	var out []AppChange
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		rows, err := q.ListApps(ctx)
		if err != nil {
			return err
		}
		out, err = s.planDeclared(ctx, q, rows, f, secrets, dryRun, f.Path)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// planDeclared computes the changes against rows and, unless dryRun, makes them through q.
func (s *Service) planDeclared(ctx context.Context, q *sqlcgen.Queries, rows []sqlcgen.App, f tenant.File, secrets map[string]string, dryRun bool, file string) ([]AppChange, error) {
	who := audit.Who{ActorLabel: tenant.ApplyActor}
	byID := map[string]sqlcgen.App{}
	for _, r := range rows {
		byID[r.ClientID] = r
	}
	var out []AppChange
	for _, d := range f.Apps {
		in := declInput(d)
		row, exists := byID[d.ClientID]
		if !exists {
			a, err := s.merge(newAppDefaults(), in, true)
			if err != nil {
				return out, declaredError(d.ClientID, err)
			}
			ch := AppChange{Action: "create", ClientID: d.ClientID}
			secret, source := secrets[d.ClientID], "generated, shown once"
			if d.ClientSecretEnv != "" {
				source = "from " + d.ClientSecretEnv
			}
			if a.Type == "confidential" {
				ch.Fields = []string{"client_secret: " + source}
			}
			if dryRun {
				out = append(out, ch)
				continue
			}
			var hash []byte
			if a.Type == "confidential" {
				if secret == "" {
					s, h, err := newSecret()
					if err != nil {
						return out, err
					}
					secret, hash, ch.Secret = s, h, s
				} else {
					hash = hashOf(secret)
				}
			}
			created, err := q.InsertApp(ctx, sqlcgen.InsertAppParams{ClientID: d.ClientID, Name: a.Name, Type: a.Type, SecretHash: hash,
				RedirectURIs: a.RedirectURIs, PostLogoutRedirectURIs: a.PostLogoutRedirectURIs, BackchannelLogoutURI: optional(a.BackchannelLogoutURI),
				FirstParty: a.FirstParty, AllowedScopes: a.AllowedScopes, GrantTypes: a.GrantTypes,
				AccessTokenTTLSeconds: int32(a.AccessTokenTTLSeconds), RefreshTokenTTLSeconds: int32(a.RefreshTokenTTLSeconds)})
			if err != nil {
				return out, fmt.Errorf("apps %s: %w", d.ClientID, err)
			}
			details := map[string]any{"client_id": created.ClientID, "type": created.Type, "first_party": created.FirstParty, "file": file}
			if a.Type == "confidential" {
				details["secret"] = map[bool]string{true: "env " + d.ClientSecretEnv, false: "generated"}[d.ClientSecretEnv != ""]
			}
			if err := audit.Record(ctx, q, who, audit.Event{Action: audit.AppCreated, SubjectID: created.ID, SubjectLabel: created.Name, Details: details}); err != nil {
				return out, err
			}
			out = append(out, ch)
			continue
		}
		cur := appFrom(row)
		a, err := s.merge(cur, in, false)
		if err != nil {
			return out, declaredError(d.ClientID, err)
		}
		fields := appDiff(cur, a)
		settings := len(fields)
		secret, rotate := secrets[d.ClientID], false
		if secret != "" && (row.SecretHash == nil || subtle.ConstantTimeCompare(hashOf(secret), row.SecretHash) != 1) {
			rotate = true
			fields = append(fields, "client_secret: from "+d.ClientSecretEnv+" (the previous secret works "+SecretOverlap.String()+" more)")
		}
		if len(fields) == 0 {
			continue
		}
		out = append(out, AppChange{Action: "update", ClientID: d.ClientID, Fields: fields})
		if dryRun {
			continue
		}
		if settings > 0 {
			updated, err := q.UpdateApp(ctx, sqlcgen.UpdateAppParams{ID: row.ID, Name: a.Name, RedirectURIs: a.RedirectURIs,
				PostLogoutRedirectURIs: a.PostLogoutRedirectURIs, BackchannelLogoutURI: optional(a.BackchannelLogoutURI),
				FirstParty: a.FirstParty, AllowedScopes: a.AllowedScopes, GrantTypes: a.GrantTypes,
				AccessTokenTTLSeconds: int32(a.AccessTokenTTLSeconds), RefreshTokenTTLSeconds: int32(a.RefreshTokenTTLSeconds)})
			if err != nil {
				return out, fmt.Errorf("apps %s: %w", d.ClientID, err)
			}
			if err := s.appChanged(ctx, q, row.ID); err != nil {
				return out, err
			}
			if err := audit.Record(ctx, q, who, audit.Event{Action: audit.AppUpdated, SubjectID: updated.ID, SubjectLabel: updated.Name,
				Details: map[string]any{"client_id": updated.ClientID, "file": file, "changes": fields[:settings]}}); err != nil {
				return out, err
			}
			row = updated
		}
		if rotate {
			if _, err := s.setSecret(ctx, q, row, secret, who, map[string]any{"source": "env " + d.ClientSecretEnv, "file": file}); err != nil {
				return out, fmt.Errorf("apps %s: %w", d.ClientID, err)
			}
		}
	}
	if !f.PruneApps {
		return out, nil
	}
	for _, r := range rows {
		if slices.ContainsFunc(f.Apps, func(d tenant.AppDecl) bool { return d.ClientID == r.ClientID }) {
			continue
		}
		out = append(out, AppChange{Action: "delete", ClientID: r.ClientID, Fields: []string{fmt.Sprintf("name: %q (prune_apps)", r.Name)}})
		if dryRun {
			continue
		}
		if _, err := q.DeleteApp(ctx, r.ID); err != nil {
			return out, fmt.Errorf("apps %s: %w", r.ClientID, err)
		}
		if err := s.appChanged(ctx, q, r.ID); err != nil {
			return out, err
		}
		if err := audit.Record(ctx, q, who, audit.Event{Action: audit.AppDeleted, SubjectID: r.ID, SubjectLabel: r.Name,
			Details: map[string]any{"client_id": r.ClientID, "file": file, "reason": "prune_apps"}}); err != nil {
			return out, err
		}
	}
	return out, nil
}

// newAppDefaults is a new app before its input (as CreateApp starts).
func newAppDefaults() App {
	return App{Type: "confidential", RedirectURIs: []string{}, PostLogoutRedirectURIs: []string{},
		AllowedScopes: slices.Clone(knownScopes), GrantTypes: []string{"authorization_code", "refresh_token"},
		AccessTokenTTLSeconds: 300, RefreshTokenTTLSeconds: 30 * 86400}
}

// declInput states every field of the app: what the file leaves out takes its default.
func declInput(d tenant.AppDecl) AppInput {
	def := newAppDefaults()
	in := AppInput{Name: &d.Name, Type: &d.Type, FirstParty: &d.FirstParty, BackchannelLogoutURI: &d.BackchannelLogoutURI}
	list := func(v, fallback []string) *[]string {
		if v == nil {
			v = fallback
		}
		return &v
	}
	in.RedirectURIs = list(d.RedirectURIs, []string{})
	in.PostLogoutRedirectURIs = list(d.PostLogoutRedirectURIs, []string{})
	in.AllowedScopes = list(d.AllowedScopes, def.AllowedScopes)
	in.GrantTypes = list(d.GrantTypes, def.GrantTypes)
	access, refresh := d.AccessTokenTTLSeconds, d.RefreshTokenTTLSeconds
	if access == 0 {
		access = def.AccessTokenTTLSeconds
	}
	if refresh == 0 {
		refresh = def.RefreshTokenTTLSeconds
	}
	in.AccessTokenTTLSeconds, in.RefreshTokenTTLSeconds = &access, &refresh
	return in
}

// appDiff lists the settings in which b differs from a, as "field: old -> new". Lists are
// compared as sets (their order means nothing).
func appDiff(a, b App) []string {
	var out []string
	add := func(field string, x, y any) {
		if xs, ok := x.([]string); ok {
			ys := y.([]string)
			if sameSet(xs, ys) {
				return
			}
		} else if x == y {
			return
		}
		bx, _ := json.Marshal(x)
		by, _ := json.Marshal(y)
		out = append(out, fmt.Sprintf("%s: %s -> %s", field, bx, by))
	}
	add("name", a.Name, b.Name)
	add("redirect_uris", a.RedirectURIs, b.RedirectURIs)
	add("post_logout_redirect_uris", a.PostLogoutRedirectURIs, b.PostLogoutRedirectURIs)
	add("backchannel_logout_uri", a.BackchannelLogoutURI, b.BackchannelLogoutURI)
	add("first_party", a.FirstParty, b.FirstParty)
	add("allowed_scopes", a.AllowedScopes, b.AllowedScopes)
	add("grant_types", a.GrantTypes, b.GrantTypes)
	add("access_token_ttl_seconds", a.AccessTokenTTLSeconds, b.AccessTokenTTLSeconds)
	add("refresh_token_ttl_seconds", a.RefreshTokenTTLSeconds, b.RefreshTokenTTLSeconds)
	return out
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// declaredError names the app and field of a refused setting.
func declaredError(clientID string, err error) error {
	e := apperr.From(err)
	field, _ := e.Details["field"].(string)
	reason, _ := e.Details["reason"].(string)
	if e.Kind == apperr.Invalid && field != "" {
		return &DeclaredError{ClientID: clientID, Field: field, Reason: reason}
	}
	return fmt.Errorf("apps %s: %w", clientID, err)
}
