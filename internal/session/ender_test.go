package session_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// endLog is an Ender that records the sessions it hears of, checking that it runs inside
// the ending transaction (the session is revoked there, not yet outside), and fails on
// demand.
type endLog struct {
	mu   sync.Mutex
	ids  [][]uuid.UUID
	fail error
}

func (e *endLog) SessionsEnded(ctx context.Context, tx pgx.Tx, q *sqlcgen.Queries, ids []uuid.UUID) error {
	for _, id := range ids {
		var revoked bool
		if err := tx.QueryRow(ctx, "SELECT revoked_at IS NOT NULL FROM sessions WHERE id = $1", id).Scan(&revoked); err != nil {
			return err
		}
		if !revoked {
			return errors.New("ender called before the session was revoked")
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ids = append(e.ids, slices.Clone(ids))
	return e.fail
}

func (e *endLog) take() [][]uuid.UUID {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.ids
	e.ids = nil
	return out
}

func TestNewServiceRefusesNilEnder(t *testing.T) {
	t.Parallel()
	d := testutil.PackageDB(t)
	if _, err := session.NewService(d.Store, time.Now, nil, session.Config{}, nil); err == nil {
		t.Fatal("NewService accepted a nil Ender")
	}
}

// TestEveryRevocationReachesTheEnder: each way the session service ends sessions (one,
// the others, all of a user, eviction by a newer session, SAML single logout) tells the
// Ender exactly those sessions, in the ending transaction; an Ender error rolls the
// revocation back.
func TestEveryRevocationReachesTheEnder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.PackageDB(t)
	ten := testutil.NewTenant(t, d, "ender")
	var uid, cid uuid.UUID
	if err := d.Admin.QueryRow(ctx, "INSERT INTO users (tenant_id, email) VALUES ($1, 'e@example.com') RETURNING id", ten.ID).Scan(&uid); err != nil {
		t.Fatal(err)
	}
	if err := d.Admin.QueryRow(ctx, `INSERT INTO sso_connections (tenant_id, slug, name, idp_metadata, idp_entity_id, sp_key_id, sp_key_sealed, sp_cert_der)
		VALUES ($1, 'idp', 'IdP', '<x/>', 'https://idp.example', 'k', '\x00', '\x00') RETURNING id`, ten.ID).Scan(&cid); err != nil {
		t.Fatal(err)
	}
	log := &endLog{}
	svc, err := session.NewService(d.Store, time.Now, nil, session.Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	policy := tenant.SessionPolicy{IdleTimeoutSeconds: 3600, AbsoluteTimeoutSeconds: 7200, MaxPerUser: 3}
	create := func(o session.Origin) (session.Issued, [][]byte) {
		t.Helper()
		var iss session.Issued
		var evicted [][]byte
		err := d.Store.InTenantTx(ctx, ten.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
			var err error
			o.AuthTime = time.Now()
			iss, evicted, err = svc.CreateFrom(ctx, tx, q, uid, policy, session.Meta{}, o)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return iss, evicted
	}
	pwd := session.Origin{Methods: []string{"password"}}
	want := func(what string, ids ...uuid.UUID) {
		t.Helper()
		got := log.take()
		if len(ids) == 0 {
			if len(got) != 0 {
				t.Fatalf("%s: ender heard %v, want nothing", what, got)
			}
			return
		}
		if len(got) != 1 {
			t.Fatalf("%s: ender called %d times (%v), want once", what, len(got), got)
		}
		slices.SortFunc(got[0], func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
		slices.SortFunc(ids, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
		if !slices.Equal(got[0], ids) {
			t.Fatalf("%s: ender heard %v, want %v", what, got[0], ids)
		}
	}
	live := func(id uuid.UUID) bool {
		var n int
		if err := d.Admin.QueryRow(ctx, "SELECT count(*) FROM sessions WHERE id = $1 AND revoked_at IS NULL", id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}

	a, _ := create(pwd)
	b, _ := create(pwd)
	c, _ := create(pwd)
	want("creating within the limit")
	p := session.Principal{Session: c.Session, TenantID: ten.ID, UserID: uid, Email: "e@example.com"}

	// Eviction: a fourth session pushes out the oldest.
	e, evicted := create(pwd)
	want("eviction", a.Session.ID)
	if len(evicted) != 1 || live(a.Session.ID) {
		t.Fatalf("eviction: %d hashes, oldest live %v", len(evicted), live(a.Session.ID))
	}

	// One session; an Ender error rolls it back.
	log.fail = errors.New("refused")
	if err := svc.Revoke(ctx, p, b.Session.ID, "test"); err == nil {
		t.Fatal("Revoke succeeded although the Ender failed")
	}
	log.take()
	if !live(b.Session.ID) {
		t.Fatal("a failed Ender did not roll the revocation back")
	}
	log.fail = nil
	if err := svc.Revoke(ctx, p, b.Session.ID, "test"); err != nil {
		t.Fatal(err)
	}
	want("revoke one", b.Session.ID)
	if err := svc.Revoke(ctx, p, b.Session.ID, "test"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
	want("revoking a revoked session")

	// The others.
	if n, err := svc.RevokeOthers(ctx, p); err != nil || n != 1 {
		t.Fatalf("revoke others: %d, %v", n, err)
	}
	want("revoke others", e.Session.ID)

	// SAML single logout, of one NameID at one connection.
	s1, _ := create(session.Origin{Methods: []string{"saml"}, ConnectionID: &cid, NameID: "e@idp", SessionIndex: "i1"})
	s2, _ := create(session.Origin{Methods: []string{"saml"}, ConnectionID: &cid, NameID: "other@idp", SessionIndex: "i2"})
	err = d.Store.InTenantTx(ctx, ten.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		_, err := svc.RevokeSAMLTx(ctx, tx, q, cid, "e@idp", nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want("SAML logout", s1.Session.ID)

	// All of the user (admin action).
	if n, err := svc.RevokeAllOf(ctx, ten.ID, uid, "admin", audit.By(ctx, uuid.Nil, "test")); err != nil || n != 2 {
		t.Fatalf("revoke all: %d, %v", n, err)
	}
	want("revoke all", c.Session.ID, s2.Session.ID)
}
