package scim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// DeclaredChange is what applying a tenant file's directories: did to one directory. Token
// is set when the apply generated it (print it once).
type DeclaredChange struct {
	Action string // create, update, unchanged; "add token" when token_env names a new one
	Name   string
	Token  string
}

func (c DeclaredChange) String() string { return c.Action + " directory " + c.Name }

// minTokenLength is the shortest token a tenant file's token_env may name: the prefix and
// 256 bits, as generated tokens are.
const minTokenLength = len(TokenPrefix) + 43

// ApplyDeclared makes the tenant's declared directories (matched by name) what the file
// says: display name, provider, SSO connection (by slug), role mapping use and delete
// mode. A new directory's token is read from its token_env, or generated and returned once;
// an existing directory gains the token_env's token when it does not hold it yet, and keeps
// its other tokens. Directories not listed are left alone. Errors: an unknown SSO
// connection, a token_env that is unset or not a directory token, a token of another
// directory or revoked, and those of CreateDirectory.
func (s *Service) ApplyDeclared(ctx context.Context, t tenant.Tenant, decls []tenant.DirectoryDecl, getenv func(string) string, dryRun bool) ([]DeclaredChange, error) {
	if len(decls) == 0 {
		return nil, nil
	}
	var rows []sqlcgen.Directory
	conns := map[string]uuid.UUID{}
	if err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		var err error
		if rows, err = q.ListDirectories(ctx); err != nil {
			return err
		}
		for _, d := range decls {
			if d.SSOConnection == "" {
				continue
			}
			c, err := q.GetSSOConnectionBySlug(ctx, d.SSOConnection)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("directory %s: the tenant has no SSO connection %q", d.Name, d.SSOConnection)
			}
			if err != nil {
				return err
			}
			conns[d.SSOConnection] = c.ID
		}
		return nil
	}, store.ReadOnly(), store.Idempotent()); err != nil {
		return nil, err
	}
	who := audit.Who{ActorLabel: "tenant file"}
	var out []DeclaredChange
	for _, d := range decls {
		in := DirectoryInput{Name: d.DisplayName, Provider: d.Provider, DeleteMode: "lifecycle"}
		if in.Name == "" {
			in.Name = d.Name
		}
		if d.PurgeOnDelete {
			in.DeleteMode = "purge"
		}
		if id, ok := conns[d.SSOConnection]; ok {
			in.SSOConnectionID = &id
		}
		mapRoles := d.RoleMapping == nil || *d.RoleMapping
		if err := checkDirectoryInput(&in); err != nil {
			return out, fmt.Errorf("directory %s: %w", d.Name, err)
		}
		tok := ""
		if d.TokenEnv != "" {
			tok = strings.TrimSpace(getenv(d.TokenEnv))
			if tok == "" {
				return out, fmt.Errorf("directory %s: the environment variable %s is not set", d.Name, d.TokenEnv)
			}
			if !strings.HasPrefix(tok, TokenPrefix) || len(tok) < minTokenLength || len(tok) > 128 {
				return out, fmt.Errorf("directory %s: %s does not hold a directory token (%s followed by at least 43 characters)", d.Name, d.TokenEnv, TokenPrefix)
			}
		}
		i := slices.IndexFunc(rows, func(r sqlcgen.Directory) bool { return r.DeclaredName != nil && *r.DeclaredName == d.Name })
		if i < 0 {
			ch := DeclaredChange{Action: "create", Name: d.Name}
			if !dryRun {
				name := d.Name
				c, err := s.createDirectory(ctx, t, in, &name, mapRoles, tok, who)
				if err != nil {
					return out, fmt.Errorf("directory %s: %w", d.Name, err)
				}
				if tok == "" {
					ch.Token = c.Token
				}
			}
			out = append(out, ch)
			continue
		}
		ch, err := s.updateDeclared(ctx, t, rows[i], d.Name, in, mapRoles, tok, who, dryRun)
		if err != nil {
			return out, fmt.Errorf("directory %s: %w", d.Name, err)
		}
		out = append(out, ch...)
	}
	return out, nil
}

// updateDeclared makes an existing declared directory what in says, and adds tok when the
// directory does not hold it.
func (s *Service) updateDeclared(ctx context.Context, t tenant.Tenant, cur sqlcgen.Directory, name string, in DirectoryInput, mapRoles bool, tok string,
	who audit.Who, dryRun bool) ([]DeclaredChange, error) {
	var out []DeclaredChange
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		out = out[:0]
		same := cur.Name == in.Name && cur.Provider == in.Provider && cur.DeleteMode == in.DeleteMode && cur.MapRoles == mapRoles &&
			uuidPtrEqual(cur.SSOConnectionID, in.SSOConnectionID)
		if same {
			out = append(out, DeclaredChange{Action: "unchanged", Name: name})
		} else {
			out = append(out, DeclaredChange{Action: "update", Name: name})
			if !dryRun {
				d, err := q.UpdateDeclaredDirectory(ctx, sqlcgen.UpdateDeclaredDirectoryParams{ID: cur.ID, Name: in.Name, Provider: in.Provider,
					SSOConnectionID: in.SSOConnectionID, DeleteMode: in.DeleteMode, MapRoles: mapRoles})
				if err != nil {
					return err
				}
				if err := audit.Record(ctx, q, who, audit.Event{Action: audit.DirectoryUpdated, SubjectID: d.ID, SubjectLabel: d.Name,
					Details: map[string]any{"provider": d.Provider, "delete_mode": d.DeleteMode, "sso_connection_id": d.SSOConnectionID, "map_roles": d.MapRoles}}); err != nil {
					return err
				}
			}
		}
		if tok == "" {
			return nil
		}
		have, err := q.DirectoryTokenByHash(ctx, hashToken(tok))
		switch {
		case err == nil && have.DirectoryID != cur.ID:
			return errors.New("the token_env's token belongs to another directory")
		case err == nil && have.RevokedAt != nil:
			return errors.New("the token_env's token was revoked: put a new one in the environment")
		case err == nil:
			return nil
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		out = append(out, DeclaredChange{Action: "add token", Name: name})
		if dryRun {
			return nil
		}
		tr, err := q.InsertDirectoryToken(ctx, sqlcgen.InsertDirectoryTokenParams{DirectoryID: cur.ID, TokenHash: hashToken(tok), Hint: hint(tok)})
		if err != nil {
			return err
		}
		return audit.Record(ctx, q, who, audit.Event{Action: audit.DirectoryTokenCreated, SubjectID: cur.ID, SubjectLabel: in.Name,
			Details: map[string]any{"token_id": tr.ID, "hint": tr.Hint}})
	})
	return out, err
}

func uuidPtrEqual(a, b *uuid.UUID) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}
