package scim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/emailaddr"
	"github.com/gatehouse-id/gatehouse/internal/events"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

// userRow is a tenant user with the directory's record of it, if any.
type userRow = sqlcgen.GetSCIMUserRow

// etag is a user's version: the SCIM record's counter and the account's last change.
func etag(r userRow) string {
	v := int64(0)
	if r.Version != nil {
		v = *r.Version
	}
	return fmt.Sprintf(`W/"%d-%d"`, v, r.UpdatedAt.UnixMicro())
}

func (s *Service) location(c Caller, kind string, id uuid.UUID) string {
	return s.urls.Link(c.Tenant.Slug, BasePath+"/"+kind+"/"+id.String(), nil)
}

// renderUser is the User resource of a row: what the directory stored, with the
// account's own truth (id, active, the address when none was stored) over it.
func (s *Service) renderUser(c Caller, r userRow, groups []sqlcgen.GroupsOfUserRow) Resource {
	res := Resource{}
	if len(r.Attributes) > 0 {
		_ = json.Unmarshal(r.Attributes, &res)
	}
	schemas := []any{UserSchema}
	if sub(res, EnterpriseSchema) != nil {
		schemas = append(schemas, EnterpriseSchema)
	}
	res["schemas"] = schemas
	res["id"] = r.ID.String()
	if r.UserName != nil {
		res["userName"] = *r.UserName
	} else {
		res["userName"] = r.Email
	}
	if r.ExternalID != nil {
		res["externalId"] = *r.ExternalID
	}
	res["active"] = r.Status == "active"
	if list(res, "emails") == nil {
		res["emails"] = []any{map[string]any{"value": r.Email, "type": "work", "primary": true}}
	}
	if str(res, "displayName") == "" && r.Name != "" {
		res["displayName"] = r.Name
	}
	if groups != nil {
		gs := []any{}
		for _, g := range groups {
			if g.DirectoryID == c.Directory.ID {
				gs = append(gs, map[string]any{"value": g.ID.String(), "display": g.DisplayName, "$ref": s.location(c, "Groups", g.ID)})
			}
		}
		if len(gs) > 0 {
			res["groups"] = gs
		}
	}
	modified := r.UpdatedAt
	if r.SCIMUpdatedAt != nil && r.SCIMUpdatedAt.After(modified) {
		modified = *r.SCIMUpdatedAt
	}
	res["meta"] = map[string]any{"resourceType": "User", "created": r.CreatedAt.UTC().Format(time.RFC3339),
		"lastModified": modified.UTC().Format(time.RFC3339), "location": s.location(c, "Users", r.ID), "version": etag(r)}
	return res
}

// userFields is what a User resource says about the account.
type userFields struct {
	userName, externalID, email, name string
	active                            bool
	attrs                             []byte
}

// accountOf reads and validates a User resource. Errors: invalidValue.
func accountOf(res Resource) (userFields, error) {
	a := userFields{userName: strings.TrimSpace(str(res, "userName")), externalID: strings.TrimSpace(str(res, "externalId")), active: true}
	if a.userName == "" || len(a.userName) > 320 {
		return a, invalidValue("userName is required (at most 320 characters).")
	}
	if len(a.externalID) > 320 {
		return a, invalidValue("externalId is at most 320 characters.")
	}
	if _, v, ok := lookup(res, "active"); ok && v != nil {
		b, isBool := boolish(v).(bool)
		if !isBool {
			return a, invalidValue("active is a boolean.")
		}
		a.active = b
	}
	email := primaryEmail(res)
	if email == "" && strings.Contains(a.userName, "@") {
		email = a.userName
	}
	norm, err := emailaddr.Normalize(email)
	if err != nil {
		return a, invalidValue("The user needs an email address: give emails (primary or work) or an address as userName.")
	}
	a.email = norm
	a.name = strings.TrimSpace(str(res, "displayName"))
	if n := sub(res, "name"); a.name == "" && n != nil {
		a.name = strings.TrimSpace(str(n, "formatted"))
		if a.name == "" {
			a.name = strings.TrimSpace(str(n, "givenName") + " " + str(n, "familyName"))
		}
	}
	if len(a.name) > 200 {
		a.name = a.name[:200]
	}
	keep := Resource{}
	for k, v := range res {
		switch canon(k) {
		case "id", "meta", "schemas", "groups", "active", "userName", "externalId", "password":
			// Kept elsewhere, computed, or never stored (a password a directory pushes is ignored).
		default:
			keep[canon(k)] = v
		}
	}
	if a.attrs, err = json.Marshal(keep); err != nil {
		return a, invalidValue("The user's attributes cannot be stored.")
	}
	if len(a.attrs) > 64<<10 {
		return a, invalidValue("The user's attributes are larger than 64 KiB.")
	}
	return a, nil
}

// primaryEmail is the primary address, else the work one, else the first.
func primaryEmail(res Resource) string {
	var work, first string
	for _, el := range list(res, "emails") {
		m, ok := el.(map[string]any)
		if !ok {
			continue
		}
		v := strings.TrimSpace(str(m, "value"))
		if v == "" {
			continue
		}
		if b, _ := boolish(m["primary"]).(bool); b {
			return v
		}
		if work == "" && strings.EqualFold(str(m, "type"), "work") {
			work = v
		}
		if first == "" {
			first = v
		}
	}
	if work != "" {
		return work
	}
	return first
}

// GetUser returns one user of the tenant. Errors: 404.
func (s *Service) GetUser(ctx context.Context, c Caller, id uuid.UUID) (Resource, error) {
	var out Resource
	err := s.store.InTenant(ctx, c.Tenant.ID, func(q *sqlcgen.Queries) error {
		r, err := q.GetSCIMUser(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return errNotFound
		}
		if err != nil {
			return err
		}
		groups, err := q.GroupsOfUser(ctx, id)
		if err != nil {
			return err
		}
		out = s.renderUser(c, r, groups)
		return nil
	}, store.ReadOnly(), store.Idempotent())
	return out, err
}

// ListUsers lists the tenant's users (every account, not only the directory's), filtered
// and paged. Errors: invalidFilter.
func (s *Service) ListUsers(ctx context.Context, c Caller, lq ListQuery) (ListResponse, error) {
	return s.listUsers(ctx, c, lq, true)
}

// listUsers is ListUsers; without byIndex it reads every user whatever the filter (the
// Go evaluation the index plans must agree with, in tests).
func (s *Service) listUsers(ctx context.Context, c Caller, lq ListQuery, byIndex bool) (ListResponse, error) {
	var all []Resource
	err := s.store.InTenant(ctx, c.Tenant.ID, func(q *sqlcgen.Queries) error {
		all = all[:0]
		f := lq.Filter
		if !byIndex {
			f = nil
		}
		rows, err := s.candidates(ctx, q, f)
		if err != nil {
			return err
		}
		for _, r := range rows {
			res := s.renderUser(c, r, nil)
			if lq.Filter.Match(res) {
				all = append(all, res)
			}
		}
		return nil
	}, store.ReadOnly(), store.Idempotent())
	if err != nil {
		return ListResponse{}, err
	}
	return page(all, lq), nil
}

// candidates are the rows a filter may match: for filters of equality look-ups
// (userName eq, externalId eq, emails.value eq and their and/or; planLookups) the rows
// the indexes find, otherwise every user of the tenant. The filter is applied to the
// rendered resources afterwards in every case, so the index only narrows and the
// semantics stay those of Filter.Match.
func (s *Service) candidates(ctx context.Context, q *sqlcgen.Queries, f *Filter) ([]userRow, error) {
	var rows []userRow
	if l, ok := planLookups(f); ok {
		found, err := q.FindSCIMUsersByKeys(ctx, sqlcgen.FindSCIMUsersByKeysParams{Names: nonNil(l.names), ExternalIds: nonNil(l.externalIDs), Emails: nonNil(l.emails)})
		for _, r := range found {
			rows = append(rows, userRow(r))
		}
		return rows, err
	}
	found, err := q.ListSCIMUsers(ctx)
	for _, r := range found {
		rows = append(rows, userRow(r))
	}
	return rows, err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// write runs a change to users as one transaction and ends, after the commit, what the
// change ended (sessions in this process's cache; the broadcast reaches the others).
func (s *Service) write(ctx context.Context, c Caller, f func(tx pgx.Tx, q *sqlcgen.Queries, w *effects) error) (*effects, error) {
	w := &effects{}
	err := s.store.InTenantTx(ctx, c.Tenant.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		*w = effects{}
		if err := f(tx, q, w); err != nil {
			return err
		}
		s.sessions.Invalidate(w.revoked)
		return nil
	})
	s.sessions.Invalidate(w.revoked)
	for _, u := range w.users {
		s.sessions.InvalidateUser(u)
	}
	if w.rolesChanged {
		s.authz.Changed(c.Tenant.ID)
	}
	if err != nil {
		if uv, ok := store.AsUniqueViolation(err); ok && uv != nil {
			return nil, uniqueness("A user or group with this name or address already exists.")
		}
		return nil, err
	}
	return w, nil
}

// effects are what a committed change leaves to do in this process.
type effects struct {
	revoked      [][]byte
	users        []uuid.UUID
	rolesChanged bool
	purgeNow     bool
	userID       uuid.UUID
	out          Resource
}

// CreateUser provisions a user: a new verified member of the tenant, or an existing
// account with the same address that no directory manages yet (it is adopted). Errors:
// uniqueness, invalidValue.
func (s *Service) CreateUser(ctx context.Context, c Caller, body []byte) (Resource, error) {
	res, err := decodeResource(body)
	if err != nil {
		return nil, err
	}
	a, err := accountOf(res)
	if err != nil {
		return nil, err
	}
	w, err := s.write(ctx, c, func(tx pgx.Tx, q *sqlcgen.Queries, w *effects) error {
		if _, err := q.GetDirectoryUserByName(ctx, a.userName); err == nil {
			return uniqueness("A user with userName %q exists.", a.userName)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := s.checkDomain(ctx, q, c, a.email); err != nil {
			return err
		}
		existing, err := q.GetUserByEmail(ctx, a.email)
		switch {
		case err == nil:
			cur, err := q.GetSCIMUser(ctx, existing.ID)
			if errors.Is(err, store.ErrNotFound) {
				return uniqueness("The account with this address is being deleted.")
			}
			if err != nil {
				return err
			}
			if cur.DirectoryID != nil {
				return uniqueness("A user with this address exists.")
			}
			if _, err := q.MarkEmailVerified(ctx, sqlcgen.MarkEmailVerifiedParams{ID: cur.ID, Email: cur.Email}); err != nil {
				return err
			}
			if err := audit.Record(ctx, q, c.Who, audit.Event{Action: audit.DirectoryUserLinked, SubjectID: cur.ID, SubjectLabel: cur.Email,
				Details: map[string]any{"directory_id": c.Directory.ID}}); err != nil {
				return err
			}
			return s.apply(ctx, tx, q, c, w, &cur, a)
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		now := s.now()
		u, err := q.CreateUser(ctx, sqlcgen.CreateUserParams{Email: a.email, Name: a.name, EmailVerifiedAt: &now})
		if err != nil {
			return err
		}
		if err := authz.Grant(ctx, q, u.ID, authz.Member); err != nil {
			return err
		}
		if err := audit.Record(ctx, q, c.Who, audit.Event{Action: audit.DirectoryUserCreated, SubjectID: u.ID, SubjectLabel: u.Email,
			Details: map[string]any{"directory_id": c.Directory.ID}}); err != nil {
			return err
		}
		if err := audit.Record(ctx, q, c.Who, audit.Event{Action: audit.RoleAssigned, SubjectID: u.ID, SubjectLabel: u.Email,
			Details: map[string]any{"roles": []string{authz.Member}, "via": "scim"}}); err != nil {
			return err
		}
		if _, err := events.Emit(ctx, q, events.Event{Type: events.UserCreated, User: u.ID,
			Data: map[string]any{"user_id": u.ID, "email": u.Email, "source": "scim", "directory_id": c.Directory.ID}}); err != nil {
			return err
		}
		w.rolesChanged = true
		cur := userRow{ID: u.ID, Email: u.Email, Name: u.Name, Status: u.Status, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
		return s.apply(ctx, tx, q, c, w, &cur, a)
	})
	if err != nil {
		return nil, err
	}
	return w.out, nil
}

// apply writes a validated User resource over an account the directory manages (or is
// about to): address and name, the SCIM record, and the active state with its effects.
func (s *Service) apply(ctx context.Context, tx pgx.Tx, q *sqlcgen.Queries, c Caller, w *effects, cur *userRow, a userFields) error {
	created := cur.DirectoryID == nil
	if !strings.EqualFold(cur.Email, a.email) {
		if other, err := q.GetUserByEmail(ctx, a.email); err == nil && other.ID != cur.ID {
			return uniqueness("Another user has this address.")
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := s.checkDomain(ctx, q, c, a.email); err != nil {
			return err
		}
	}
	if other, err := q.GetDirectoryUserByName(ctx, a.userName); err == nil && other.UserID != cur.ID {
		return uniqueness("A user with userName %q exists.", a.userName)
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	changedProfile := cur.Email != a.email || cur.Name != a.name
	if changedProfile {
		if _, err := q.UpdateUserProfile(ctx, sqlcgen.UpdateUserProfileParams{ID: cur.ID, Email: a.email, Name: a.name}); err != nil {
			return err
		}
		if cur.Email != a.email {
			w.users = append(w.users, cur.ID)
		}
	}
	var ext *string
	if a.externalID != "" {
		ext = &a.externalID
	}
	if _, err := q.UpsertDirectoryUser(ctx, sqlcgen.UpsertDirectoryUserParams{UserID: cur.ID, DirectoryID: c.Directory.ID,
		UserName: a.userName, ExternalID: ext, Attributes: a.attrs}); err != nil {
		return err
	}
	if err := q.ReplaceDirectoryUserEmails(ctx, sqlcgen.ReplaceDirectoryUserEmailsParams{UserID: cur.ID, ValueKeys: emailKeys(a.attrs)}); err != nil {
		return err
	}
	if !created {
		if err := audit.Record(ctx, q, c.Who, audit.Event{Action: audit.DirectoryUserUpdated, SubjectID: cur.ID, SubjectLabel: a.email,
			Details: map[string]any{"directory_id": c.Directory.ID, "profile_changed": changedProfile}}); err != nil {
			return err
		}
		if changedProfile {
			if _, err := events.Emit(ctx, q, events.Event{Type: events.UserUpdated, User: cur.ID,
				Data: map[string]any{"user_id": cur.ID, "email": a.email, "name": a.name, "source": "scim"}}); err != nil {
				return err
			}
		}
	}
	typ := events.DirectoryUserUpdated
	if created {
		typ = events.DirectoryUserCreated
	}
	if _, err := events.Emit(ctx, q, events.Event{Type: typ, User: cur.ID,
		Data: map[string]any{"directory_id": c.Directory.ID, "user_id": cur.ID, "user_name": a.userName, "active": a.active}}); err != nil {
		return err
	}
	if err := s.setActive(ctx, tx, q, c, w, cur.ID, a.email, cur.Status, a.active); err != nil {
		return err
	}
	r, err := q.GetSCIMUser(ctx, cur.ID)
	if err != nil {
		return err
	}
	groups, err := q.GroupsOfUser(ctx, cur.ID)
	if err != nil {
		return err
	}
	w.userID = cur.ID
	w.out = s.renderUser(c, r, groups)
	return nil
}

// setActive suspends (every session ends, and with them the OIDC tokens issued under
// them, on every node) or reactivates a user.
func (s *Service) setActive(ctx context.Context, tx pgx.Tx, q *sqlcgen.Queries, c Caller, w *effects, id uuid.UUID, email, status string, active bool) error {
	want := "active"
	if !active {
		want = "disabled"
	}
	if status == want || (status != "active" && status != "disabled") {
		return nil
	}
	if !active {
		if err := authz.CheckDeletion(ctx, q, id, uuid.Nil); err != nil {
			return scimErr(409, "", "This user is the tenant's last owner and cannot be suspended.")
		}
	}
	if _, err := q.SetUserActive(ctx, sqlcgen.SetUserActiveParams{ID: id, Status: want}); err != nil {
		return err
	}
	w.users = append(w.users, id)
	action, typ := audit.DirectoryUserReactivated, events.UserReactivated
	if !active {
		action, typ = audit.DirectoryUserSuspended, events.UserSuspended
		hashes, err := s.sessions.RevokeAllTx(ctx, tx, q, id, "directory_suspended")
		if err != nil {
			return err
		}
		w.revoked = append(w.revoked, hashes...)
	}
	if err := audit.Record(ctx, q, c.Who, audit.Event{Action: action, SubjectID: id, SubjectLabel: email,
		Details: map[string]any{"directory_id": c.Directory.ID}}); err != nil {
		return err
	}
	_, err := events.Emit(ctx, q, events.Event{Type: typ, User: id, Data: map[string]any{"user_id": id, "source": "scim", "directory_id": c.Directory.ID}})
	return err
}

// checkDomain refuses an address whose domain the tenant routes to an SSO connection
// other than the directory's: that IdP vouches for it, not this one.
func (s *Service) checkDomain(ctx context.Context, q *sqlcgen.Queries, c Caller, email string) error {
	dom, err := q.GetSSODomain(ctx, emailaddr.Domain(email))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if c.Directory.SSOConnectionID != nil && *c.Directory.SSOConnectionID != dom.ConnectionID {
		return invalidValue("The address's domain belongs to another SSO connection of this tenant.")
	}
	return nil
}

// managed loads a user for a change and checks If-Match. A user another directory
// manages is refused. Errors: 404, 412, 403.
func (s *Service) managed(ctx context.Context, q *sqlcgen.Queries, c Caller, id uuid.UUID, ifMatch string) (userRow, error) {
	r, err := q.GetSCIMUser(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return r, errNotFound
	}
	if err != nil {
		return r, err
	}
	if r.DirectoryID != nil && *r.DirectoryID != c.Directory.ID {
		return r, scimErr(403, "", "Another directory manages this user.")
	}
	if !matches(ifMatch, etag(r)) {
		return r, errPrecondition
	}
	return r, nil
}

// matches reports whether an If-Match header admits the version ("" or "*" admit all).
func matches(ifMatch, version string) bool {
	ifMatch = strings.TrimSpace(ifMatch)
	if ifMatch == "" || ifMatch == "*" {
		return true
	}
	strip := func(s string) string { return strings.TrimPrefix(strings.TrimSpace(s), "W/") }
	for _, v := range strings.Split(ifMatch, ",") {
		if strip(v) == strip(version) {
			return true
		}
	}
	return false
}

// ReplaceUser is PUT: the resource replaces what the directory stored. Errors: 404, 412,
// uniqueness, invalidValue.
func (s *Service) ReplaceUser(ctx context.Context, c Caller, id uuid.UUID, body []byte, ifMatch string) (Resource, error) {
	res, err := decodeResource(body)
	if err != nil {
		return nil, err
	}
	a, err := accountOf(res)
	if err != nil {
		return nil, err
	}
	w, err := s.write(ctx, c, func(tx pgx.Tx, q *sqlcgen.Queries, w *effects) error {
		cur, err := s.managed(ctx, q, c, id, ifMatch)
		if err != nil {
			return err
		}
		return s.apply(ctx, tx, q, c, w, &cur, a)
	})
	if err != nil {
		return nil, err
	}
	return w.out, nil
}

// PatchUser is PATCH (RFC 7644 §3.5.2, with Entra ID's and Okta's spellings). Errors: 404,
// 412, invalidPath, noTarget, invalidValue, mutability, uniqueness.
func (s *Service) PatchUser(ctx context.Context, c Caller, id uuid.UUID, ops []Operation, ifMatch string) (Resource, error) {
	w, err := s.write(ctx, c, func(tx pgx.Tx, q *sqlcgen.Queries, w *effects) error {
		cur, err := s.managed(ctx, q, c, id, ifMatch)
		if err != nil {
			return err
		}
		before := s.renderUser(c, cur, nil)
		after, err := ApplyPatch(before, ops)
		if err != nil {
			return err
		}
		if str(after, "id") != cur.ID.String() {
			return mutability("id cannot be changed.")
		}
		a, err := accountOf(after)
		if err != nil {
			return err
		}
		return s.apply(ctx, tx, q, c, w, &cur, a)
	})
	if err != nil {
		return nil, err
	}
	return w.out, nil
}

// DeleteUser starts the tenant's deletion lifecycle for the user (grace, then purge), or
// purges at once when the directory is set so. Errors: 404, 412, 409 (last owner).
func (s *Service) DeleteUser(ctx context.Context, c Caller, id uuid.UUID, ifMatch string) error {
	w, err := s.write(ctx, c, func(tx pgx.Tx, q *sqlcgen.Queries, w *effects) error {
		cur, err := s.managed(ctx, q, c, id, ifMatch)
		if err != nil {
			return err
		}
		purgeAfter := s.now().Add(time.Duration(c.Tenant.Policy.Deletion.GraceDays) * 24 * time.Hour)
		if c.Directory.DeleteMode == "purge" {
			purgeAfter = s.now()
			w.purgeNow = true
		}
		if err := audit.Record(ctx, q, c.Who, audit.Event{Action: audit.DirectoryUserDeleted, SubjectID: cur.ID, SubjectLabel: cur.Email,
			Details: map[string]any{"directory_id": c.Directory.ID, "mode": c.Directory.DeleteMode}}); err != nil {
			return err
		}
		hashes, err := s.accounts.RequestDeletionTx(ctx, tx, q, c.Tenant, cur.ID, c.Who, purgeAfter)
		if err != nil {
			return err
		}
		w.revoked, w.users = hashes, []uuid.UUID{cur.ID}
		// RequestDeletionTx recorded user.deletion_scheduled.
		_, err = events.Emit(ctx, q, events.Event{Type: events.DirectoryUserDeleted, User: cur.ID,
			Data: map[string]any{"directory_id": c.Directory.ID, "user_id": cur.ID}})
		return err
	})
	if err != nil {
		return err
	}
	if w.purgeNow {
		if _, err := s.accounts.PurgeDue(ctx, c.Tenant); err != nil {
			return err
		}
	}
	return nil
}

// decodeResource reads a resource body. Errors: invalidSyntax.
func decodeResource(body []byte) (Resource, error) {
	var raw any
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, invalidSyntax("The body is not valid JSON.")
	}
	m, ok := canonicalize(raw).(map[string]any)
	if !ok {
		return nil, invalidSyntax("The body is not a JSON object.")
	}
	return m, nil
}
