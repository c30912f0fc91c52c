package authz_test

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// exists reports whether the user row is still there and not scheduled for deletion.
func (s *site) exists(t *testing.T, id uuid.UUID) bool {
	t.Helper()
	var status string
	err := s.d.Admin.QueryRow(context.Background(), "SELECT status FROM users WHERE tenant_id = $1 AND id = $2", s.Tenant.ID, id).Scan(&status)
	return err == nil && status == "active"
}

// TestOwnerDeletion: deleting an owner needs an owner, and no path deletes (or schedules
// the deletion of) the last owner (issue 14, finding 1).
func TestOwnerDeletion(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	a := newSite(t, srv, d)
	ownerID, owner := a.Person(t, "owner@a.example", authz.Owner)
	_, admin := a.Person(t, "admin@a.example", authz.Admin)
	del := func(tok string, id uuid.UUID) *testutil.Response {
		return a.Do(t, "DELETE", "/api/v1/admin/users/"+id.String()+"?immediate=true", tok, nil)
	}

	// A plain admin cannot purge the owner, immediately or not.
	if r := del(admin, ownerID); r.StatusCode != 403 || r.ErrorCode() != "owner_required" {
		t.Fatalf("admin purging the owner: %d %s", r.StatusCode, r.Body)
	}
	if r := a.Do(t, "DELETE", "/api/v1/admin/users/"+ownerID.String(), admin, nil); r.StatusCode != 403 {
		t.Fatalf("admin scheduling the owner's deletion: %d %s", r.StatusCode, r.Body)
	}
	// Nor through the portal button.
	r := a.Form(t, "/admin/users/"+ownerID.String()+"/delete", url.Values{"immediate": {"on"}, "confirm_email": {"owner@a.example"}}, "Cookie", "__Host-gatehouse="+admin)
	if r.StatusCode != 403 || !strings.Contains(string(r.Body), "Only an owner can delete") {
		t.Fatalf("portal delete of the owner by an admin: %d %s", r.StatusCode, r.Body)
	}
	if !a.exists(t, ownerID) {
		t.Fatal("the owner was deleted")
	}

	// The sole owner cannot delete themselves, by the API or the page.
	if r := a.Do(t, "DELETE", "/api/v1/account", owner, nil); r.StatusCode != 409 || r.ErrorCode() != "last_owner" {
		t.Fatalf("sole owner deleting their account: %d %s", r.StatusCode, r.Body)
	}
	r = a.Form(t, "/account/delete", url.Values{"confirm_email": {"owner@a.example"}}, "Cookie", "__Host-gatehouse="+owner)
	if r.StatusCode != 409 || !strings.Contains(string(r.Body), "only owner") {
		t.Fatalf("sole owner deleting their account on the page: %d %s", r.StatusCode, r.Body)
	}
	// Nor purge themselves through the admin API.
	if r := del(owner, ownerID); r.StatusCode != 409 || r.ErrorCode() != "last_owner" {
		t.Fatalf("sole owner purging themselves: %d %s", r.StatusCode, r.Body)
	}
	if !a.exists(t, ownerID) {
		t.Fatal("the sole owner was deleted")
	}

	// With a second owner, an owner may delete an owner; an admin still may not.
	secondID, second := a.Person(t, "second@a.example", authz.Owner)
	if r := del(admin, secondID); r.StatusCode != 403 {
		t.Fatalf("admin deleting the second owner: %d %s", r.StatusCode, r.Body)
	}
	// An owner whose own deletion is pending no longer counts as the one who remains.
	if r := a.Do(t, "DELETE", "/api/v1/account", second, nil); r.StatusCode != 202 {
		t.Fatalf("second owner scheduling their deletion: %d %s", r.StatusCode, r.Body)
	}
	if r := a.Do(t, "DELETE", "/api/v1/account", owner, nil); r.StatusCode != 409 || r.ErrorCode() != "last_owner" {
		t.Fatalf("owner deleting themselves while the other owner's deletion is pending: %d %s", r.StatusCode, r.Body)
	}
	if r := a.Do(t, "PUT", "/api/v1/admin/users/"+ownerID.String()+"/roles", owner, map[string]any{"roles": []string{"admin"}}); r.StatusCode != 409 || r.ErrorCode() != "last_owner" {
		t.Fatalf("owner stepping down while the other owner's deletion is pending: %d %s", r.StatusCode, r.Body)
	}
	if !a.exists(t, ownerID) {
		t.Fatal("the last active owner was deleted")
	}

	// Two owners deleting each other at the same moment: one of them stays.
	thirdID, third := a.Person(t, "third@a.example", authz.Owner)
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i, c := range []struct {
		tok string
		id  uuid.UUID
	}{{owner, thirdID}, {third, ownerID}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = del(c.tok, c.id).StatusCode
		}()
	}
	wg.Wait()
	ok := 0
	for _, c := range codes {
		if c == 202 {
			ok++
		}
	}
	if ok != 1 || !(a.exists(t, ownerID) || a.exists(t, thirdID)) {
		t.Fatalf("owners deleting each other: statuses %v, owner kept %v, third kept %v", codes, a.exists(t, ownerID), a.exists(t, thirdID))
	}
}
