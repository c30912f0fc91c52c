package webhooks

import (
	"context"
	"fmt"
	"slices"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// DeclaredChange is what applying a tenant file's webhooks: did to one endpoint. Secret is
// set when the apply generated it (print it once).
type DeclaredChange struct {
	Action string // create, update, unchanged
	Name   string
	Secret string
}

func (c DeclaredChange) String() string { return c.Action + " webhook " + c.Name }

// ApplyDeclared makes the tenant's declared endpoints (matched by name) what the file says.
// A new one's secret is read from its secret_env, or generated and returned once; an
// existing one keeps its secret. Errors: those of Create and Update, and a secret_env that
// is unset.
func (s *Service) ApplyDeclared(ctx context.Context, t tenant.Tenant, decls []tenant.WebhookDecl, getenv func(string) string, dryRun bool) ([]DeclaredChange, error) {
	if len(decls) == 0 {
		return nil, nil
	}
	o := Owner{TenantID: t.ID}
	var rows []sqlcgen.WebhookEndpoint
	if err := s.in(ctx, o, func(q *sqlcgen.Queries) error {
		var err error
		rows, err = q.ListWebhookEndpoints(ctx)
		return err
	}); err != nil {
		return nil, err
	}
	who := audit.Who{ActorLabel: "tenant file"}
	var out []DeclaredChange
	for _, d := range decls {
		enabled := d.Enabled == nil || *d.Enabled
		types := d.EventTypes
		if types == nil {
			types = []string{}
		}
		in := Input{URL: &d.URL, Description: &d.Description, EventTypes: &types, Enabled: &enabled}
		i := slices.IndexFunc(rows, func(r sqlcgen.WebhookEndpoint) bool { return r.DeclaredName != nil && *r.DeclaredName == d.Name })
		if i < 0 {
			secret := ""
			if d.SecretEnv != "" {
				if secret = getenv(d.SecretEnv); secret == "" {
					return out, fmt.Errorf("webhook %s: the environment variable %s is not set", d.Name, d.SecretEnv)
				}
			}
			if _, err := s.merge(settings{enabled: true, types: []string{}}, in); err != nil {
				return out, fmt.Errorf("webhook %s: %w", d.Name, err)
			}
			ch := DeclaredChange{Action: "create", Name: d.Name}
			if !dryRun {
				name := d.Name
				c, err := s.create(ctx, o, in, &name, secret, who)
				if err != nil {
					return out, fmt.Errorf("webhook %s: %w", d.Name, err)
				}
				if secret == "" {
					ch.Secret = c.Secret
				}
			}
			out = append(out, ch)
			continue
		}
		cur := tenantRow(rows[i])
		want, err := s.merge(settings{url: cur.URL, description: cur.Description, types: cur.EventTypes, enabled: cur.Enabled}, in)
		if err != nil {
			return out, fmt.Errorf("webhook %s: %w", d.Name, err)
		}
		if want.url == cur.URL && want.description == cur.Description && want.enabled == cur.Enabled && slices.Equal(want.types, cur.EventTypes) {
			out = append(out, DeclaredChange{Action: "unchanged", Name: d.Name})
			continue
		}
		if !dryRun {
			if _, err := s.Update(ctx, o, cur.ID, in, who); err != nil {
				return out, fmt.Errorf("webhook %s: %w", d.Name, err)
			}
		}
		out = append(out, DeclaredChange{Action: "update", Name: d.Name})
	}
	return out, nil
}
