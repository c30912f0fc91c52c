package sso

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
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
