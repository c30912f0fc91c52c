package sso

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/token"
)

// acsOutcome is what one attempt of the ACS transaction decided.
type acsOutcome struct {
	tr     *trace
	conn   sqlcgen.SSOConnection
	m      *material
	fromDB bool // the row was read in this attempt (cached once the transaction ends)

	// A refusal found by the checks: reason and cause, and the attempt's reference when it
	// was recorded inside the transaction.
	reason string
	cause  error
	ref    string

	res    ACSResult // a test-mode report
	signed *signedIn // a sign-in
}

// ACS validates a posted response and signs the user in. Every attempt is recorded with
// its outcome; a refusal returns a *Failure (wrapped in ErrSSOFailed's code for APIs).
//
// One write transaction does it all: it consumes the pending request the RelayState
// refers to (single use: consumed whether or not the response then validates), runs the
// checks, and then either records the refusal or records the message ids, resolves the
// user (JIT), creates the session and records the attempt. A refusal found only after
// the sign-in's writes (a replay, an account refused) rolls them back; the request is then
// consumed again in the transaction that records the failure. The connection, its
// material and crewjam's SP come from the connection cache when it is on; then crewjam's
// validation runs before the transaction for the request the response names, and the
// transaction uses that verdict only for the same SP value and request id (else it
// validates again), so no database connection is held during the signature check.
func (s *Service) ACS(ctx context.Context, t tenant.Tenant, in ACSInput) (ACSResult, error) {
	if !slugRe.MatchString(in.Slug) {
		return ACSResult{}, ErrNotFound
	}
	// Decoding and the XML shape checks need nothing from the database: done once.
	dec := decodeResponse(in.SAMLResponse)
	relayHash, perr := token.Parse(in.RelayState)
	consume := func(ctx context.Context, q *sqlcgen.Queries, connID uuid.UUID) (*sqlcgen.SAMLRequest, error) {
		if in.RelayState == "" || perr != nil {
			return nil, nil
		}
		r, err := q.ConsumeSAMLRequest(ctx, sqlcgen.ConsumeSAMLRequestParams{RelayHash: relayHash, ConnectionID: connID})
		switch {
		case err == nil:
			return &r, nil
		case errors.Is(err, store.ErrNotFound):
			return nil, nil
		}
		return nil, err
	}
	cached, stamp := s.conns.get(t.ID, in.Slug)
	if cached != nil {
		// crewjam's work before the transaction (no database connection held meanwhile).
		dec.pre = s.preParse(cached.m, dec)
	}
	var o acsOutcome
	err := s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		var err error
		o, err = s.acsAttempt(ctx, tx, q, t, in, dec, cached, consume)
		return err
	})
	if o.fromDB && o.m != nil {
		s.conns.put(t.ID, stamp, o.conn, o.m)
	}
	var r *refusal
	switch {
	case err == nil && o.reason == "" && o.signed != nil:
		return s.afterSignIn(ctx, t, o), nil
	case err == nil && o.reason == "":
		return o.res, nil // test mode
	case err == nil:
		// Refused and recorded in the transaction, which consumed the request.
		s.logRefusal(t, o.tr, o.reason, o.ref, o.cause)
	case errors.As(err, &r):
		// Refused by the sign-in (rolled back): recorded apart, consuming the request again.
		name := "user"
		if r.reason == "replayed" {
			name = "replay"
		}
		o.tr.step(name, r.err, "")
		o.reason, o.cause = r.reason, r.err
		o.tr.report.Reason = o.reason
		o.ref = s.recordFailureWith(ctx, t, o.tr, o.reason, o.cause, in.Who, func(q *sqlcgen.Queries) error {
			_, err := consume(ctx, q, o.conn.ID)
			return err
		})
	case o.reason != "":
		// Refused, but recording it in the transaction failed: once more on its own.
		o.ref = s.recordFailureWith(ctx, t, o.tr, o.reason, o.cause, in.Who, func(q *sqlcgen.Queries) error {
			_, err := consume(ctx, q, o.conn.ID)
			return err
		})
	default:
		return ACSResult{}, err // not found, or infrastructure (database down): not the sender's fault
	}
	s.count(ctx, "failure", o.reason, o.tr.mode)
	return ACSResult{Purpose: o.tr.mode, Reference: o.ref, Report: &o.tr.report},
		&Failure{Reason: o.reason, Reference: o.ref, Detail: errDetail(o.cause)}
}

// acsAttempt is one run of the ACS transaction. The store runs it again after a
// serialization failure: it starts from nothing but the arguments.
func (s *Service) acsAttempt(ctx context.Context, tx pgx.Tx, q *sqlcgen.Queries, t tenant.Tenant, in ACSInput, dec decoded, cached *connEntry,
	consume func(context.Context, *sqlcgen.Queries, uuid.UUID) (*sqlcgen.SAMLRequest, error)) (acsOutcome, error) {
	var o acsOutcome
	if cached != nil {
		o.conn, o.m = cached.conn, cached.m
	} else {
		c, err := q.GetSSOConnectionBySlug(ctx, in.Slug)
		if errors.Is(err, store.ErrNotFound) || err == nil && c.Protocol != ProtocolSAML {
			return o, ErrNotFound
		}
		if err != nil {
			return o, err
		}
		if o.m, err = s.load(t, c); err != nil {
			return o, err
		}
		o.conn, o.fromDB = c, true
	}
	o.tr = &trace{mode: PurposeLogin, report: Report{Attributes: map[string][]string{}}, conn: &o.conn}
	req, err := consume(ctx, q, o.conn.ID)
	if err != nil {
		return o, err
	}
	a, reason, err := s.validate(ctx, q, o.conn, o.m, req, in, dec, o.tr)
	if err != nil && reason == "" {
		return o, err
	}
	if reason != "" {
		o.reason, o.cause = reason, err
		o.tr.report.Reason = reason
		o.ref, err = s.recordFailureTx(ctx, q, o.tr, reason, in.Who)
		return o, err
	}
	if req != nil && req.Purpose == PurposeTest {
		o.tr.step("test_mode", nil, "no session created")
		ref, err := s.recordSuccessTx(ctx, q, o.tr, &o.tr.report, nil, in.Who, "", uuid.Nil)
		o.res = ACSResult{Purpose: PurposeTest, Reference: ref, Report: &o.tr.report, ReturnTo: req.ReturnTo}
		return o, err
	}
	so, err := s.signInAttempt(ctx, tx, q, t, o.conn, o.m, req, in, o.tr, a)
	if err != nil {
		return o, err
	}
	o.signed = &so
	return o, nil
}

// afterSignIn is what may only happen once the sign-in committed.
func (s *Service) afterSignIn(ctx context.Context, t tenant.Tenant, o acsOutcome) ACSResult {
	out := o.signed
	o.tr.report = out.report
	s.sessions.Invalidate(out.evicted)
	if out.provisioned {
		s.cfg.RolesChanged(t.ID)
	}
	if out.oldHash != nil {
		s.sessions.Invalidate([][]byte{out.oldHash})
	}
	s.count(ctx, "success", "ok", o.tr.mode)
	res := out.res
	res.Report = &o.tr.report
	return res
}
