package tenant

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
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
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		f.Path = p
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
// built-in defaults: the file states the whole policy, not a patch.
func ParseFile(b []byte) (File, error) {
	var doc any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return File{}, fmt.Errorf("invalid YAML: %w", err)
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return File{}, fmt.Errorf("a tenant file is a YAML mapping with slug, name and policy")
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
		return File{}, fmt.Errorf("invalid tenant file: %v", err)
	}
	f.Policy.normalize()
	if f.Status == "" {
		f.Status = StatusActive
	}
	if err := ValidateSlug(f.Slug); err != nil {
		return File{}, fmt.Errorf("slug %q: %w", f.Slug, err)
	}
	if f.Name, err = validateName(f.Name); err != nil {
		return File{}, err
	}
	if f.Status != StatusActive && f.Status != StatusSuspended {
		return File{}, fmt.Errorf("status must be active or suspended, not %q", f.Status)
	}
	if err := f.Policy.Validate(); err != nil {
		return File{}, err
	}
	return f, nil
}

// Change is one tenant's difference between the files and the database.
type Change struct {
	Slug   string
	Action string   // "create", "update" or "unchanged"
	Fields []string // for updates: "field: old -> new"
}

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
	err := s.store.InPlatform(ctx, func(q *sqlcgen.Queries) error {
		changes = changes[:0]
		for _, f := range files {
			row, err := q.GetTenantBySlug(ctx, f.Slug)
			if store.IsNotFound(err) {
				changes = append(changes, Change{Slug: f.Slug, Action: "create"})
				if dryRun {
					continue
				}
				if _, err := q.CreateTenant(ctx, sqlcgen.CreateTenantParams{Slug: f.Slug, Name: f.Name, Status: f.Status, Policy: f.Policy.JSON()}); err != nil {
					return fmt.Errorf("create tenant %s: %w", f.Slug, err)
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
			if len(fields) == 0 {
				changes = append(changes, Change{Slug: f.Slug, Action: "unchanged"})
				continue
			}
			changes = append(changes, Change{Slug: f.Slug, Action: "update", Fields: fields})
			if dryRun {
				continue
			}
			if _, err := q.UpdateTenant(ctx, sqlcgen.UpdateTenantParams{ID: row.ID, Name: f.Name, Status: f.Status, Policy: f.Policy.JSON()}); err != nil {
				return fmt.Errorf("update tenant %s: %w", f.Slug, err)
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
