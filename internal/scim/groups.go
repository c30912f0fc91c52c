package scim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/events"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

func groupETag(g sqlcgen.DirectoryGroup) string { return fmt.Sprintf(`W/"%d"`, g.Version) }

func (s *Service) renderGroup(c Caller, g sqlcgen.DirectoryGroup, members []sqlcgen.ListGroupMembersRow) Resource {
	res := Resource{"schemas": []any{GroupSchema}, "id": g.ID.String(), "displayName": g.DisplayName}
	if g.ExternalID != nil {
		res["externalId"] = *g.ExternalID
	}
	if members != nil {
		ms := make([]any, 0, len(members))
		for _, m := range members {
			ms = append(ms, map[string]any{"value": m.UserID.String(), "display": m.Display, "type": "User",
				"$ref": s.location(c, "Users", m.UserID)})
		}
		res["members"] = ms
	}
	res["meta"] = map[string]any{"resourceType": "Group", "created": g.CreatedAt.UTC().Format(time.RFC3339),
		"lastModified": g.UpdatedAt.UTC().Format(time.RFC3339), "location": s.location(c, "Groups", g.ID), "version": groupETag(g)}
	return res
}

// WantsMembers reports whether a response needs the member list (Entra ID asks for groups
// with excludedAttributes=members; big groups are then cheap).
func WantsMembers(attrs, excluded []string) bool {
	for _, e := range excluded {
		if strings.EqualFold(e, "members") {
			return false
		}
	}
	if len(attrs) == 0 {
		return true
	}
	return slices.ContainsFunc(attrs, func(a string) bool {
		_, name, _ := splitAttrPath(a)
		return strings.EqualFold(name, "members")
	})
}

// ListGroups lists the directory's groups, filtered and paged. Errors: invalidFilter.
func (s *Service) ListGroups(ctx context.Context, c Caller, lq ListQuery) (ListResponse, error) {
	var all []Resource
	withMembers := WantsMembers(lq.Attributes, lq.Excluded)
	err := s.store.InTenant(ctx, c.Tenant.ID, func(q *sqlcgen.Queries) error {
		all = all[:0]
		groups, err := q.ListDirectoryGroups(ctx, c.Directory.ID)
		if err != nil {
			return err
		}
		for _, g := range groups {
			var members []sqlcgen.ListGroupMembersRow
			if withMembers {
				if members, err = q.ListGroupMembers(ctx, g.ID); err != nil {
					return err
				}
			}
			res := s.renderGroup(c, g, members)
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

// GetGroup returns one of the directory's groups. Errors: 404.
func (s *Service) GetGroup(ctx context.Context, c Caller, id uuid.UUID, withMembers bool) (Resource, error) {
	var out Resource
	err := s.store.InTenant(ctx, c.Tenant.ID, func(q *sqlcgen.Queries) error {
		g, err := q.GetDirectoryGroup(ctx, sqlcgen.GetDirectoryGroupParams{ID: id, DirectoryID: c.Directory.ID})
		if errors.Is(err, store.ErrNotFound) {
			return errNotFound
		}
		if err != nil {
			return err
		}
		var members []sqlcgen.ListGroupMembersRow
		if withMembers {
			if members, err = q.ListGroupMembers(ctx, id); err != nil {
				return err
			}
		}
		out = s.renderGroup(c, g, members)
		return nil
	}, store.ReadOnly(), store.Idempotent())
	return out, err
}

// groupFields is what a Group resource says.
type groupFields struct {
	displayName string
	externalID  *string
	members     []uuid.UUID
}

func groupOf(res Resource) (groupFields, error) {
	g := groupFields{displayName: strings.TrimSpace(str(res, "displayName"))}
	if g.displayName == "" || len([]rune(g.displayName)) > 256 {
		return g, invalidValue("displayName is required (at most 256 characters).")
	}
	if e := strings.TrimSpace(str(res, "externalId")); e != "" {
		if len(e) > 320 {
			return g, invalidValue("externalId is at most 320 characters.")
		}
		g.externalID = &e
	}
	seen := map[uuid.UUID]bool{}
	for _, el := range list(res, "members") {
		var v string
		switch x := el.(type) {
		case map[string]any:
			v, _ = lookupValue(x).(string)
		case string:
			v = x
		}
		id, err := uuid.Parse(strings.TrimSpace(v))
		if err != nil {
			return g, invalidValue("A member's value is the id of a user.")
		}
		if !seen[id] {
			seen[id] = true
			g.members = append(g.members, id)
		}
	}
	return g, nil
}

// CreateGroup creates a group with its members. Errors: uniqueness, invalidValue.
func (s *Service) CreateGroup(ctx context.Context, c Caller, body []byte) (Resource, error) {
	res, err := decodeResource(body)
	if err != nil {
		return nil, err
	}
	gf, err := groupOf(res)
	if err != nil {
		return nil, err
	}
	w, err := s.write(ctx, c, func(tx pgx.Tx, q *sqlcgen.Queries, w *effects) error {
		g, err := q.InsertDirectoryGroup(ctx, sqlcgen.InsertDirectoryGroupParams{DirectoryID: c.Directory.ID, DisplayName: gf.displayName, ExternalID: gf.externalID})
		if err != nil {
			if _, ok := store.AsUniqueViolation(err); ok {
				return uniqueness("A group named %q exists.", gf.displayName)
			}
			return err
		}
		added, err := q.AddGroupMembers(ctx, sqlcgen.AddGroupMembersParams{GroupID: g.ID, UserIds: idStrings(gf.members)})
		if err != nil {
			return err
		}
		if err := audit.Record(ctx, q, c.Who, audit.Event{Action: audit.DirectoryGroupCreated, SubjectID: g.ID, SubjectLabel: g.DisplayName,
			Details: map[string]any{"directory_id": c.Directory.ID, "members": len(added)}}); err != nil {
			return err
		}
		if _, err := events.Emit(ctx, q, events.Event{Type: events.DirectoryGroupCreated, Data: map[string]any{"directory_id": c.Directory.ID,
			"group_id": g.ID, "display_name": g.DisplayName, "members_added": added}}); err != nil {
			return err
		}
		if err := s.syncRoles(ctx, q, c, w, added); err != nil {
			return err
		}
		return s.finishGroup(ctx, q, c, w, g.ID)
	})
	if err != nil {
		return nil, err
	}
	return w.out, nil
}

func (s *Service) finishGroup(ctx context.Context, q *sqlcgen.Queries, c Caller, w *effects, id uuid.UUID) error {
	g, err := q.GetDirectoryGroup(ctx, sqlcgen.GetDirectoryGroupParams{ID: id, DirectoryID: c.Directory.ID})
	if err != nil {
		return err
	}
	members, err := q.ListGroupMembers(ctx, id)
	if err != nil {
		return err
	}
	w.out = s.renderGroup(c, g, members)
	return nil
}

func idStrings(ids []uuid.UUID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

// loadGroup loads a group of the directory for a change and checks If-Match.
func (s *Service) loadGroup(ctx context.Context, q *sqlcgen.Queries, c Caller, id uuid.UUID, ifMatch string) (sqlcgen.DirectoryGroup, error) {
	g, err := q.GetDirectoryGroup(ctx, sqlcgen.GetDirectoryGroupParams{ID: id, DirectoryID: c.Directory.ID})
	if errors.Is(err, store.ErrNotFound) {
		return g, errNotFound
	}
	if err != nil {
		return g, err
	}
	if !matches(ifMatch, groupETag(g)) {
		return g, errPrecondition
	}
	return g, nil
}

// ReplaceGroup is PUT. Errors: 404, 412, uniqueness, invalidValue.
func (s *Service) ReplaceGroup(ctx context.Context, c Caller, id uuid.UUID, body []byte, ifMatch string) (Resource, error) {
	res, err := decodeResource(body)
	if err != nil {
		return nil, err
	}
	gf, err := groupOf(res)
	if err != nil {
		return nil, err
	}
	w, err := s.write(ctx, c, func(tx pgx.Tx, q *sqlcgen.Queries, w *effects) error {
		g, err := s.loadGroup(ctx, q, c, id, ifMatch)
		if err != nil {
			return err
		}
		return s.saveGroup(ctx, q, c, w, g, gf)
	})
	if err != nil {
		return nil, err
	}
	return w.out, nil
}

// PatchGroup is PATCH; member changes are applied as differences, so a push of thousands
// of members is a few statements. Errors: 404, 412, invalidPath, noTarget, invalidValue.
func (s *Service) PatchGroup(ctx context.Context, c Caller, id uuid.UUID, ops []Operation, ifMatch string) (Resource, error) {
	w, err := s.write(ctx, c, func(tx pgx.Tx, q *sqlcgen.Queries, w *effects) error {
		g, err := s.loadGroup(ctx, q, c, id, ifMatch)
		if err != nil {
			return err
		}
		members, err := q.ListGroupMembers(ctx, id)
		if err != nil {
			return err
		}
		after, err := ApplyPatch(s.renderGroup(c, g, members), ops)
		if err != nil {
			return err
		}
		gf, err := groupOf(after)
		if err != nil {
			return err
		}
		return s.saveGroup(ctx, q, c, w, g, gf)
	})
	if err != nil {
		return nil, err
	}
	return w.out, nil
}

// saveGroup writes a group's name and members and maps its members' roles.
func (s *Service) saveGroup(ctx context.Context, q *sqlcgen.Queries, c Caller, w *effects, g sqlcgen.DirectoryGroup, gf groupFields) error {
	renamed := g.DisplayName != gf.displayName
	if renamed {
		if other, err := q.ListDirectoryGroups(ctx, c.Directory.ID); err != nil {
			return err
		} else if slices.ContainsFunc(other, func(o sqlcgen.DirectoryGroup) bool {
			return o.ID != g.ID && strings.EqualFold(o.DisplayName, gf.displayName)
		}) {
			return uniqueness("A group named %q exists.", gf.displayName)
		}
	}
	if _, err := q.UpdateDirectoryGroup(ctx, sqlcgen.UpdateDirectoryGroupParams{ID: g.ID, DisplayName: gf.displayName, ExternalID: gf.externalID}); err != nil {
		return err
	}
	cur, err := q.ListGroupMembers(ctx, g.ID)
	if err != nil {
		return err
	}
	want := map[uuid.UUID]bool{}
	for _, id := range gf.members {
		want[id] = true
	}
	var gone []uuid.UUID
	had := map[uuid.UUID]bool{}
	for _, m := range cur {
		had[m.UserID] = true
		if !want[m.UserID] {
			gone = append(gone, m.UserID)
		}
	}
	var fresh []uuid.UUID
	for _, id := range gf.members {
		if !had[id] {
			fresh = append(fresh, id)
		}
	}
	added, removed := []uuid.UUID{}, []uuid.UUID{}
	if len(fresh) > 0 {
		if added, err = q.AddGroupMembers(ctx, sqlcgen.AddGroupMembersParams{GroupID: g.ID, UserIds: idStrings(fresh)}); err != nil {
			return err
		}
	}
	if len(gone) > 0 {
		if removed, err = q.RemoveGroupMembers(ctx, sqlcgen.RemoveGroupMembersParams{GroupID: g.ID, UserIds: idStrings(gone)}); err != nil {
			return err
		}
	}
	if err := audit.Record(ctx, q, c.Who, audit.Event{Action: audit.DirectoryGroupUpdated, SubjectID: g.ID, SubjectLabel: gf.displayName,
		Details: map[string]any{"directory_id": c.Directory.ID, "renamed": renamed, "members_added": len(added), "members_removed": len(removed)}}); err != nil {
		return err
	}
	if _, err := events.Emit(ctx, q, events.Event{Type: events.DirectoryGroupUpdated, Data: map[string]any{"directory_id": c.Directory.ID,
		"group_id": g.ID, "display_name": gf.displayName, "members_added": added, "members_removed": removed}}); err != nil {
		return err
	}
	affected := append(added, removed...)
	if renamed {
		affected = gf.members
	}
	if err := s.syncRoles(ctx, q, c, w, affected); err != nil {
		return err
	}
	return s.finishGroup(ctx, q, c, w, g.ID)
}

// DeleteGroup removes a group; its members' mapped roles are recomputed. Errors: 404, 412.
func (s *Service) DeleteGroup(ctx context.Context, c Caller, id uuid.UUID, ifMatch string) error {
	_, err := s.write(ctx, c, func(tx pgx.Tx, q *sqlcgen.Queries, w *effects) error {
		g, err := s.loadGroup(ctx, q, c, id, ifMatch)
		if err != nil {
			return err
		}
		members, err := q.ClearGroupMembers(ctx, id)
		if err != nil {
			return err
		}
		if _, err := q.DeleteDirectoryGroup(ctx, sqlcgen.DeleteDirectoryGroupParams{ID: id, DirectoryID: c.Directory.ID}); err != nil {
			return err
		}
		if err := audit.Record(ctx, q, c.Who, audit.Event{Action: audit.DirectoryGroupDeleted, SubjectID: g.ID, SubjectLabel: g.DisplayName,
			Details: map[string]any{"directory_id": c.Directory.ID, "members": len(members)}}); err != nil {
			return err
		}
		if _, err := events.Emit(ctx, q, events.Event{Type: events.DirectoryGroupDeleted, Data: map[string]any{"directory_id": c.Directory.ID,
			"group_id": g.ID}}); err != nil {
			return err
		}
		return s.syncRoles(ctx, q, c, w, members)
	})
	return err
}

var rank = map[string]int{authz.Member: 0, authz.Admin: 1, authz.Owner: 2}

// syncRoles gives each user the strongest role their groups in this directory map to
// through the directory's SSO connection (member when none maps); without a connection or
// a mapping, roles are left as they are. An owner is never demoted by a directory.
func (s *Service) syncRoles(ctx context.Context, q *sqlcgen.Queries, c Caller, w *effects, users []uuid.UUID) error {
	if c.Directory.SSOConnectionID == nil || !c.Directory.MapRoles || len(users) == 0 {
		return nil
	}
	conn, err := q.GetSSOConnection(ctx, *c.Directory.SSOConnectionID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	mapping := map[string]string{}
	if len(conn.RoleMapping) > 0 {
		if err := json.Unmarshal(conn.RoleMapping, &mapping); err != nil {
			return nil // an unreadable mapping maps nothing (the SSO side reports it)
		}
	}
	if len(mapping) == 0 {
		return nil
	}
	ids := idStrings(users)
	memberships, err := q.DirectoryGroupsOfUsers(ctx, sqlcgen.DirectoryGroupsOfUsersParams{DirectoryID: c.Directory.ID, UserIds: ids})
	if err != nil {
		return err
	}
	bindings, err := q.RolesOfUsers(ctx, ids)
	if err != nil {
		return err
	}
	want := make(map[uuid.UUID]string, len(users))
	source := map[uuid.UUID]string{}
	for _, uid := range users {
		want[uid], source[uid] = authz.Member, "default"
	}
	for _, m := range memberships {
		if r, ok := mapping[m.DisplayName]; ok && rank[r] >= rank[want[m.UserID]] {
			want[m.UserID], source[m.UserID] = r, "group_mapping"
		}
	}
	have := map[uuid.UUID][]string{}
	for _, b := range bindings {
		have[b.UserID] = append(have[b.UserID], b.Role)
	}
	// Users whose role changes, grouped by the role they get: two statements per role.
	byRole := map[string][]uuid.UUID{}
	for _, uid := range users {
		cur, role := have[uid], want[uid]
		if slices.Equal(cur, []string{role}) || (slices.Contains(cur, authz.Owner) && role != authz.Owner) {
			continue
		}
		byRole[role] = append(byRole[role], uid)
	}
	if len(byRole) == 0 {
		return nil
	}
	for _, role := range authz.Roles {
		changed := byRole[role]
		if len(changed) == 0 {
			continue
		}
		if err := q.DeleteRolesOfUsers(ctx, idStrings(changed)); err != nil {
			return err
		}
		if err := q.GrantRoleToUsers(ctx, sqlcgen.GrantRoleToUsersParams{Role: role, UserIds: idStrings(changed)}); err != nil {
			return err
		}
		for _, uid := range changed {
			cur := have[uid]
			if cur == nil {
				cur = []string{}
			}
			if err := audit.Record(ctx, q, c.Who, audit.Event{Action: audit.RoleAssigned, SubjectID: uid,
				Details: map[string]any{"roles": []string{role}, "previous": cur, "via": "scim", "source": source[uid], "directory_id": c.Directory.ID}}); err != nil {
				return err
			}
			for _, r := range cur {
				if r != role {
					if _, err := events.Emit(ctx, q, events.Event{Type: events.RoleRevoked, User: uid, Data: map[string]any{"user_id": uid, "role": r}}); err != nil {
						return err
					}
				}
			}
			if !slices.Contains(cur, role) {
				if _, err := events.Emit(ctx, q, events.Event{Type: events.RoleGranted, User: uid, Data: map[string]any{"user_id": uid, "role": role}}); err != nil {
					return err
				}
			}
		}
	}
	w.rolesChanged = true
	return q.NotifyAuthzChanged(ctx)
}
