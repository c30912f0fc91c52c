package sso

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// ApplyDeclared makes the tenant's connections match the declarations of its tenant file
// (tenants/*.yaml): missing ones are created, differing ones updated, others left alone.
// It returns one line per change; with dryRun nothing is written (metadata URLs are still
// fetched, so a broken URL fails the dry run too).
func (s *Service) ApplyDeclared(ctx context.Context, t tenant.Tenant, decls []tenant.SSOConnection, dryRun bool) ([]string, error) {
	cur, err := s.List(ctx, t)
	if err != nil {
		return nil, err
	}
	who := audit.Who{ActorLabel: "tenants apply"}
	var out []string
	for _, d := range decls {
		in := inputFrom(d)
		var existing *Connection
		for i := range cur {
			if cur[i].Slug == d.Slug {
				existing = &cur[i]
			}
		}
		if existing == nil {
			out = append(out, "create sso connection "+d.Slug)
			if !dryRun {
				if _, err := s.Create(ctx, t, in, who); err != nil {
					return out, fmt.Errorf("sso_connections %s: %w", d.Slug, err)
				}
			}
			continue
		}
		idp, doc, _, _, err := s.resolveIdP(ctx, in)
		if err != nil {
			return out, fmt.Errorf("sso_connections %s: %w", d.Slug, err)
		}
		fields := declDiff(*existing, d, idp)
		if len(fields) == 0 {
			continue
		}
		out = append(out, "update sso connection "+d.Slug+": "+strings.Join(fields, ", "))
		if dryRun {
			continue
		}
		xml := string(doc)
		in.MetadataXML, in.MetadataURL = &xml, nil
		if d.MetadataURL != "" {
			u := d.MetadataURL
			in.MetadataURL, in.MetadataXML = &u, nil
		}
		if _, err := s.Update(ctx, t, existing.ID, in, who); err != nil {
			return out, fmt.Errorf("sso_connections %s: %w", d.Slug, err)
		}
	}
	return out, nil
}

func inputFrom(d tenant.SSOConnection) Input {
	in := Input{Name: &d.Name, Slug: &d.Slug, Enforce: &d.Enforce, AllowIdPInitiated: &d.AllowIdPInitiated, JIT: d.JIT}
	if d.Provider != "" {
		in.Provider = &d.Provider
	}
	if d.MetadataURL != "" {
		in.MetadataURL = &d.MetadataURL
	} else {
		in.MetadataXML = &d.MetadataXML
	}
	if d.EntityID != "" {
		in.EntityID = &d.EntityID
	}
	domains := d.Domains
	if domains == nil {
		domains = []string{}
	}
	in.Domains = &domains
	if d.NameIDFormat != "" {
		in.NameIDFormat = &d.NameIDFormat
	}
	if d.DefaultRedirect != "" {
		in.DefaultRedirect = &d.DefaultRedirect
	}
	m := AttributeMapping{Email: d.AttributeMapping["email"], FirstName: d.AttributeMapping["first_name"],
		LastName: d.AttributeMapping["last_name"], Groups: d.AttributeMapping["groups"]}
	in.AttributeMapping = &m
	roles := d.RoleMapping
	if roles == nil {
		roles = map[string]string{}
	}
	in.RoleMapping = &roles
	return in
}

// declDiff names the fields in which a declaration differs from the connection.
func declDiff(c Connection, d tenant.SSOConnection, idp IdP) []string {
	var out []string
	add := func(field string, differ bool) {
		if differ {
			out = append(out, field)
		}
	}
	add("name", c.Name != d.Name)
	add("idp", c.IdP.EntityID != idp.EntityID || !sameCerts(c.IdP, idp) || c.IdP.SSORedirect != idp.SSORedirect || c.IdP.SSOPost != idp.SSOPost)
	add("metadata_url", (c.MetadataURL == nil) != (d.MetadataURL == "") || (c.MetadataURL != nil && *c.MetadataURL != d.MetadataURL))
	add("enforce", c.Enforce != d.Enforce)
	add("allow_idp_initiated", c.AllowIdPInitiated != d.AllowIdPInitiated)
	add("jit", d.JIT != nil && c.JIT != *d.JIT)
	var have []string
	for _, dom := range c.Domains {
		have = append(have, dom.Domain)
	}
	want := make([]string, 0, len(d.Domains))
	for _, dom := range d.Domains {
		want = append(want, strings.TrimSuffix(strings.ToLower(strings.TrimSpace(dom)), "."))
	}
	sort.Strings(have)
	sort.Strings(want)
	add("domains", !slices.Equal(have, want))
	// A corrupt stored mapping reads as empty: it differs from every declaration, so
	// applying the file repairs it.
	add("attribute_mapping", c.MappingError != "" || c.AttributeMapping != AttributeMapping{Email: d.AttributeMapping["email"], FirstName: d.AttributeMapping["first_name"],
		LastName: d.AttributeMapping["last_name"], Groups: d.AttributeMapping["groups"]})
	add("role_mapping", c.MappingError != "" || !mapsEqual(c.RoleMapping, d.RoleMapping))
	return out
}

func sameCerts(a, b IdP) bool {
	if len(a.Certificates) != len(b.Certificates) {
		return false
	}
	for i := range a.Certificates {
		if a.Certificates[i].SHA256 != b.Certificates[i].SHA256 {
			return false
		}
	}
	return true
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
