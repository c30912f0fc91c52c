package sso

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/token"
)

// The ACS, file by file along the pipeline: this file is the entry point and its
// orchestration; acs_validate.go checks the response (XML shape, the request it answers,
// crewjam's validation, issuer, audience, freshness); acs_user.go resolves the user
// (identity, linking, JIT, roles, invitations); acs_session.go runs the sign-in
// transaction and records every attempt.

// MaxACSBody is the limit on an ACS request body, applied before any parsing.
const MaxACSBody = 512 << 10

// maxNameID bounds the identity a NameID may carry.
const maxNameID = 512

// ACSInput is a response as the browser posted it.
type ACSInput struct {
	Slug         string
	SAMLResponse string
	RelayState   string
	Browser      string // the BrowserCookie value, if the browser sent it
	Meta         session.Meta
	Who          audit.Who
}

// ACSResult is an accepted response: a new session (login), a stepped-up session
// (reauth), or a report (test mode, no session).
type ACSResult struct {
	Purpose   string
	Issued    session.Issued
	ReturnTo  string
	Reference string
	// Report is the attempt's trace, as recorded for the admin (test mode shows it).
	Report *Report
	// Provisioned tells that this sign-in created the user (JIT) and granted a role.
	Provisioned bool
}

// Report is what a test login shows the admin: what came back and every check.
type Report struct {
	Issuer       string              `json:"issuer"`
	NameID       string              `json:"name_id"`
	NameIDFormat string              `json:"name_id_format"`
	SessionIndex string              `json:"session_index,omitempty"`
	AuthnInstant *time.Time          `json:"authn_instant,omitempty"`
	Attributes   map[string][]string `json:"attributes"`
	Email        string              `json:"email,omitempty"`
	// EmailVerified is the OIDC email_verified claim (nil for SAML): an unverified
	// address never links to an existing account.
	EmailVerified *bool  `json:"email_verified,omitempty"`
	Steps         []Step `json:"steps"`
	Reason        string `json:"reason,omitempty"`
}

// Step is one validation step and its outcome.
type Step struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// Failure is a refused response: the user sees only Reference; Reason is in the audit
// log and in the connection's attempt trace.
type Failure struct {
	Reason    string
	Reference string
	Detail    string
}

func (f *Failure) Error() string { return "sso: " + f.Reason + ": " + f.Detail }

// accountRefusals are the refusals about the account itself, which its owner can act on:
// they are told what password sign-in tells them for the same account (same code and
// sentence), not the generic sso_failed.
var accountRefusals = map[string]*apperr.Error{
	"account_disabled": account.ErrAccountDisabled,
	"account_deletion": account.ErrPendingDeletion,
}

// Public is the error a client may see for f: the account's own error (account_disabled,
// account_pending_deletion) when the account is what was refused, else ErrSSOFailed;
// either carries the reference in its details.
func (f *Failure) Public() *apperr.Error {
	e, ok := accountRefusals[f.Reason]
	if !ok {
		e = ErrSSOFailed
	}
	details := map[string]any{"reference": f.Reference}
	for k, v := range e.Details {
		details[k] = v
	}
	return e.WithDetails(details)
}

// AccountRefused tells whether f refused the account itself (see Public).
func (f *Failure) AccountRefused() bool {
	_, ok := accountRefusals[f.Reason]
	return ok
}

// ErrSSOFailed is what a client sees for any refused response.
var ErrSSOFailed = apperr.New(apperr.Unauthenticated, "sso_failed", "Single sign-on did not succeed.")

// trace accumulates the steps of one attempt. It is written outside transactions only:
// the sign-in transaction, which the store may run more than once, works on a copy (see
// signIn).
type trace struct {
	report Report
	conn   *sqlcgen.SSOConnection
	mode   string
}

func (tr *trace) step(name string, err error, detail string) {
	tr.report.Steps = appendStep(tr.report.Steps, name, err, detail)
}

func appendStep(steps []Step, name string, err error, detail string) []Step {
	st := Step{Name: name, OK: err == nil, Detail: detail}
	if err != nil && detail == "" {
		st.Detail = clipMsg(err.Error())
	}
	return append(steps, st)
}

// ACS validates a posted response and signs the user in. Every attempt is recorded with
// its outcome; a refusal returns a *Failure (wrapped in ErrSSOFailed's code for APIs).
func (s *Service) ACS(ctx context.Context, t tenant.Tenant, in ACSInput) (ACSResult, error) {
	tr := &trace{mode: PurposeLogin, report: Report{Attributes: map[string][]string{}}}
	c, req, err := s.open(ctx, t, in.Slug, in.RelayState)
	if err != nil {
		return ACSResult{}, err
	}
	tr.conn = &c
	res, reason, err := s.acs(ctx, t, c, req, in, tr)
	if err != nil && reason == "" {
		return ACSResult{}, err // infrastructure (database down): not the sender's fault
	}
	if reason != "" {
		tr.report.Reason = reason
		ref := s.recordFailure(ctx, t, tr, reason, err, in.Who)
		s.count(ctx, "failure", reason, tr.mode)
		return ACSResult{Purpose: tr.mode, Reference: ref, Report: &tr.report}, &Failure{Reason: reason, Reference: ref, Detail: errDetail(err)}
	}
	s.count(ctx, "success", "ok", tr.mode)
	return res, nil
}

func (s *Service) count(ctx context.Context, result, reason, mode string) {
	if s.results != nil {
		s.results.Add(ctx, 1, metric.WithAttributes(attribute.String("result", result), attribute.String("reason", reason),
			attribute.String("mode", attemptMode(mode))))
	}
}

func errDetail(err error) string {
	if err == nil {
		return ""
	}
	return clipMsg(err.Error())
}

// open finds the connection and consumes the pending request the RelayState refers to,
// in one transaction (single use: consumed whether or not the response then validates).
func (s *Service) open(ctx context.Context, t tenant.Tenant, slug, relay string) (sqlcgen.SSOConnection, *sqlcgen.SAMLRequest, error) {
	var c sqlcgen.SSOConnection
	var req *sqlcgen.SAMLRequest
	if !slugRe.MatchString(slug) {
		return c, nil, ErrNotFound
	}
	relayHash, perr := token.Parse(relay)
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		c, req = sqlcgen.SSOConnection{}, nil // nothing of an attempt the store retries
		conn, err := q.GetSSOConnectionBySlug(ctx, slug)
		if errors.Is(err, store.ErrNotFound) || err == nil && conn.Protocol != ProtocolSAML {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		var pending *sqlcgen.SAMLRequest
		if relay != "" && perr == nil {
			r, err := q.ConsumeSAMLRequest(ctx, sqlcgen.ConsumeSAMLRequestParams{RelayHash: relayHash, ConnectionID: conn.ID})
			switch {
			case err == nil:
				pending = &r
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
		}
		c, req = conn, pending
		return nil
	})
	return c, req, err
}

// acs runs the pipeline: validation, then (except in test mode) the sign-in transaction,
// then what may only happen once that transaction committed. A refusal has a reason; an
// error without one is infrastructure.
func (s *Service) acs(ctx context.Context, t tenant.Tenant, c sqlcgen.SSOConnection, req *sqlcgen.SAMLRequest, in ACSInput, tr *trace) (ACSResult, string, error) {
	m, err := s.load(t, c)
	if err != nil {
		return ACSResult{}, "", err
	}
	a, reason, err := s.validate(ctx, t, c, m, req, in, tr)
	if err != nil || reason != "" {
		return ACSResult{}, reason, err
	}
	if req != nil && req.Purpose == PurposeTest {
		tr.step("test_mode", nil, "no session created")
		ref := s.recordSuccess(ctx, t, tr, in.Who)
		return ACSResult{Purpose: PurposeTest, Reference: ref, Report: &tr.report, ReturnTo: req.ReturnTo}, "", nil
	}

	out, err := s.signIn(ctx, t, c, m, req, in, tr, a)
	var r *refusal
	if errors.As(err, &r) {
		name := "user"
		if r.reason == "replayed" {
			name = "replay"
		}
		tr.step(name, r.err, "")
		return ACSResult{}, r.reason, r.err
	}
	if err != nil {
		return ACSResult{}, "", err
	}
	// Committed: only now does the outcome of the attempt that committed count.
	tr.report = out.report
	s.sessions.Invalidate(out.evicted)
	if out.provisioned {
		s.cfg.RolesChanged(t.ID)
	}
	if out.oldHash != nil {
		s.sessions.Invalidate([][]byte{out.oldHash})
	}
	res := out.res
	res.Report = &tr.report
	return res, "", nil
}
