package oidcop_test

import (
	"context"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestSetSecret: an operator's secret of at least 32 printable characters becomes the
// app's secret (the previous one works during the overlap); a shorter one, one with
// spaces, and any secret for a public app are refused with invalid_app.
func TestSetSecret(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := testutil.NewServer(t, testutil.PackageDB(t))
	e := newEnv(t, srv, "setsecret")
	clientID, generated := e.app(t, map[string]any{"name": "Batch", "type": "confidential", "grant_types": []string{"client_credentials"}})
	apps, err := srv.App.OIDC.ListApps(ctx, e.Tenant)
	if err != nil || len(apps) != 1 {
		t.Fatalf("apps: %v %v", apps, err)
	}
	who := audit.Who{ActorLabel: "test"}
	for _, bad := range []string{strings.Repeat("x", 31), strings.Repeat("x", 31) + " y", strings.Repeat("x", 513)} {
		if _, err := srv.App.OIDC.SetSecret(ctx, e.Tenant, apps[0].ID, bad, who); apperr.From(err).Code != "invalid_app" || apperr.From(err).Details["field"] != "client_secret" {
			t.Fatalf("secret of %d characters: %v, want invalid_app", len(bad), err)
		}
	}
	given := strings.Repeat("k", 32)
	if _, err := srv.App.OIDC.SetSecret(ctx, e.Tenant, apps[0].ID, given, who); err != nil {
		t.Fatal(err)
	}
	e.machineToken(t, clientID, given)
	e.machineToken(t, clientID, generated) // the previous secret, within the overlap

	pubID, _ := e.app(t, map[string]any{"name": "SPA", "type": "public", "redirect_uris": []string{"https://spa.example/cb"}})
	apps, _ = srv.App.OIDC.ListApps(ctx, e.Tenant)
	for _, a := range apps {
		if a.ClientID == pubID {
			if _, err := srv.App.OIDC.SetSecret(ctx, e.Tenant, a.ID, given, who); apperr.From(err).Code != "invalid_app" {
				t.Fatalf("secret for a public app: %v", err)
			}
		}
	}
}

// TestApplyDeclaredEmptyScopes: a declaration with allowed_scopes: [] is an app allowed no
// scope (stored as an empty list), and applying it again changes nothing.
func TestApplyDeclaredEmptyScopes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	srv := testutil.NewServer(t, d)
	ten := testutil.NewTenant(t, d, "declscopes")
	f := tenant.File{Slug: ten.Slug, Path: "x.yaml", Apps: []tenant.AppDecl{{ClientID: "no-scopes-app", Name: "None", Type: "confidential",
		GrantTypes: []string{"client_credentials"}, AllowedScopes: []string{}}}}
	getenv := func(string) string { return "" }
	changes, err := srv.App.OIDC.ApplyDeclared(ctx, ten, f, getenv, false)
	if err != nil || len(changes) != 1 || changes[0].Action != "create" || changes[0].Secret == "" {
		t.Fatalf("apply: %+v %v", changes, err)
	}
	apps, err := srv.App.OIDC.ListApps(ctx, ten)
	if err != nil || len(apps) != 1 || apps[0].AllowedScopes == nil || len(apps[0].AllowedScopes) != 0 {
		t.Fatalf("apps: %+v %v", apps, err)
	}
	if changes, err := srv.App.OIDC.ApplyDeclared(ctx, ten, f, getenv, false); err != nil || len(changes) != 0 {
		t.Fatalf("re-apply: %+v %v", changes, err)
	}
}
