package tenant

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.yaml.in/yaml/v3"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/emailaddr"
	"github.com/gatehouse-id/gatehouse/internal/events"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

// File is one declarative tenant file (tenants/{slug}.yaml). The format is documented in
// tenants/README.md. Later capabilities add their own top-level keys (sso_connections,
// domains); unknown keys are refused so a typo never silently does nothing.
type File struct {
	Path   string `json:"-"`
	Slug   string `json:"slug"`
	Name   string `json:"name"`
	Status string `json:"status,omitempty"`
	Policy Policy `json:"policy"`
	// Roles lists, per role, the addresses that hold it. Additive: bindings not listed
	// are left alone (so a file can never remove the last owner). An address without an
	// account gets one (no password yet: "forgot password" or an invitation sets it).
	Roles map[string][]string `json:"roles,omitempty"`
	// SSOConnections are the tenant's SAML connections (applied by the sso package after
	// the tenant itself). Additive: connections not listed are left alone.
	SSOConnections []SSOConnection `json:"sso_connections,omitempty"`
	// Apps are the tenant's OAuth 2 / OpenID Connect clients (applied by the oidcop
	// package after the tenant). Additive unless PruneApps: apps not listed are left alone.
	Apps []AppDecl `json:"apps,omitempty"`
	// PruneApps deletes the tenant's apps that Apps does not list (with their tokens).
	PruneApps bool `json:"prune_apps,omitempty"`
	// Webhooks are the tenant's webhook endpoints (applied by the webhooks package after
	// the tenant), matched by name. Additive: endpoints not listed are left alone.
	Webhooks []WebhookDecl `json:"webhooks,omitempty"`
	// Directories are the tenant's SCIM directories (applied by the scim package after the
	// tenant and its SSO connections), matched by name. Additive: directories not listed are
	// left alone.
	Directories []DirectoryDecl `json:"directories,omitempty"`
}

// SSOConnection declares one SAML connection. The IdP comes from metadata_url (fetched
// and refreshed) or metadata_file (a path relative to the tenant file).
type SSOConnection struct {
	Slug              string            `json:"slug"`
	Name              string            `json:"name"`
	Provider          string            `json:"provider,omitempty"`
	MetadataURL       string            `json:"metadata_url,omitempty"`
	MetadataFile      string            `json:"metadata_file,omitempty"`
	EntityID          string            `json:"idp_entity_id,omitempty"`
	Domains           []string          `json:"domains,omitempty"`
	Enforce           bool              `json:"enforce,omitempty"`
	JIT               *bool             `json:"jit,omitempty"`
	AllowIdPInitiated bool              `json:"allow_idp_initiated,omitempty"`
	NameIDFormat      string            `json:"name_id_format,omitempty"`
	DefaultRedirect   string            `json:"default_redirect,omitempty"`
	AttributeMapping  map[string]string `json:"attribute_mapping,omitempty"`
	RoleMapping       map[string]string `json:"role_mapping,omitempty"`
	// MetadataXML is the content of MetadataFile, read by LoadDir.
	MetadataXML string `json:"-"`
}

// LoadDir reads and validates every *.yaml / *.yml file in dir. Any invalid file fails the
// whole load, naming the file.
func LoadDir(dir string) ([]File, error) {
	var paths []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", dir, err)
		}
		paths = append(paths, m...)
	}
	sort.Strings(paths)
	if len(paths) == 0 {
		return nil, fmt.Errorf("no tenant files (*.yaml) in %s", dir)
	}
	files := make([]File, 0, len(paths))
	seen := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		f, err := ParseFile(b)
		if err != nil {
			if msg := err.Error(); msg != "" && msg[0] >= '0' && msg[0] <= '9' {
				return nil, fmt.Errorf("%s:%w", p, err) // path:line: field: reason
			}
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		f.Path = p
		for i, c := range f.SSOConnections {
			if c.MetadataFile == "" {
				continue
			}
			mp := c.MetadataFile
			if !filepath.IsAbs(mp) {
				mp = filepath.Join(filepath.Dir(p), mp)
			}
			b, err := os.ReadFile(mp)
			if err != nil {
				return nil, fmt.Errorf("%s: sso_connections[%d].metadata_file: %w", p, i, err)
			}
			f.SSOConnections[i].MetadataXML = string(b)
		}
		base := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(p), ".yaml"), ".yml")
		if base != f.Slug {
			return nil, fmt.Errorf("%s: slug %q must match the file name (%s.yaml)", p, f.Slug, f.Slug)
		}
		if other, dup := seen[f.Slug]; dup {
			return nil, fmt.Errorf("%s: slug %q is also declared in %s", p, f.Slug, other)
		}
		seen[f.Slug] = p
		files = append(files, f)
	}
	return files, nil
}

// ParseFile decodes and validates one tenant document. Policy fields left out take the
// built-in defaults: the file states the whole policy, not a patch. Errors name the line
// ("12: policy.verification.mode: …").
func ParseFile(b []byte) (File, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return File{}, fmt.Errorf("invalid YAML: %w", err)
	}
	var doc any
	if err := root.Decode(&doc); err != nil {
		return File{}, fmt.Errorf("invalid YAML: %w", err)
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return File{}, fmt.Errorf("a tenant file is a YAML mapping with slug, name and policy")
	}
	at := func(path string, err error) error {
		if line := lineOf(&root, path); line > 0 {
			return fmt.Errorf("%d: %s: %v", line, path, err)
		}
		return fmt.Errorf("%s: %v", path, err)
	}
	// Through JSON, so the policy has one set of field names (its json tags) everywhere.
	js, err := json.Marshal(obj)
	if err != nil {
		return File{}, fmt.Errorf("convert: %w", err)
	}
	f := File{Policy: DefaultPolicy()}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return File{}, at(te.Field, fmt.Errorf("must be of type %s", te.Type))
		}
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			field := strings.Trim(name, `"`)
			if line := findKey(&root, field); line > 0 {
				return File{}, fmt.Errorf("%d: unknown field %q", line, field)
			}
			return File{}, fmt.Errorf("unknown field %q", field)
		}
		return File{}, fmt.Errorf("invalid tenant file: %v", err)
	}
	f.Policy.normalize()
	if f.Status == "" {
		f.Status = StatusActive
	}
	if err := ValidateSlug(f.Slug); err != nil {
		return File{}, at("slug", fmt.Errorf("%q: %w", f.Slug, err))
	}
	if f.Name, err = validateName(f.Name); err != nil {
		return File{}, at("name", err)
	}
	if f.Status != StatusActive && f.Status != StatusSuspended {
		return File{}, at("status", fmt.Errorf("must be active or suspended, not %q", f.Status))
	}
	if err := f.Policy.Validate(); err != nil {
		if field, ok := apperr.From(err).Details["field"].(string); ok {
			return File{}, at("policy."+field, err)
		}
		return File{}, err
	}
	seenConn := map[string]bool{}
	for i, c := range f.SSOConnections {
		field := fmt.Sprintf("sso_connections[%d]", i)
		switch {
		case c.Slug == "" || len(c.Slug) > 40 || !isSlugLike(c.Slug):
			return File{}, at(field+".slug", fmt.Errorf("lowercase letters, digits and dashes, at most 40"))
		case seenConn[c.Slug]:
			return File{}, at(field+".slug", fmt.Errorf("%q is declared twice", c.Slug))
		case c.Name == "":
			return File{}, at(field+".name", errors.New("required"))
		case (c.MetadataURL == "") == (c.MetadataFile == ""):
			return File{}, at(field, errors.New("give exactly one of metadata_url and metadata_file"))
		}
		seenConn[c.Slug] = true
	}
	if err := validateApps(f.Apps, at); err != nil {
		return File{}, err
	}
	if err := validateWebhooks(f.Webhooks, at); err != nil {
		return File{}, err
	}
	if err := validateDirectories(f.Directories, at); err != nil {
		return File{}, err
	}
	for role, emails := range f.Roles {
		if !slices.Contains(authz.Roles, role) {
			return File{}, at("roles."+role, fmt.Errorf("unknown role %q (owner, admin or member)", role))
		}
		for i, e := range emails {
			n, err := emailaddr.Normalize(e)
			if err != nil {
				return File{}, at(fmt.Sprintf("roles.%s[%d]", role, i), fmt.Errorf("%q is not an email address", e))
			}
			emails[i] = n
		}
	}
	return f, nil
}

// lineOf finds the line of a dotted path ("policy.step_up.rules[0].action") in a YAML
// document, or 0.
func lineOf(root *yaml.Node, path string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, part := range strings.Split(path, ".") {
		name, idx := part, -1
		if i := strings.IndexByte(part, '['); i > 0 && strings.HasSuffix(part, "]") {
			name = part[:i]
			fmt.Sscanf(part[i+1:len(part)-1], "%d", &idx)
		}
		if n.Kind != yaml.MappingNode {
			return line
		}
		found := false
		for k := 0; k+1 < len(n.Content); k += 2 {
			if n.Content[k].Value == name {
				line, n, found = n.Content[k].Line, n.Content[k+1], true
				break
			}
		}
		if !found {
			return line
		}
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}

// findKey returns the line of the first mapping key named name, anywhere in the document.
func findKey(n *yaml.Node, name string) int {
	if n.Kind == yaml.MappingNode {
		for k := 0; k+1 < len(n.Content); k += 2 {
			if n.Content[k].Value == name {
				return n.Content[k].Line
			}
		}
	}
	for _, c := range n.Content {
		if l := findKey(c, name); l > 0 {
			return l
		}
	}
	return 0
}

// Change is one tenant's difference between the files and the database.
type Change struct {
	Slug   string
	Action string   // "create", "update" or "unchanged"
	Fields []string // for updates: "field: old -> new"
	// NewOwners are the owner accounts this apply created (no password yet): the caller
	// sends each a setup link. Empty on a dry run.
	NewOwners []NewAccount
}

// NewAccount is an account created by Apply.
type NewAccount struct {
	TenantID uuid.UUID
	UserID   uuid.UUID
	Email    string
}

// ApplyActor is the actor label of the audit events Apply records.
const ApplyActor = "tenants apply"

func (c Change) String() string {
	if c.Action != "update" {
		return c.Action + " " + c.Slug
	}
	return "update " + c.Slug + "\n  " + strings.Join(c.Fields, "\n  ")
}

// Apply makes the database match files, all in one transaction (all files or none), and
// returns what changed. With dryRun it only computes the changes. Tenants that have no
// file are left alone.
func (s *Service) Apply(ctx context.Context, files []File, dryRun bool) ([]Change, error) {
	var changes []Change
	err := s.store.InPlatformTx(ctx, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		changes = changes[:0]
		for _, f := range files {
			row, err := q.GetTenantBySlug(ctx, f.Slug)
			if errors.Is(err, store.ErrNotFound) {
				ch := Change{Slug: f.Slug, Action: "create", Fields: roleLines(f.Roles)}
				changes = append(changes, ch)
				if dryRun {
					continue
				}
				created, err := q.CreateTenant(ctx, sqlcgen.CreateTenantParams{Slug: f.Slug, Name: f.Name, Status: f.Status, Policy: f.Policy.JSON()})
				if err != nil {
					return fmt.Errorf("create tenant %s: %w", f.Slug, err)
				}
				if err := store.SetTenant(ctx, tx, created.ID); err != nil {
					return err
				}
				if err := audit.Record(ctx, q, applyWho, audit.Event{Action: audit.TenantCreated, SubjectLabel: f.Slug,
					Details: map[string]any{"file": f.Path, "name": f.Name, "status": f.Status, "policy": f.Policy}}); err != nil {
					return err
				}
				grants, err := applyRoles(ctx, tx, q, created.ID, f.Roles, false)
				if err != nil {
					return err
				}
				if changes[len(changes)-1].NewOwners, err = recordGrants(ctx, q, created.ID, f.Path, grants); err != nil {
					return err
				}
				if err := q.NotifyTenantChanged(ctx, f.Slug); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return fmt.Errorf("get tenant %s: %w", f.Slug, err)
			}
			cur := fromRow(row)
			if cur.PurgeAfter != nil {
				return apperr.New(apperr.Conflict, "tenant_pending_purge", fmt.Sprintf("Tenant %s is scheduled for deletion; tenants apply will not change it.", f.Slug))
			}
			fields := diff(cur, f)
			missing, err := applyRoles(ctx, tx, q, row.ID, f.Roles, true)
			if err != nil {
				return err
			}
			tenantFields := len(fields)
			for _, g := range missing {
				fields = append(fields, g.String())
			}
			if len(fields) == 0 {
				changes = append(changes, Change{Slug: f.Slug, Action: "unchanged"})
				continue
			}
			changes = append(changes, Change{Slug: f.Slug, Action: "update", Fields: fields})
			if dryRun {
				continue
			}
			if tenantFields > 0 {
				if _, err := q.UpdateTenant(ctx, sqlcgen.UpdateTenantParams{ID: row.ID, Name: f.Name, Status: f.Status, Policy: f.Policy.JSON()}); err != nil {
					return fmt.Errorf("update tenant %s: %w", f.Slug, err)
				}
				if err := store.SetTenant(ctx, tx, row.ID); err != nil {
					return err
				}
				if err := recordApplied(ctx, q, f, fields[:tenantFields]); err != nil {
					return err
				}
			}
			grants, err := applyRoles(ctx, tx, q, row.ID, f.Roles, false)
			if err != nil {
				return err
			}
			if changes[len(changes)-1].NewOwners, err = recordGrants(ctx, q, row.ID, f.Path, grants); err != nil {
				return err
			}
			if err := q.NotifyTenantChanged(ctx, f.Slug); err != nil {
				return err
			}
		}
		return nil
	})
	return changes, err
}

// diff lists the fields in which the file differs from the tenant, as dotted paths.
func diff(cur Tenant, f File) []string {
	var out []string
	if cur.Name != f.Name {
		out = append(out, fmt.Sprintf("name: %q -> %q", cur.Name, f.Name))
	}
	if cur.Status != f.Status {
		out = append(out, fmt.Sprintf("status: %s -> %s", cur.Status, f.Status))
	}
	a, b := flatten("policy", cur.Policy), flatten("policy", f.Policy)
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !reflect.DeepEqual(a[k], b[k]) {
			out = append(out, fmt.Sprintf("%s: %s -> %s", k, jsonText(a[k]), jsonText(b[k])))
		}
	}
	return out
}

// flatten turns a value into dotted paths to its leaves (arrays are leaves).
func flatten(prefix string, v any) map[string]any {
	var generic any
	b, _ := json.Marshal(v)
	_ = json.Unmarshal(b, &generic)
	out := map[string]any{}
	var walk func(string, any)
	walk = func(p string, x any) {
		if m, ok := x.(map[string]any); ok {
			for k, v := range m {
				walk(p+"."+k, v)
			}
			return
		}
		out[p] = x
	}
	walk(prefix, generic)
	return out
}

func jsonText(v any) string {
	if v == nil {
		return "(none)"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// roleLines describes role bindings for a diff, in a stable order.
func roleLines(roles map[string][]string) []string {
	var out []string
	for _, r := range authz.Roles {
		for _, e := range roles[r] {
			out = append(out, fmt.Sprintf("roles.%s: + %s", r, e))
		}
	}
	return out
}

// applyWho is the actor of the audit events of Apply.
var applyWho = audit.Who{ActorLabel: ApplyActor}

// recordApplied audits the tenant-level changes of an update, each with the diff lines
// of its part and the file: tenant.updated (name, status), tenant.branding_updated and
// tenant.policy_updated (everything else in the policy, step-up rules included).
func recordApplied(ctx context.Context, q *sqlcgen.Queries, f File, fields []string) error {
	var basic, branding, policy []string
	for _, l := range fields {
		switch {
		case strings.HasPrefix(l, "policy.branding."):
			branding = append(branding, l)
		case strings.HasPrefix(l, "policy."):
			policy = append(policy, l)
		default:
			basic = append(basic, l)
		}
	}
	events := []struct {
		action  string
		changes []string
		key     string
		value   any
	}{
		{audit.TenantUpdated, basic, "", nil},
		{audit.BrandingUpdated, branding, "branding", f.Policy.Branding},
		{audit.PolicyUpdated, policy, "policy", f.Policy},
	}
	for _, ev := range events {
		if len(ev.changes) == 0 {
			continue
		}
		details := map[string]any{"file": f.Path, "changes": ev.changes}
		if ev.key != "" {
			details[ev.key] = ev.value
		}
		if err := audit.Record(ctx, q, applyWho, audit.Event{Action: ev.action, SubjectLabel: f.Slug, Details: details}); err != nil {
			return err
		}
	}
	return nil
}

// grant is one role binding Apply adds.
type grant struct {
	Role, Email string
	UserID      uuid.UUID // uuid.Nil on a dry run for a new account
	NewAccount  bool
}

func (g grant) String() string {
	if g.NewAccount {
		return fmt.Sprintf("roles.%s: + %s (new account)", g.Role, g.Email)
	}
	return fmt.Sprintf("roles.%s: + %s", g.Role, g.Email)
}

// recordGrants audits each added binding as role.assigned (with the user's roles after
// it) and returns the new owner accounts.
func recordGrants(ctx context.Context, q *sqlcgen.Queries, tenantID uuid.UUID, file string, grants []grant) ([]NewAccount, error) {
	var owners []NewAccount
	for _, g := range grants {
		roles, err := q.GetUserRoles(ctx, g.UserID)
		if err != nil {
			return nil, fmt.Errorf("roles of %s: %w", g.Email, err)
		}
		if err := audit.Record(ctx, q, applyWho, audit.Event{Action: audit.RoleAssigned, SubjectID: g.UserID, SubjectLabel: g.Email,
			Details: map[string]any{"file": file, "granted": g.Role, "roles": roles, "new_account": g.NewAccount}}); err != nil {
			return nil, err
		}
		if g.NewAccount && g.Role == authz.Owner {
			owners = append(owners, NewAccount{TenantID: tenantID, UserID: g.UserID, Email: g.Email})
		}
	}
	return owners, nil
}

// applyRoles makes sure every listed binding exists in the tenant (switching the platform
// transaction to it), creating password-less accounts for unknown addresses, and returns
// the bindings it added. With dryRun it only reports the missing bindings.
func applyRoles(ctx context.Context, tx pgx.Tx, q *sqlcgen.Queries, tenantID uuid.UUID, roles map[string][]string, dryRun bool) ([]grant, error) {
	if len(roles) == 0 {
		return nil, nil
	}
	if err := store.SetTenant(ctx, tx, tenantID); err != nil {
		return nil, err
	}
	var added []grant
	created := map[string]bool{} // addresses that got an account in this call
	for _, r := range authz.Roles {
		for _, email := range roles[r] {
			u, err := q.GetUserWithPassword(ctx, email)
			g := grant{Role: r, Email: email}
			switch {
			case errors.Is(err, store.ErrNotFound):
				g.NewAccount = true
				if dryRun {
					added = append(added, g)
					continue
				}
				row, err := q.CreateUser(ctx, sqlcgen.CreateUserParams{Email: email})
				if err != nil {
					return nil, fmt.Errorf("create %s: %w", email, err)
				}
				created[email] = true
				g.UserID = row.ID
				if err := events.EmitUserCreated(ctx, q, row, events.SourceTenantFile); err != nil {
					return nil, err
				}
			case err != nil:
				return nil, err
			default:
				g.UserID = u.ID
				g.NewAccount = created[email]
				have, err := q.GetUserRoles(ctx, u.ID)
				if err != nil {
					return nil, err
				}
				if slices.Contains(have, r) {
					continue
				}
				if dryRun {
					added = append(added, g)
					continue
				}
			}
			if err := authz.Grant(ctx, q, g.UserID, r); err != nil {
				return nil, err
			}
			added = append(added, g)
		}
	}
	return added, nil
}

func isSlugLike(s string) bool {
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' && i > 0 && i < len(s)-1) {
			return false
		}
	}
	return true
}
