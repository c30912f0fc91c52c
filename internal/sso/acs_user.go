package sso

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/emailaddr"
	"github.com/gatehouse-id/gatehouse/internal/events"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

// resolved is the user a sign-in is for, and how it was found. It lives in one attempt
// of the sign-in transaction.
type resolved struct {
	user        sqlcgen.User
	detail      string // the trace's "user" step
	provisioned bool   // created just in time (with a role)
	signedIn    bool   // the known identity's last sign-in is already recorded
}

// resolveUser finds the user of (connection, NameID), or links or provisions one, from
// the validated report. A refusal is a *refusal; it writes nothing outside q.
func (s *Service) resolveUser(ctx context.Context, q *sqlcgen.Queries, m *material, rep *Report, who audit.Who) (resolved, error) {
	c := m.conn
	// A known identity: one statement touches it and the user's last sign-in (rolled
	// back with the transaction when the attempt is refused below).
	u, err := q.SignInSSOIdentity(ctx, sqlcgen.SignInSSOIdentityParams{ConnectionID: c.ID, NameID: rep.NameID})
	if err == nil {
		if u.Status != "active" {
			return resolved{}, accountRefusal(u.Status)
		}
		return resolved{user: u, detail: "known identity", signedIn: true}, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return resolved{}, err
	}
	email, err := emailaddr.Normalize(rep.Email)
	if err != nil {
		return resolved{}, refuse("email_missing", errors.New("the IdP sent no usable email address (check the attribute mapping)"))
	}
	domain := email[strings.LastIndexByte(email, '@')+1:]
	existing, err := q.GetUserByEmail(ctx, email)
	switch {
	case err == nil:
		if rep.EmailVerified != nil && !*rep.EmailVerified {
			return resolved{}, refuse("link_refused_unverified_email",
				errors.New("an account with this address exists and the IdP does not say the address is verified (email_verified)"))
		}
		return link(ctx, q, c, existing, domain, rep.NameID, who)
	case !errors.Is(err, store.ErrNotFound):
		return resolved{}, err
	}
	return s.provision(ctx, q, m, rep, email, domain, who)
}

func accountRefusal(status string) error {
	return refuse("account_"+strings.TrimPrefix(status, "pending_"), errors.New("the account is "+status))
}

// link attaches the identity to an existing account with the same address, only when the
// address's domain is verified for this connection.
func link(ctx context.Context, q *sqlcgen.Queries, c sqlcgen.SSOConnection, existing sqlcgen.User, domain, nameID string, who audit.Who) (resolved, error) {
	d, err := q.GetSSODomain(ctx, domain)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return resolved{}, err
	}
	if err != nil || d.VerifiedAt == nil || d.ConnectionID != c.ID {
		return resolved{}, refuse("link_refused_unverified_domain",
			fmt.Errorf("an account with this address exists and %s is not a verified domain of this connection", domain))
	}
	if existing.Status != "active" {
		return resolved{}, accountRefusal(existing.Status)
	}
	if err := q.InsertSSOIdentity(ctx, sqlcgen.InsertSSOIdentityParams{ConnectionID: c.ID, NameID: nameID, UserID: existing.ID}); err != nil {
		return resolved{}, err
	}
	if err := audit.Record(ctx, q, who, audit.Event{Action: audit.SSOIdentityLinked, SubjectID: existing.ID,
		SubjectLabel: existing.Email, Details: map[string]any{"connection_id": c.ID}}); err != nil {
		return resolved{}, err
	}
	return resolved{user: existing, detail: "linked to the existing account (verified domain)"}, nil
}

// provision creates the user just in time, with the strongest role its groups map to (or
// its open invitation's, when stronger).
func (s *Service) provision(ctx context.Context, q *sqlcgen.Queries, m *material, rep *Report, email, domain string, who audit.Who) (resolved, error) {
	c := m.conn
	if !c.JIT {
		return resolved{}, refuse("jit_disabled", errors.New("no account is linked to this identity and JIT provisioning is off"))
	}
	// An address of a domain routed to another connection is that IdP's to vouch for.
	dom, derr := q.GetSSODomain(ctx, domain)
	if derr == nil && dom.ConnectionID != c.ID {
		return resolved{}, refuse("domain_of_other_connection", fmt.Errorf("%s belongs to another SSO connection of this tenant", domain))
	} else if derr != nil && !errors.Is(derr, store.ErrNotFound) {
		return resolved{}, derr
	}
	name := strings.TrimSpace(attr(rep.Attributes, m.mapping.FirstName, "first_name") + " " + attr(rep.Attributes, m.mapping.LastName, "last_name"))
	if len(name) > 200 {
		name = name[:200]
	}
	var verifiedAt *time.Time
	if derr == nil && dom.VerifiedAt != nil && dom.ConnectionID == c.ID && (rep.EmailVerified == nil || *rep.EmailVerified) {
		now := s.now()
		verifiedAt = &now
	}
	u, err := q.CreateUser(ctx, sqlcgen.CreateUserParams{Email: email, Name: name, EmailVerifiedAt: verifiedAt})
	if err != nil {
		return resolved{}, err
	}
	if err := q.InsertSSOIdentity(ctx, sqlcgen.InsertSSOIdentityParams{ConnectionID: c.ID, NameID: rep.NameID, UserID: u.ID}); err != nil {
		return resolved{}, err
	}
	if err := events.EmitUserCreated(ctx, q, u, events.SourceSSO); err != nil {
		return resolved{}, err
	}
	groups := attrAll(rep.Attributes, m.mapping.Groups, "groups")
	role, source := roleFor(groups, m.roles), "default"
	if slices.ContainsFunc(groups, func(g string) bool { _, ok := m.roles[g]; return ok }) {
		source = "group_mapping"
	}
	// An open invitation for this address is accepted by the first SSO sign-in: its role
	// counts (a mapped group can only raise it).
	if inv, err := q.GetOpenInvitationByEmail(ctx, email); err == nil {
		if rank[inv.Role] > rank[role] {
			role, source = inv.Role, "invitation"
		}
		if _, err := q.AcceptInvitation(ctx, inv.ID); err != nil {
			return resolved{}, err
		}
		if err := audit.Record(ctx, q, who, audit.Event{Action: audit.InvitationAccepted, SubjectID: u.ID, SubjectLabel: u.Email,
			Details: map[string]any{"invitation_id": inv.ID, "role": inv.Role, "via": "sso"}}); err != nil {
			return resolved{}, err
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return resolved{}, err
	}
	if err := authz.Grant(ctx, q, u.ID, role); err != nil {
		return resolved{}, err
	}
	// The grant is a role assignment like an admin's, by the connection (its group
	// mapping, the invitation or the default), so the audit log's role history is whole.
	byConn := audit.Who{ActorLabel: "sso connection " + c.Slug, IP: who.IP, UserAgent: who.UserAgent, RequestID: who.RequestID}
	if err := audit.Record(ctx, q, byConn, audit.Event{Action: audit.RoleAssigned, SubjectID: u.ID, SubjectLabel: u.Email,
		Details: map[string]any{"roles": []string{role}, "via": "sso_jit", "source": source, "connection_id": c.ID}}); err != nil {
		return resolved{}, err
	}
	if err := audit.Record(ctx, q, who, audit.Event{Action: audit.SSOUserProvisioned, SubjectID: u.ID, SubjectLabel: u.Email,
		Details: map[string]any{"connection_id": c.ID, "role": role}}); err != nil {
		return resolved{}, err
	}
	return resolved{user: u, detail: "provisioned just in time with role " + role, provisioned: true}, nil
}

var rank = map[string]int{"member": 0, "admin": 1, "owner": 2}

// roleFor picks the strongest role any of the user's groups maps to (member by default).
func roleFor(groups []string, mapping map[string]string) string {
	best := "member"
	for _, g := range groups {
		if r, ok := mapping[g]; ok && rank[r] > rank[best] {
			best = r
		}
	}
	return best
}

// common attribute names per field, tried after the connection's own mapping.
var commonNames = map[string][]string{
	"email": {"email", "mail", "emailaddress", "emailAddress", "Email", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
		"urn:oid:0.9.2342.19200300.100.1.3", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"},
	"first_name": {"first_name", "firstName", "givenName", "given_name", "FirstName", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname", "urn:oid:2.5.4.42"},
	"last_name":  {"last_name", "lastName", "sn", "surname", "family_name", "LastName", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname", "urn:oid:2.5.4.4"},
	"groups":     {"groups", "Groups", "memberOf", "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"},
}

func attr(attrs map[string][]string, mapped, field string) string {
	names := commonNames[field]
	if mapped != "" {
		names = []string{mapped}
	}
	for _, n := range names {
		if v := attrs[n]; len(v) > 0 && strings.TrimSpace(v[0]) != "" {
			return strings.TrimSpace(v[0])
		}
	}
	return ""
}

func attrAll(attrs map[string][]string, mapped, field string) []string {
	names := commonNames[field]
	if mapped != "" {
		names = []string{mapped}
	}
	for _, n := range names {
		if v := attrs[n]; len(v) > 0 {
			return v
		}
	}
	return nil
}

// errCorruptMapping marks a stored attribute or role mapping that does not read back as
// one the API would have accepted. Sign-ins through the connection are refused
// (corrupt_mapping) until the mapping is saved again: falling back to the defaults would
// take the email and the role from attributes the admin did not choose.
var errCorruptMapping = errors.New("corrupt mapping")

// parseMappings reads a connection row's attribute and role mappings strictly: unknown
// fields, wrong types and values the API refuses are errors wrapping errCorruptMapping.
func parseMappings(attributes, roles []byte) (AttributeMapping, map[string]string, error) {
	var m AttributeMapping
	if err := strictJSON(attributes, &m); err != nil {
		return AttributeMapping{}, map[string]string{}, fmt.Errorf("%w: the stored attribute mapping cannot be read (%v); save the connection's attribute mapping again", errCorruptMapping, err)
	}
	if msg := checkAttributeMapping(m); msg != "" {
		return AttributeMapping{}, map[string]string{}, fmt.Errorf("%w: the stored attribute mapping is not valid (%s); save it again", errCorruptMapping, msg)
	}
	r := map[string]string{}
	if err := strictJSON(roles, &r); err != nil {
		return AttributeMapping{}, map[string]string{}, fmt.Errorf("%w: the stored role mapping cannot be read (%v); save the connection's role mapping again", errCorruptMapping, err)
	}
	if msg := checkRoleMapping(r); msg != "" {
		return AttributeMapping{}, map[string]string{}, fmt.Errorf("%w: the stored role mapping is not valid (%s); save it again", errCorruptMapping, msg)
	}
	return m, r, nil
}

// strictJSON decodes exactly one JSON value into v, refusing unknown fields.
func strictJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("data after the JSON value")
	}
	return nil
}

// checkAttributeMapping is the API's rule for an attribute mapping ("" when it holds).
func checkAttributeMapping(m AttributeMapping) string {
	for _, v := range []string{m.Email, m.FirstName, m.LastName, m.Groups} {
		if len(v) > 256 {
			return "attribute names are at most 256 characters"
		}
	}
	return ""
}

// checkRoleMapping is the API's rule for a group → role mapping ("" when it holds).
func checkRoleMapping(roles map[string]string) string {
	if len(roles) > 100 {
		return "at most 100 group mappings"
	}
	for g, r := range roles {
		if g == "" || len(g) > 256 || !slices.Contains(authz.Roles, r) {
			return "maps group names to one of owner, admin, member"
		}
	}
	return ""
}
