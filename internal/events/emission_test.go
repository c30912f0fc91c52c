package events_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/events"
	"github.com/gatehouse-id/gatehouse/internal/sso"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// recorded reads the events after the cursor, advancing it.
type recorder struct {
	d      *testutil.DB
	tenant uuid.UUID
	xact   int64
	seq    int64
}

type seen struct {
	Type string
	Data map[string]any
}

func (r *recorder) next(t *testing.T) []seen {
	t.Helper()
	var out []seen
	ctx := context.Background()
	if err := r.d.Store.InTenant(ctx, r.tenant, func(q *sqlcgen.Queries) error {
		rows, err := q.ListEventsAfter(ctx, sqlcgen.ListEventsAfterParams{AfterXact: r.xact, AfterSeq: r.seq, Types: []string{}, PageSize: 1000})
		for _, row := range rows {
			var d map[string]any
			if err := json.Unmarshal(row.Data, &d); err != nil {
				return err
			}
			out = append(out, seen{Type: row.Type, Data: d})
			r.xact, r.seq = row.Xact, *row.Seq
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestEveryDomainEmits drives the real flows through the HTTP server and checks that each
// records its events, in its transaction, with the documented payload.
func TestEveryDomainEmits(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	site := testutil.NewSite(t, srv, "emit", testutil.SitePolicy(func(p *tenant.Policy) { p.Deletion.GraceDays = 0 }))
	rec := &recorder{d: d, tenant: site.Tenant.ID}
	ctx := context.Background()

	// want checks the types recorded since the last step (in order) and returns them.
	want := func(step string, types ...string) []seen {
		t.Helper()
		// An event is listed once every transaction that began before it has ended, in the
		// whole cluster (another test's CREATE DATABASE holds that back for a moment).
		var got []seen
		var names []string
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			got = append(got, rec.next(t)...)
			names = names[:0]
			for _, e := range got {
				names = append(names, e.Type)
			}
			if len(names) >= len(types) || time.Now().After(deadline) {
				break
			}
		}
		if !slices.Equal(names, types) {
			t.Fatalf("%s: events %v, want %v", step, names, types)
		}
		return got
	}
	field := func(e seen, k string) string {
		t.Helper()
		s, _ := e.Data[k].(string)
		return s
	}

	adminID, admin := site.Person(t, "admin@example.com", authz.Owner)
	want("admin created and signed in", events.UserCreated, events.RoleGranted, events.SessionCreated)

	site.Signup(t, "ann@example.com")
	ev := want("signup", events.UserCreated)
	if field(ev[0], "email") != "ann@example.com" || field(ev[0], "source") != "signup" || ev[0].Data["email_verified"] != false {
		t.Fatalf("user.created payload: %v", ev[0].Data)
	}
	annID := field(ev[0], "user_id")
	tok := testutil.TokenFrom(t, srv.WaitMail(t, "ann@example.com", "Confirm your email address"), "/verify")
	if r := site.Do(t, "POST", "/api/v1/verification/confirm", "", map[string]string{"token": tok}); r.StatusCode != 200 {
		t.Fatalf("confirm: %d %s", r.StatusCode, r.Body)
	}
	ev = want("verification", events.UserEmailVerified)
	if field(ev[0], "user_id") != annID || ev[0].Data["email_verified"] != true {
		t.Fatalf("user.email_verified payload: %v", ev[0].Data)
	}

	ann, annSession := site.LoginSession(t, "ann@example.com", testutil.Password)
	ev = want("login", events.SessionCreated)
	if field(ev[0], "session_id") != annSession || field(ev[0], "user_id") != annID {
		t.Fatalf("session.created payload: %v", ev[0].Data)
	}

	if r := site.Do(t, "POST", "/api/v1/account/email", ann, map[string]string{"email": "ann2@example.com"}); r.StatusCode != 202 {
		t.Fatalf("email change: %d %s", r.StatusCode, r.Body)
	}
	tok = testutil.TokenFrom(t, srv.WaitMail(t, "ann2@example.com", "Confirm your new email address"), "/verify")
	if r := site.Do(t, "POST", "/api/v1/verification/confirm", "", map[string]string{"token": tok}); r.StatusCode != 200 {
		t.Fatalf("confirm change: %d %s", r.StatusCode, r.Body)
	}
	ev = want("email change", events.UserEmailChanged)
	if field(ev[0], "email") != "ann2@example.com" || field(ev[0], "previous_email") != "ann@example.com" {
		t.Fatalf("user.email_changed payload: %v", ev[0].Data)
	}

	if r := site.Do(t, "PUT", "/api/v1/admin/users/"+annID+"/roles", admin, map[string]any{"roles": []string{"admin"}}); r.StatusCode != 200 {
		t.Fatalf("set roles: %d %s", r.StatusCode, r.Body)
	}
	ev = want("role grant", events.RoleGranted)
	if field(ev[0], "role") != "admin" || field(ev[0], "user_id") != annID {
		t.Fatalf("role.granted payload: %v", ev[0].Data)
	}
	if r := site.Do(t, "PUT", "/api/v1/admin/users/"+annID+"/roles", admin, map[string]any{"roles": []string{"member"}}); r.StatusCode != 200 {
		t.Fatalf("set roles: %d %s", r.StatusCode, r.Body)
	}
	want("role change", events.RoleRevoked, events.RoleGranted)

	second, secondID := site.LoginSession(t, "ann2@example.com", testutil.Password)
	want("second login", events.SessionCreated)
	if r := site.Do(t, "DELETE", "/api/v1/sessions/"+secondID, second, nil); r.StatusCode/100 != 2 {
		t.Fatalf("revoke: %d %s", r.StatusCode, r.Body)
	}
	ev = want("session revocation", events.SessionRevoked)
	if field(ev[0], "session_id") != secondID || field(ev[0], "reason") == "" {
		t.Fatalf("session.revoked payload: %v", ev[0].Data)
	}

	conn, err := srv.App.SSO.Create(ctx, site.Tenant, sso.Input{Name: ptr("Okta"), Slug: ptr("okta")}, audit.Who{ActorID: adminID})
	if err != nil {
		t.Fatal(err)
	}
	want("sso create", events.SSOConnectionCreated)
	if _, err := srv.App.SSO.Update(ctx, site.Tenant, conn.ID, sso.Input{Name: ptr("Okta EU")}, audit.Who{ActorID: adminID}); err != nil {
		t.Fatal(err)
	}
	ev = want("sso update", events.SSOConnectionUpdated)
	if field(ev[0], "name") != "Okta EU" {
		t.Fatalf("sso.connection.updated payload: %v", ev[0].Data)
	}
	if err := srv.App.SSO.Delete(ctx, site.Tenant, conn.ID, audit.Who{ActorID: adminID}); err != nil {
		t.Fatal(err)
	}
	want("sso delete", events.SSOConnectionDeleted)

	// Deletion with grace 0: scheduled, the session ends, purged at once.
	if r := site.Do(t, "DELETE", "/api/v1/account", ann, nil); r.StatusCode != 202 {
		t.Fatalf("delete: %d %s", r.StatusCode, r.Body)
	}
	ev = want("deletion", events.UserDeleted)
	var names []string
	for _, e := range ev {
		names = append(names, e.Type)
	}
	// The purge erased the user's earlier events (they name the address); user.deleted stays.
	if !slices.Equal(names, []string{events.UserDeleted}) {
		t.Fatalf("deletion: events %v", names)
	}
	if len(ev[0].Data) != 1 || field(ev[0], "user_id") != annID {
		t.Fatalf("user.deleted carries more than the id: %v", ev[0].Data)
	}

	// Invitation: the account is created by accepting it, with the role.
	if r := site.Do(t, "POST", "/api/v1/admin/invitations", admin, map[string]string{"email": "bob@example.com", "role": "member"}); r.StatusCode/100 != 2 {
		t.Fatalf("invite: %d %s", r.StatusCode, r.Body)
	}
	inv := testutil.TokenFrom(t, srv.WaitMail(t, "bob@example.com", "invited"), "/invite")
	if r := site.Form(t, "/invite", map[string][]string{"token": {inv}, "password": {testutil.Password}, "name": {"Bob"}}); r.StatusCode >= 400 {
		t.Fatalf("accept: %d %s", r.StatusCode, r.Body)
	}
	ev = want("invitation", events.UserCreated, events.RoleGranted, events.SessionCreated)
	if field(ev[0], "source") != "invitation" || ev[0].Data["email_verified"] != true {
		t.Fatalf("user.created by invitation: %v", ev[0].Data)
	}
	_ = http.StatusOK
}

func ptr[T any](v T) *T { return &v }
