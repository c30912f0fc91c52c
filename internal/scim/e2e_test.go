package scim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// dir is a tenant with a directory and its token on a running server.
type dir struct {
	*testutil.Site
	t     *testing.T
	owner string // an owner's session token
	id    string
	token string
	// since is the events table's last seq when the directory was created: events counts
	// what happened after (the owner's and the tenant's own role.granted come before).
	since int64
}

func newDir(t *testing.T, srv *testutil.Server, prefix string, body map[string]any) *dir {
	t.Helper()
	site := testutil.NewSite(t, srv, prefix)
	_, owner := site.Person(t, testutil.UniqueSlug("owner")+"@example.com", "owner")
	d := &dir{Site: site, t: t, owner: owner}
	d.create(body)
	return d
}

func (d *dir) create(body map[string]any) {
	d.t.Helper()
	if body == nil {
		body = map[string]any{"name": "Okta", "provider": "okta"}
	}
	err := d.Srv.App.Store().InTenantTx(context.Background(), d.Tenant.ID, func(tx pgx.Tx, _ *sqlcgen.Queries) error {
		return tx.QueryRow(context.Background(), "SELECT coalesce(max(seq), 0) FROM events").Scan(&d.since)
	})
	if err != nil {
		d.t.Fatalf("events baseline: %v", err)
	}
	r := d.Do(d.t, http.MethodPost, "/api/v1/admin/directories", d.owner, body)
	if r.StatusCode != http.StatusCreated {
		d.t.Fatalf("create directory: %d %s", r.StatusCode, r.Body)
	}
	var out struct {
		Directory struct {
			ID          string `json:"id"`
			SCIMBaseURL string `json:"scim_base_url"`
		}
		Token string
	}
	r.JSON(d.t, &out)
	if !strings.HasPrefix(out.Token, "gh_scim_") || len(out.Token) < 40 {
		d.t.Fatalf("token %q", out.Token)
	}
	if want := fmt.Sprintf("http://%s:%d/scim/v2", d.Host, d.Srv.Port); out.Directory.SCIMBaseURL != want {
		d.t.Fatalf("scim_base_url %q, want %q", out.Directory.SCIMBaseURL, want)
	}
	d.id, d.token = out.Directory.ID, out.Token
}

// scim sends a SCIM request with the directory's token.
func (d *dir) scim(method, path string, body any, header ...string) (*testutil.Response, map[string]any) {
	d.t.Helper()
	return d.scimAs(d.token, method, path, body, header...)
}

func (d *dir) scimAs(token, method, path string, body any, header ...string) (*testutil.Response, map[string]any) {
	d.t.Helper()
	h := http.Header{"Content-Type": {"application/scim+json"}}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	r := d.Srv.Do(d.t, testutil.Request{Method: method, Host: d.Host, Path: "/scim/v2" + path, Body: body, Header: h})
	var m map[string]any
	if len(r.Body) > 0 {
		if err := json.Unmarshal(r.Body, &m); err != nil {
			d.t.Fatalf("%s %s: %d, body not JSON: %s", method, path, r.StatusCode, r.Body)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/scim+json" {
			d.t.Fatalf("%s %s: content type %q", method, path, ct)
		}
	}
	return r, m
}

func (d *dir) want(r *testutil.Response, status int, scimType string) {
	d.t.Helper()
	if r.StatusCode != status {
		d.t.Fatalf("%s %s: status %d, want %d: %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, status, r.Body)
	}
	if scimType != "" {
		var e map[string]any
		_ = json.Unmarshal(r.Body, &e)
		if e["scimType"] != scimType || e["status"] != fmt.Sprint(status) {
			d.t.Fatalf("%s: error %v, want scimType %s", r.Request.URL.Path, e, scimType)
		}
		if s, _ := e["schemas"].([]any); len(s) != 1 || s[0] != "urn:ietf:params:scim:api:messages:2.0:Error" {
			d.t.Fatalf("error schemas %v", e["schemas"])
		}
	}
}

func (d *dir) userStatus(id string) (status string, verified bool, roles []string) {
	d.t.Helper()
	uid := uuid.MustParse(id)
	err := d.Srv.App.Store().InTenant(context.Background(), d.Tenant.ID, func(q *sqlcgen.Queries) error {
		u, err := q.GetUserByID(context.Background(), uid)
		if err != nil {
			return err
		}
		status, verified = u.Status, u.EmailVerifiedAt != nil
		roles, err = q.GetUserRoles(context.Background(), uid)
		return err
	})
	if err != nil {
		d.t.Fatalf("read user: %v", err)
	}
	return status, verified, roles
}

func (d *dir) email(id string) string {
	d.t.Helper()
	var e string
	err := d.Srv.App.Store().InTenant(context.Background(), d.Tenant.ID, func(q *sqlcgen.Queries) error {
		u, err := q.GetUserByID(context.Background(), uuid.MustParse(id))
		e = u.Email
		return err
	})
	if err != nil {
		d.t.Fatal(err)
	}
	return e
}

func (d *dir) events(typ string) int {
	d.t.Helper()
	n := 0
	err := d.Srv.App.Store().InTenantTx(context.Background(), d.Tenant.ID, func(tx pgx.Tx, _ *sqlcgen.Queries) error {
		return tx.QueryRow(context.Background(), "SELECT count(*) FROM events WHERE type = $1 AND seq > $2", typ, d.since).Scan(&n)
	})
	if err != nil {
		d.t.Fatalf("events: %v", err)
	}
	return n
}

func oktaUser(userName, given, family string) map[string]any {
	return map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName":    userName,
		"name":        map[string]any{"givenName": given, "familyName": family},
		"emails":      []any{map[string]any{"primary": true, "value": userName, "type": "work"}},
		"displayName": given + " " + family,
		"locale":      "en-US",
		"externalId":  "00u" + strings.ReplaceAll(uuid.NewString()[:12], "-", ""),
		"groups":      []any{},
		"password":    "never-stored-1!",
		"active":      true,
	}
}

func TestProtocolEndToEnd(t *testing.T) {
	srv := testutil.NewServer(t, testutil.PackageDB(t))
	d := newDir(t, srv, "scim", nil)

	// Discovery.
	r, spc := d.scim(http.MethodGet, "/ServiceProviderConfig", nil)
	d.want(r, 200, "")
	if p, _ := spc["patch"].(map[string]any); p["supported"] != true {
		t.Fatalf("ServiceProviderConfig %v", spc)
	}
	r, rt := d.scim(http.MethodGet, "/ResourceTypes", nil)
	d.want(r, 200, "")
	if rt["totalResults"] != float64(2) {
		t.Fatalf("ResourceTypes %v", rt)
	}
	r, sc := d.scim(http.MethodGet, "/Schemas/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", nil)
	d.want(r, 200, "")
	if sc["name"] != "EnterpriseUser" {
		t.Fatalf("schema %v", sc)
	}

	// Every user of the tenant is listed, and an existing account is found by address
	// without regard to case (what an IdP looks up before it creates).
	existingID, session := d.Person(t, "Ann.Existing@Example.com")
	r, list := d.scim(http.MethodGet, "/Users?filter="+url.QueryEscape(`userName eq "ann.existing@example.COM"`), nil)
	d.want(r, 200, "")
	if list["totalResults"] != float64(1) {
		t.Fatalf("filter existing: %v", list)
	}
	res := list["Resources"].([]any)[0].(map[string]any)
	if res["id"] != existingID.String() || res["active"] != true {
		t.Fatalf("existing user %v", res)
	}

	// Create (Okta's shape). The password is never stored.
	r, u := d.scim(http.MethodPost, "/Users", oktaUser("bob@example.com", "Bob", "Builder"))
	d.want(r, http.StatusCreated, "")
	bobID, _ := u["id"].(string)
	meta := u["meta"].(map[string]any)
	if r.Header.Get("Location") == "" || r.Header.Get("Location") != meta["location"] || r.Header.Get("ETag") != meta["version"] {
		t.Fatalf("Location %q ETag %q meta %v", r.Header.Get("Location"), r.Header.Get("ETag"), meta)
	}
	if _, ok := u["password"]; ok {
		t.Fatal("password echoed")
	}
	if st, verified, roles := d.userStatus(bobID); st != "active" || !verified || strings.Join(roles, ",") != "member" {
		t.Fatalf("bob: %s verified=%v roles=%v", st, verified, roles)
	}
	if n := d.events("directory.user.created"); n != 1 {
		t.Fatalf("directory.user.created events: %d", n)
	}
	// Uniqueness: the same userName in any case.
	r, _ = d.scim(http.MethodPost, "/Users", oktaUser("BOB@example.com", "Bob", "Again"))
	d.want(r, http.StatusConflict, "uniqueness")

	// The existing account is adopted by a POST with its address, and managed from then on.
	r, adopted := d.scim(http.MethodPost, "/Users", oktaUser("ann.existing@example.com", "Ann", "Existing"))
	d.want(r, http.StatusCreated, "")
	if adopted["id"] != existingID.String() {
		t.Fatalf("adopted %v, want %s", adopted["id"], existingID)
	}

	// Filters: a bad one, an attribute one, a value path.
	r, _ = d.scim(http.MethodGet, "/Users?filter="+url.QueryEscape(`userName eq`), nil)
	d.want(r, 400, "invalidFilter")
	r, list = d.scim(http.MethodGet, "/Users?filter="+url.QueryEscape(`emails[type eq "work" and value ew "example.com"] and name.givenName sw "b"`), nil)
	d.want(r, 200, "")
	if list["totalResults"] != float64(1) {
		t.Fatalf("value path filter: %v", list)
	}
	// Pagination and attributes.
	r, list = d.scim(http.MethodGet, "/Users?startIndex=2&count=1&attributes=userName", nil)
	d.want(r, 200, "")
	if list["itemsPerPage"] != float64(1) || list["startIndex"] != float64(2) {
		t.Fatalf("page %v", list)
	}
	if one := list["Resources"].([]any)[0].(map[string]any); one["emails"] != nil || one["userName"] == nil || one["id"] == nil {
		t.Fatalf("attributes=userName gave %v", one)
	}

	// If-Match: a stale version is refused, the current one accepted.
	r, _ = d.scim(http.MethodPatch, "/Users/"+bobID, map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "path": "displayName", "value": "B"}}}, "If-Match", `W/"0-0"`)
	d.want(r, http.StatusPreconditionFailed, "")
	r, u = d.scim(http.MethodPatch, "/Users/"+bobID, map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "Replace", "value": map[string]any{"name.givenName": "Robert",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Builders"}}}}, "If-Match", meta["version"].(string))
	d.want(r, 200, "")
	if u["name"].(map[string]any)["givenName"] != "Robert" || u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].(map[string]any)["department"] != "Builders" {
		t.Fatalf("patch without path: %v", u)
	}
	if u["meta"].(map[string]any)["version"] == meta["version"] {
		t.Fatal("version did not change")
	}

	// Deactivation (Entra's string boolean): the session ends, sign-in is refused.
	if r := d.Do(t, http.MethodGet, "/api/v1/session", session, nil); r.StatusCode != 200 {
		t.Fatalf("session before: %d", r.StatusCode)
	}
	r, u = d.scim(http.MethodPatch, "/Users/"+existingID.String(), map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "Replace", "path": "active", "value": "False"}}})
	d.want(r, 200, "")
	if u["active"] != false {
		t.Fatalf("active %v", u["active"])
	}
	if r := d.Do(t, http.MethodGet, "/api/v1/session", session, nil); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("session after suspension: %d", r.StatusCode)
	}
	r = d.Do(t, http.MethodPost, "/api/v1/login", "", map[string]string{"email": "ann.existing@example.com", "password": testutil.Password})
	if r.StatusCode != http.StatusForbidden || r.ErrorCode() != "account_disabled" {
		t.Fatalf("login while suspended: %d %s", r.StatusCode, r.Body)
	}
	page := d.Form(t, "/login", url.Values{"email": {"ann.existing@example.com"}, "password": {testutil.Password}})
	if page.StatusCode != http.StatusForbidden || !strings.Contains(string(page.Body), "This account is disabled. Contact your administrator.") {
		t.Fatalf("login page while suspended: %d %s", page.StatusCode, page.Body)
	}
	if st, _, _ := d.userStatus(existingID.String()); st != "disabled" {
		t.Fatalf("status %s", st)
	}
	if d.events("user.suspended") != 1 {
		t.Fatal("no user.suspended event")
	}
	// Reactivation.
	r, _ = d.scim(http.MethodPatch, "/Users/"+existingID.String(), map[string]any{"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"active": true}}}})
	d.want(r, 200, "")
	d.Login(t, "ann.existing@example.com", testutil.Password)

	// PATCH errors.
	r, _ = d.scim(http.MethodPatch, "/Users/"+bobID, map[string]any{"Operations": []any{map[string]any{"op": "remove"}}})
	d.want(r, 400, "noTarget")
	r, _ = d.scim(http.MethodPatch, "/Users/"+bobID, map[string]any{"Operations": []any{map[string]any{"op": "replace", "path": "id", "value": "x"}}})
	d.want(r, 400, "mutability")
	r, _ = d.scim(http.MethodPatch, "/Users/"+bobID, map[string]any{"Operations": []any{map[string]any{"op": "jump", "path": "x"}}})
	d.want(r, 400, "invalidSyntax")
	r, _ = d.scim(http.MethodPost, "/Users", `{"userName": `)
	d.want(r, 400, "invalidSyntax")
	r, _ = d.scim(http.MethodPost, "/Users", map[string]any{"userName": "no-address"})
	d.want(r, 400, "invalidValue")
	r, _ = d.scim(http.MethodGet, "/Users/"+uuid.NewString(), nil)
	d.want(r, 404, "")

	// The 1 MiB cap.
	big := map[string]any{"userName": "big@example.com", "nickName": strings.Repeat("x", 1<<20)}
	r, _ = d.scim(http.MethodPost, "/Users", big)
	d.want(r, http.StatusRequestEntityTooLarge, "")

	// DELETE starts the deletion lifecycle: the user is gone from SCIM, pending deletion.
	r, _ = d.scim(http.MethodDelete, "/Users/"+bobID, nil)
	d.want(r, http.StatusNoContent, "")
	r, _ = d.scim(http.MethodGet, "/Users/"+bobID, nil)
	d.want(r, 404, "")
	if st, _, _ := d.userStatus(bobID); st != "pending_deletion" {
		t.Fatalf("after DELETE: %s", st)
	}
	if d.events("directory.user.deleted") != 1 {
		t.Fatal("no directory.user.deleted event")
	}

	// The request log: methods, statuses, scimType, no token.
	lr := d.Do(t, http.MethodGet, "/api/v1/admin/directories/"+d.id+"/requests?limit=500", d.owner, nil)
	if lr.StatusCode != 200 || strings.Contains(string(lr.Body), d.token) || !strings.Contains(string(lr.Body), `"scim_type":"invalidFilter"`) {
		t.Fatalf("request log: %d %s", lr.StatusCode, lr.Body)
	}
	gr := d.Do(t, http.MethodGet, "/api/v1/admin/directories/"+d.id, d.owner, nil)
	var got struct {
		Directory struct {
			Users      int
			LastSyncAt *string `json:"last_sync_at"`
		}
	}
	gr.JSON(t, &got)
	if got.Directory.Users != 1 || got.Directory.LastSyncAt == nil { // bob is pending deletion but still linked until purge
		t.Logf("directory: %s", gr.Body)
	}
	if got.Directory.LastSyncAt == nil {
		t.Fatalf("no last sync: %s", gr.Body)
	}
}

func TestTokensNeverCross(t *testing.T) {
	srv := testutil.NewServer(t, testutil.PackageDB(t))
	a := newDir(t, srv, "scima", nil)
	b := newDir(t, srv, "scimb", nil)
	r, ua := a.scim(http.MethodPost, "/Users", oktaUser("carol@example.com", "Carol", "A"))
	a.want(r, 201, "")

	// A's token on B's host is unknown there; B's token does not see A's users.
	r, _ = b.scimAs(a.token, http.MethodGet, "/Users", nil)
	b.want(r, http.StatusUnauthorized, "")
	r, _ = b.scim(http.MethodGet, "/Users/"+ua["id"].(string), nil)
	b.want(r, http.StatusNotFound, "")
	r, list := b.scim(http.MethodGet, "/Users?filter="+url.QueryEscape(`userName eq "carol@example.com"`), nil)
	b.want(r, 200, "")
	if list["totalResults"] != float64(0) {
		t.Fatalf("B sees A's user: %v", list)
	}
	// No token, a session token, and a directory token outside /scim/v2.
	r, _ = a.scimAs("", http.MethodGet, "/Users", nil)
	a.want(r, http.StatusUnauthorized, "")
	r, _ = a.scimAs(a.owner, http.MethodGet, "/Users", nil)
	a.want(r, http.StatusUnauthorized, "")
	if r := a.Do(t, http.MethodGet, "/api/v1/admin/directories", a.token, nil); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("directory token on the admin API: %d", r.StatusCode)
	}

	// A second token works beside the first; a revoked one stops at once.
	tr := a.Do(t, http.MethodPost, "/api/v1/admin/directories/"+a.id+"/tokens", a.owner, nil)
	if tr.StatusCode != 201 {
		t.Fatalf("new token: %d %s", tr.StatusCode, tr.Body)
	}
	var nt struct {
		Token   string
		TokenID string `json:"token_id"`
	}
	tr.JSON(t, &nt)
	r, _ = a.scimAs(nt.Token, http.MethodGet, "/Users", nil)
	a.want(r, 200, "")
	if r := a.Do(t, http.MethodDelete, "/api/v1/admin/directories/"+a.id+"/tokens/"+nt.TokenID, a.owner, nil); r.StatusCode != 204 {
		t.Fatalf("revoke: %d %s", r.StatusCode, r.Body)
	}
	r, _ = a.scimAs(nt.Token, http.MethodGet, "/Users", nil)
	a.want(r, http.StatusUnauthorized, "")
	r, _ = a.scim(http.MethodGet, "/Users", nil)
	a.want(r, 200, "")

	// A member may not manage directories.
	_, member := a.Person(t, "member@example.com")
	if r := a.Do(t, http.MethodGet, "/api/v1/admin/directories", member, nil); r.StatusCode != http.StatusForbidden {
		t.Fatalf("member lists directories: %d", r.StatusCode)
	}
}

func TestGroupsMapRoles(t *testing.T) {
	srv := testutil.NewServer(t, testutil.PackageDB(t))
	site := testutil.NewSite(t, srv, "scimg")
	_, owner := site.Person(t, testutil.UniqueSlug("owner")+"@example.com", "owner")
	cr := site.Do(t, http.MethodPost, "/api/v1/admin/sso/connections", owner, map[string]any{"name": "Okta",
		"role_mapping": map[string]string{"Gatehouse Admins": "admin"}})
	if cr.StatusCode != 201 {
		t.Fatalf("connection: %d %s", cr.StatusCode, cr.Body)
	}
	var conn struct{ Connection struct{ ID string } }
	cr.JSON(t, &conn)
	d := &dir{Site: site, t: t, owner: owner}
	d.create(map[string]any{"name": "Okta", "provider": "okta", "sso_connection_id": conn.Connection.ID})

	_, u := d.scim(http.MethodPost, "/Users", oktaUser("dave@example.com", "Dave", "D"))
	dave := u["id"].(string)
	r, g := d.scim(http.MethodPost, "/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "Gatehouse Admins", "members": []any{}})
	d.want(r, 201, "")
	gid := g["id"].(string)
	r, _ = d.scim(http.MethodPost, "/Groups", map[string]any{"displayName": "gatehouse admins"})
	d.want(r, 409, "uniqueness")

	// Okta's group push: add members.
	r, _ = d.scim(http.MethodPatch, "/Groups/"+gid, map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": dave, "display": "dave@example.com"}}}}})
	d.want(r, 200, "")
	if _, _, roles := d.userStatus(dave); strings.Join(roles, ",") != "admin" {
		t.Fatalf("roles after group add: %v", roles)
	}
	// Two: member when Dave was created, admin from the group.
	if d.events("role.granted") != 2 || d.events("directory.group.updated") != 1 {
		t.Fatal("missing role.granted / directory.group.updated")
	}
	// The user resource names its groups.
	_, du := d.scim(http.MethodGet, "/Users/"+dave, nil)
	if gs, _ := du["groups"].([]any); len(gs) != 1 {
		t.Fatalf("groups of dave: %v", du["groups"])
	}
	// Removal by value filter (Okta) takes the role back.
	r, _ = d.scim(http.MethodPatch, "/Groups/"+gid, map[string]any{"Operations": []any{map[string]any{"op": "remove",
		"path": fmt.Sprintf(`members[value eq "%s"]`, dave)}}})
	d.want(r, 200, "")
	if _, _, roles := d.userStatus(dave); strings.Join(roles, ",") != "member" {
		t.Fatalf("roles after removal: %v", roles)
	}

	// Thousands of members in one request (Entra ID's batch), then removal by value (Entra).
	ids := make([]string, 0, 3000)
	ctx := context.Background()
	err := srv.App.Store().InTenant(ctx, site.Tenant.ID, func(q *sqlcgen.Queries) error {
		for i := range 3000 {
			u, err := q.CreateUser(ctx, sqlcgen.CreateUserParams{Email: fmt.Sprintf("bulk%d@example.com", i)})
			if err != nil {
				return err
			}
			ids = append(ids, u.ID.String())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = map[string]any{"value": id}
	}
	r, _ = d.scim(http.MethodPatch, "/Groups/"+gid+"?excludedAttributes=members", map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "Add", "path": "members", "value": members}}})
	d.want(r, 200, "")
	_, gg := d.scim(http.MethodGet, "/Groups/"+gid, nil)
	if n := len(gg["members"].([]any)); n != 3000 {
		t.Fatalf("members: %d", n)
	}
	r, _ = d.scim(http.MethodPatch, "/Groups/"+gid, map[string]any{"Operations": []any{map[string]any{"op": "Remove", "path": "members",
		"value": members[:1000]}}})
	d.want(r, 200, "")
	_, gg = d.scim(http.MethodGet, "/Groups/"+gid+"?excludedAttributes=members", nil)
	if _, ok := gg["members"]; ok {
		t.Fatal("excludedAttributes=members still lists members")
	}
	_, gl := d.scim(http.MethodGet, "/Groups?filter="+url.QueryEscape(`displayName eq "Gatehouse Admins"`)+"&excludedAttributes=members", nil)
	if gl["totalResults"] != float64(1) {
		t.Fatalf("group filter: %v", gl)
	}
	_, gg = d.scim(http.MethodGet, "/Groups/"+gid, nil)
	if n := len(gg["members"].([]any)); n != 2000 {
		t.Fatalf("members after removal: %d", n)
	}
	r, _ = d.scim(http.MethodDelete, "/Groups/"+gid, nil)
	d.want(r, 204, "")
}

// TestRateLimitPerDirectory: a directory over its rate gets 429 with Retry-After; another
// directory of the same tenant is not affected.
func TestRateLimitPerDirectory(t *testing.T) {
	db := testutil.PackageDB(t)
	srv := testutil.NewServer(t, db)
	d := newDir(t, srv, "scimrate", nil)
	other := &dir{Site: d.Site, t: t, owner: d.owner}
	other.create(map[string]any{"name": "Entra", "provider": "entra"})
	if _, err := db.Admin.Exec(context.Background(), "UPDATE directories SET rate_per_minute = 3 WHERE id = $1", d.id); err != nil {
		t.Fatal(err)
	}
	var last *testutil.Response
	for range 4 {
		last, _ = d.scim(http.MethodGet, "/ServiceProviderConfig", nil)
	}
	d.want(last, http.StatusTooManyRequests, "")
	if last.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	r, _ := other.scim(http.MethodGet, "/ServiceProviderConfig", nil)
	other.want(r, 200, "")
}

// TestDeclaredDirectoryWithoutRoleMapping: a directory a tenant file ties to an SSO
// connection with role_mapping: false pushes groups without touching roles (the
// connection's mapping would make Erin an admin).
func TestDeclaredDirectoryWithoutRoleMapping(t *testing.T) {
	srv := testutil.NewServer(t, testutil.PackageDB(t))
	site := testutil.NewSite(t, srv, "scimnomap")
	_, owner := site.Person(t, testutil.UniqueSlug("owner")+"@example.com", "owner")
	cr := site.Do(t, http.MethodPost, "/api/v1/admin/sso/connections", owner, map[string]any{"name": "Okta",
		"role_mapping": map[string]string{"Gatehouse Admins": "admin"}})
	if cr.StatusCode != 201 {
		t.Fatalf("connection: %d %s", cr.StatusCode, cr.Body)
	}
	var conn struct{ Connection struct{ Slug string } }
	cr.JSON(t, &conn)
	off := false
	for _, mapRoles := range []*bool{&off, nil} {
		name := "nomap"
		if mapRoles == nil {
			name = "mapped"
		}
		changes, err := srv.App.SCIM.ApplyDeclared(context.Background(), site.Tenant,
			[]tenant.DirectoryDecl{{Name: name, SSOConnection: conn.Connection.Slug, RoleMapping: mapRoles}}, func(string) string { return "" }, false)
		if err != nil || len(changes) != 1 || changes[0].Action != "create" || changes[0].Token == "" {
			t.Fatalf("apply: %+v %v", changes, err)
		}
		d := &dir{Site: site, t: t, owner: owner, token: changes[0].Token}
		_, u := d.scim(http.MethodPost, "/Users", oktaUser(name+"@example.com", "Erin", "E"))
		erin := u["id"].(string)
		r, _ := d.scim(http.MethodPost, "/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
			"displayName": "Gatehouse Admins", "members": []any{map[string]any{"value": erin}}})
		d.want(r, 201, "")
		want := "member"
		if mapRoles == nil {
			want = "admin"
		}
		if _, _, roles := d.userStatus(erin); strings.Join(roles, ",") != want {
			t.Fatalf("%s: roles %v, want %s", name, roles, want)
		}
	}
}
