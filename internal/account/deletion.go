package account

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/events"
	"github.com/gatehouse-id/gatehouse/internal/export"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/token"
)

// PurgeArgs is the River job that purges a tenant's accounts whose grace period is over.
// It names the tenant only: no job row ever names a user.
type PurgeArgs struct {
	TenantID uuid.UUID `json:"tenant_id"`
}

// Kind names the job.
func (PurgeArgs) Kind() string { return "account.purge_due" }

// Deletion is a scheduled deletion.
type Deletion struct {
	Status     string    `json:"status"`
	PurgeAfter time.Time `json:"purge_after"`
}

// RequestDeletion schedules the user's account for deletion after the tenant's grace
// period (0: now): status pending_deletion, every session ended, a mail with the date and a
// cancel link, and the purge job — all in one transaction. by is who asked (the user or an
// administrator). An owner's account is deleted only by the owner themselves, another
// owner or the operator, and never the last owner's (authz.CheckDeletion).
// Errors: not_found, deletion_pending, owner_required, last_owner.
func (s *Service) RequestDeletion(ctx context.Context, t tenant.Tenant, userID uuid.UUID, by audit.Who, grace time.Duration) (Deletion, error) {
	purgeAfter := s.now().Add(grace)
	var revoked [][]byte
	err := s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		var err error
		revoked, err = s.RequestDeletionTx(ctx, tx, q, t, userID, by, purgeAfter)
		return err
	})
	s.sessions.Invalidate(revoked)
	s.sessions.InvalidateUser(userID)
	if err != nil {
		return Deletion{}, err
	}
	if grace == 0 {
		if _, err := s.PurgeDue(ctx, t); err != nil {
			return Deletion{}, err
		}
	}
	return Deletion{Status: "pending_deletion", PurgeAfter: purgeAfter}, nil
}

// RequestDeletionTx is RequestDeletion inside the caller's transaction (a SCIM DELETE
// records its own audit and event beside it). It returns the ended sessions' token hashes:
// the caller passes them to the session service's Invalidate, and calls InvalidateUser and,
// for a purge due now, PurgeDue after the commit. A cancel link is mailed when purgeAfter is
// in the future.
func (s *Service) RequestDeletionTx(ctx context.Context, tx pgx.Tx, q *sqlcgen.Queries, t tenant.Tenant, userID uuid.UUID, by audit.Who, purgeAfter time.Time) ([][]byte, error) {
	var revoked [][]byte
	if err := authz.CheckDeletion(ctx, q, userID, by.ActorID); err != nil {
		return nil, err
	}
	u, err := q.RequestUserDeletion(ctx, sqlcgen.RequestUserDeletionParams{ID: userID, PurgeAfter: &purgeAfter})
	if errors.Is(err, store.ErrNotFound) {
		return nil, apperr.New(apperr.Conflict, "deletion_pending", "This account is already scheduled for deletion.")
	}
	if err != nil {
		return nil, err
	}
	if revoked, err = s.sessions.RevokeAllTx(ctx, tx, q, u.ID, "account_deletion"); err != nil {
		return nil, err
	}
	if _, err := events.Emit(ctx, q, events.Event{Type: events.UserDeletionScheduled, User: u.ID,
		Data: events.DeletionScheduled{UserID: u.ID, PurgeAfter: purgeAfter}}); err != nil {
		return nil, err
	}
	if err := audit.Record(ctx, q, by, audit.Event{Action: audit.DeletionRequested, SubjectID: u.ID, SubjectLabel: u.Email,
		Details: map[string]any{"purge_after": purgeAfter}}); err != nil {
		return nil, err
	}
	if purgeAfter.After(s.now()) {
		tok, err := issueToken(ctx, q, u.ID, "cancel_deletion", u.Email, purgeAfter)
		if err != nil {
			return nil, err
		}
		if err := s.enqueue(ctx, tx, q, t, u.ID, u.Email, mail.TplDeletion, mail.Data{Email: u.Email,
			When: purgeAfter.UTC().Format("Monday 2 January 2006, 15:04 UTC"), Link: s.link(t, "/account/deletion/cancel", tok)}); err != nil {
			return nil, err
		}
	}
	return revoked, s.outbox.Schedule(ctx, tx, PurgeArgs{TenantID: t.ID}, purgeAfter)
}

// CancelDeletion restores an account scheduled for deletion with the emailed token.
// Errors: invalid_token (a new link: ResendDeletionCancel), token_used.
func (s *Service) CancelDeletion(ctx context.Context, t tenant.Tenant, tok string) (User, error) {
	hash, err := token.Parse(tok)
	if err != nil {
		return User{}, ErrInvalidToken
	}
	var u User
	err = s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		row, err := q.ConsumeEmailToken(ctx, sqlcgen.ConsumeEmailTokenParams{TokenHash: hash, Purposes: linkPurposes[LinkCancelDeletion]})
		if errors.Is(err, store.ErrNotFound) {
			return consumeFailed(ctx, q, hash, linkPurposes[LinkCancelDeletion])
		}
		if err != nil {
			return err
		}
		restored, err := q.CancelUserDeletion(ctx, row.UserID)
		if errors.Is(err, store.ErrNotFound) {
			return ErrInvalidToken
		}
		if err != nil {
			return err
		}
		u = userFromRow(restored)
		if _, err := events.Emit(ctx, q, events.Event{Type: events.UserDeletionCancelled, User: restored.ID,
			Data: events.UserRef{UserID: restored.ID}}); err != nil {
			return err
		}
		if err := audit.Record(ctx, q, audit.By(ctx, restored.ID, restored.Email), audit.Event{Action: audit.DeletionCancelled,
			SubjectID: restored.ID, SubjectLabel: restored.Email}); err != nil {
			return err
		}
		return s.securityNotice(ctx, tx, q, t, restored.ID, restored.Email, "Account deletion cancelled",
			"your account stays; sign in again to continue.")
	})
	s.sessions.InvalidateUser(u.ID)
	return u, err
}

// PurgeDue erases every account of the tenant whose grace period is over: the user row and,
// through the composite foreign keys, every row that belongs to the user; audit events are
// kept but pseudonymised; a receipt with counts per table is recorded. Each account is its
// own transaction that locks the row first, so retried jobs and racing workers purge it
// exactly once.
func (s *Service) PurgeDue(ctx context.Context, t tenant.Tenant) (int, error) {
	var due []uuid.UUID
	now := s.now()
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		var err error
		due, err = q.DueUserPurges(ctx, &now)
		return err
	}, store.ReadOnly(), store.Idempotent())
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range due {
		purged := false
		err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
			u, err := q.LockUserForPurge(ctx, sqlcgen.LockUserForPurgeParams{ID: id, Now: &now})
			if errors.Is(err, store.ErrNotFound) {
				return nil // purged or cancelled meanwhile
			}
			if err != nil {
				return err
			}
			counts, err := q.CountUserRows(ctx, u.ID)
			if err != nil {
				return err
			}
			pkCounts, err := q.CountUserPasskeyRows(ctx, u.ID)
			if err != nil {
				return err
			}
			if _, err := q.DeleteUser(ctx, u.ID); err != nil {
				return err
			}
			// After the delete: the database pseudonymises only users who no longer exist, and
			// derives the pseudonym itself from a key this role cannot read (migration 000010).
			pseud, err := q.PseudonymiseAudit(ctx, u.ID)
			if err != nil {
				return err
			}
			ref := pseud.UserRef
			if _, err := q.EraseUserEvents(ctx, &u.ID); err != nil {
				return err
			}
			if _, err := q.EraseUserDirectoryRequests(ctx, &u.ID); err != nil {
				return err
			}
			// Written after the erase, so it stays: ids only, and no user_id column (nothing
			// left in the database names the purged user but what apps must be told).
			deleted, err := events.Emit(ctx, q, events.Event{Type: events.UserDeleted, Data: events.UserRef{UserID: u.ID}})
			if err != nil {
				return err
			}
			b, _ := json.Marshal(map[string]any{"users": 1, "sessions": counts.Sessions, "email_tokens": counts.EmailTokens,
				"password_credentials": counts.PasswordCredentials, "known_devices": counts.KnownDevices,
				"totp_credentials": counts.TOTPCredentials, "recovery_codes": counts.RecoveryCodes,
				"login_challenges": counts.LoginChallenges, "mail_outbox": counts.MailOutbox, "role_bindings": counts.RoleBindings,
				"passkeys": pkCounts.Passkeys, "passkey_challenges": pkCounts.PasskeyChallenges,
				"audit_events_pseudonymised": pseud.Events})
			if err := q.InsertDeletionReceipt(ctx, sqlcgen.InsertDeletionReceiptParams{UserRef: ref, Counts: b}); err != nil {
				return err
			}
			// The receipt will name the webhook endpoints that acknowledge user.deleted.
			if err := q.LinkDeletionReceipt(ctx, sqlcgen.LinkDeletionReceiptParams{EventID: &deleted.ID, UserRef: ref}); err != nil {
				return err
			}
			purged = true
			return audit.Record(ctx, q, audit.Who{ActorLabel: "system"}, audit.Event{Action: audit.UserPurged, SubjectLabel: "deleted-user:" + ref})
		})
		if err != nil {
			return n, fmt.Errorf("purge user: %w", err)
		}
		if purged {
			n++
			s.sessions.InvalidateUser(id)
		}
	}
	return n, nil
}

// PurgeWorker runs PurgeArgs jobs.
type PurgeWorker struct {
	river.WorkerDefaults[PurgeArgs]
	accounts *Service
	tenants  *tenant.Service
}

// NewPurgeWorker returns the worker of account.purge_due jobs.
func NewPurgeWorker(accounts *Service, tenants *tenant.Service) (*PurgeWorker, error) {
	if accounts == nil || tenants == nil {
		return nil, errors.New("account: the purge worker needs the account and tenant services")
	}
	return &PurgeWorker{accounts: accounts, tenants: tenants}, nil
}

// Work purges the tenant's due accounts.
func (w *PurgeWorker) Work(ctx context.Context, job *river.Job[PurgeArgs]) error {
	t, err := w.tenants.GetByID(ctx, job.Args.TenantID)
	if tenant.IsNotFound(err) {
		return nil // the tenant itself is gone
	}
	if err != nil {
		return err
	}
	_, err = w.accounts.PurgeDue(ctx, t)
	return err
}

// Export returns everything stored about the user, as the data export document (GDPR
// Art. 15/20): the user's rows of every tenant table, without secrets.
func (s *Service) Export(ctx context.Context, t tenant.Tenant, userID uuid.UUID) (export.Document, error) {
	return export.Build(ctx, s.store, t.ID, userID, t.Slug, t.Name, s.now())
}
