package sso

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/token"
)

// refusal is a sign-in the transaction refused, for a stable reason (docs/sso.md); the
// transaction is rolled back.
type refusal struct {
	reason string
	err    error
}

func (r *refusal) Error() string { return r.reason + ": " + r.err.Error() }

func refuse(reason string, err error) error { return &refusal{reason: reason, err: err} }

// signedIn is what the committed attempt of the sign-in transaction produced.
type signedIn struct {
	res         ACSResult
	report      Report   // the trace with the user step, as recorded in the attempt row
	provisioned bool     // a user was created (with a role)
	evicted     [][]byte // token hashes of the sessions the new one pushed out
	oldHash     []byte   // the token hash a step-up replaced
}

// signIn records the message IDs in the replay cache, resolves the user, creates (or, for
// a re-authentication, steps up) the session and records the attempt, in one
// transaction. A refusal is a *refusal.
//
// The store runs the transaction again after a serialization failure or deadlock, so an
// attempt changes nothing declared outside it: tr is only read, each attempt builds its
// own copy of the report, and out is replaced by every attempt (the one that commits
// comes last).
func (s *Service) signIn(ctx context.Context, t tenant.Tenant, c sqlcgen.SSOConnection, m *material, req *sqlcgen.SAMLRequest, in ACSInput, tr *trace, a accepted) (signedIn, error) {
	var out signedIn
	err := s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		var err error
		out, err = s.signInAttempt(ctx, tx, q, t, c, m, req, in, tr, a)
		return err
	})
	return out, err
}

// signInAttempt is one run of the sign-in transaction.
func (s *Service) signInAttempt(ctx context.Context, tx pgx.Tx, q *sqlcgen.Queries, t tenant.Tenant, c sqlcgen.SSOConnection, m *material, req *sqlcgen.SAMLRequest, in ACSInput, tr *trace, a accepted) (signedIn, error) {
	if err := s.atSignIn("begin"); err != nil {
		return signedIn{}, err
	}
	// Replay cache: response and assertion ids, once per connection until they expire.
	until := a.replayUntil
	if a.assertion != nil {
		until = notOnOrAfter(a.assertion)
	}
	n, err := q.RecordSAMLMessages(ctx, sqlcgen.RecordSAMLMessagesParams{ConnectionID: c.ID, Ids: a.msgIDs, ExpiresAt: s.replayExpiry(until)})
	if err != nil {
		return signedIn{}, err
	}
	if int(n) < len(a.msgIDs) {
		return signedIn{}, refuse("replayed", errors.New("this response or assertion was already used"))
	}
	u, err := s.resolveUser(ctx, q, m, &tr.report, in.Who)
	if err != nil {
		return signedIn{}, err
	}
	o := signedIn{report: tr.report, provisioned: u.provisioned}
	o.report.Steps = appendStep(slices.Clone(tr.report.Steps), "user", nil, u.detail)
	if o.res, o.evicted, o.oldHash, err = s.issueSession(ctx, tx, q, t, c, req, in, tr.mode, a, u, tr.report.SessionIndex); err != nil {
		return signedIn{}, err
	}
	o.res.Provisioned = u.provisioned
	if o.res.Reference, err = s.recordSuccessTx(ctx, q, tr, &o.report, &u.user.ID, in.Who, u.user.Email, o.res.Issued.Session.ID); err != nil {
		return signedIn{}, err
	}
	if err := s.atSignIn("commit"); err != nil {
		return signedIn{}, err
	}
	return o, nil
}

// issueSession creates the user's SSO session, or steps up the session a
// re-authentication request was made for. It returns the token hashes of the sessions the
// new one evicted, and the replaced token hash of a step-up.
func (s *Service) issueSession(ctx context.Context, tx pgx.Tx, q *sqlcgen.Queries, t tenant.Tenant, c sqlcgen.SSOConnection, req *sqlcgen.SAMLRequest, in ACSInput,
	mode string, a accepted, u resolved, sessionIndex string) (ACSResult, [][]byte, []byte, error) {
	if req != nil && req.Purpose == PurposeReauth {
		sess, err := q.GetSessionByID(ctx, *req.SessionID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return ACSResult{}, nil, nil, err
		}
		if err != nil || sess.UserID != u.user.ID || sess.RevokedAt != nil {
			return ACSResult{}, nil, nil, refuse("reauth_user_mismatch", errors.New("the IdP authenticated someone other than the signed-in user"))
		}
		iss, old, err := session.StepUp(ctx, q, sess.ID, "saml", s.now())
		if err != nil {
			return ACSResult{}, nil, nil, err
		}
		return ACSResult{Purpose: PurposeReauth, Issued: iss, ReturnTo: req.ReturnTo}, nil, old, nil
	}
	if !u.signedIn {
		if err := q.TouchLastLogin(ctx, u.user.ID); err != nil {
			return ACSResult{}, nil, nil, err
		}
	}
	iss, evicted, err := s.sessions.CreateFrom(ctx, tx, q, u.user.ID, t.Policy.Sessions, in.Meta, session.Origin{Methods: []string{"saml"},
		AuthTime: a.authnAt, ConnectionID: &c.ID, NameID: a.nameID, SessionIndex: sessionIndex})
	if err != nil {
		return ACSResult{}, nil, nil, err
	}
	returnTo := c.DefaultRedirect
	if req != nil {
		returnTo = req.ReturnTo
	}
	return ACSResult{Purpose: mode, Issued: iss, ReturnTo: returnTo}, evicted, nil, nil
}

// atSignIn runs the test seam of the sign-in transaction, if one is set.
func (s *Service) atSignIn(point string) error {
	if h := s.signInHook.Load(); h != nil {
		return (*h)(point)
	}
	return nil
}

// recordFailure records a refused attempt in the trace and the audit log; a failure to
// record it is logged (the user is refused either way).
func (s *Service) recordFailure(ctx context.Context, t tenant.Tenant, tr *trace, reason string, cause error, who audit.Who) string {
	return s.recordFailureWith(ctx, t, tr, reason, cause, who, nil)
}

// recordFailureWith is recordFailure with first (when set) run in the same transaction
// (the ACS consumes its request there after a rolled-back sign-in).
func (s *Service) recordFailureWith(ctx context.Context, t tenant.Tenant, tr *trace, reason string, cause error, who audit.Who, first func(q *sqlcgen.Queries) error) string {
	var ref string
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		if first != nil {
			if err := first(q); err != nil {
				return err
			}
		}
		var err error
		ref, err = s.recordFailureTx(ctx, q, tr, reason, who)
		return err
	})
	if err != nil {
		if ref == "" {
			ref = reference()
		}
		s.logger.Error("record sso failure", "tenant", t.Slug, "connection", tr.conn.Slug, "reason", reason, "reference", ref, "err", err)
	}
	s.logRefusal(t, tr, reason, ref, cause)
	return ref
}

// recordFailureTx records a refused attempt (its trace row and audit event) in q's
// transaction and returns the attempt's reference.
func (s *Service) recordFailureTx(ctx context.Context, q *sqlcgen.Queries, tr *trace, reason string, who audit.Who) (string, error) {
	ref := reference()
	details, err := json.Marshal(tr.report)
	if err != nil {
		return ref, fmt.Errorf("sso attempt trace: %w", err)
	}
	if _, err := q.InsertSSOAttempt(ctx, sqlcgen.InsertSSOAttemptParams{ConnectionID: tr.conn.ID, Reference: ref, Mode: attemptMode(tr.mode),
		Success: false, Reason: reason, Details: details}); err != nil {
		return ref, fmt.Errorf("record sso attempt: %w", err)
	}
	return ref, audit.Record(ctx, q, who, audit.Event{Action: audit.SSOLoginFailed, Details: map[string]any{
		"connection_id": tr.conn.ID, "connection": tr.conn.Slug, "reason": reason, "reference": ref, "mode": tr.mode}})
}

// logRefusal logs a refused attempt (no secrets: the reason and the clipped detail).
func (s *Service) logRefusal(t tenant.Tenant, tr *trace, reason, ref string, cause error) {
	s.logger.Info("sso refused", "tenant", t.Slug, "connection", tr.conn.Slug, "reason", reason, "reference", ref, "detail", errDetail(cause))
}

// recordSuccess records a test-mode attempt (no session, no user) in its own
// transaction; a failure to record it is logged and the report still shown.
func (s *Service) recordSuccess(ctx context.Context, t tenant.Tenant, tr *trace, who audit.Who) string {
	var ref string
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		r, err := s.recordSuccessTx(ctx, q, tr, &tr.report, nil, who, "", uuid.Nil)
		ref = r
		return err
	})
	if err != nil {
		s.logger.Error("record sso attempt", "tenant", t.Slug, "connection", tr.conn.Slug, "err", err)
	}
	return ref
}

// recordSuccessTx records an accepted attempt (with report as its trace) and its audit
// event in q's transaction, and returns the attempt's reference.
func (s *Service) recordSuccessTx(ctx context.Context, q *sqlcgen.Queries, tr *trace, report *Report, userID *uuid.UUID, who audit.Who, email string, sessionID uuid.UUID) (string, error) {
	ref := reference()
	details, err := json.Marshal(report)
	if err != nil {
		return "", fmt.Errorf("sso attempt trace: %w", err)
	}
	if _, err := q.InsertSSOAttempt(ctx, sqlcgen.InsertSSOAttemptParams{ConnectionID: tr.conn.ID, Reference: ref, Mode: attemptMode(tr.mode),
		Success: true, Reason: "ok", UserID: userID, Details: details}); err != nil {
		return "", fmt.Errorf("record sso attempt: %w", err)
	}
	action := audit.SSOLogin
	if tr.mode == PurposeTest {
		action = audit.SSOTest
	}
	ev := audit.Event{Action: action, Details: map[string]any{"connection_id": tr.conn.ID, "connection": tr.conn.Slug, "mode": tr.mode, "reference": ref}}
	if userID != nil {
		ev.SubjectID, ev.SubjectLabel = *userID, email
		ev.Details["session_id"] = sessionID
		who.ActorID, who.ActorLabel = *userID, email
	}
	if err := audit.Record(ctx, q, who, ev); err != nil {
		return "", err
	}
	return ref, nil
}

func attemptMode(m string) string {
	if slices.Contains([]string{"login", "test", "reauth", "idp_initiated"}, m) {
		return m
	}
	return "login"
}

// reference is a short id the user can quote to the admin.
func reference() string {
	tok, _ := token.New() // the second value is the token's hash
	return strings.ToUpper(tok[:10])
}
