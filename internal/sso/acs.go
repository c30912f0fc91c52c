package sso

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/crewjam/saml"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/emailaddr"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/token"
)

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
	Report    *Report
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
	Steps        []Step              `json:"steps"`
	Reason       string              `json:"reason,omitempty"`
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

// ErrSSOFailed is what a client sees for any refused response.
var ErrSSOFailed = apperr.New(apperr.Unauthenticated, "sso_failed", "Single sign-on did not succeed.")

// trace accumulates the steps of one attempt.
type trace struct {
	report      Report
	conn        *sqlcgen.SsoConnection
	mode        string
	provisioned bool // a user was created (with a role) in this attempt
	signedIn    bool // the known identity's last sign-in is already recorded
}

func (tr *trace) step(name string, err error, detail string) {
	st := Step{Name: name, OK: err == nil, Detail: detail}
	if err != nil && detail == "" {
		st.Detail = clipMsg(err.Error())
	}
	tr.report.Steps = append(tr.report.Steps, st)
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
func (s *Service) open(ctx context.Context, t tenant.Tenant, slug, relay string) (sqlcgen.SsoConnection, *sqlcgen.SamlRequest, error) {
	var c sqlcgen.SsoConnection
	var req *sqlcgen.SamlRequest
	if !slugRe.MatchString(slug) {
		return c, nil, ErrNotFound
	}
	relayHash, perr := token.Parse(relay)
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		var err error
		c, err = q.GetSSOConnectionBySlug(ctx, slug)
		if store.IsNotFound(err) {
			return ErrNotFound
		}
		if err != nil || relay == "" || perr != nil {
			return err
		}
		r, err := q.ConsumeSAMLRequest(ctx, sqlcgen.ConsumeSAMLRequestParams{RelayHash: relayHash, ConnectionID: c.ID})
		if store.IsNotFound(err) {
			return nil
		}
		if err == nil {
			req = &r
		}
		return err
	})
	return c, req, err
}

func (s *Service) acs(ctx context.Context, t tenant.Tenant, c sqlcgen.SsoConnection, req *sqlcgen.SamlRequest, in ACSInput, tr *trace) (ACSResult, string, error) {
	m, err := s.load(t, c)
	if err != nil {
		return ACSResult{}, "", err
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(in.SAMLResponse))
	if err != nil || len(raw) == 0 {
		tr.step("decode", errors.New("SAMLResponse is not base64"), "")
		return ACSResult{}, "malformed_response", errors.New("SAMLResponse is not base64")
	}
	tr.step("decode", nil, fmt.Sprintf("%d bytes", len(raw)))
	shape, err := inspect(raw)
	if err != nil {
		tr.step("xml_shape", err, "")
		return ACSResult{}, shapeReason(err), err
	}
	tr.step("xml_shape", nil, "")

	// Which request does this answer? The RelayState is our opaque reference.
	if req != nil {
		bh := sha256.Sum256([]byte(in.Browser))
		if in.Browser == "" || subtle.ConstantTimeCompare(bh[:], req.BrowserHash) != 1 {
			err := errors.New("the response arrived in a different browser than the one that started the login")
			tr.step("request", err, "")
			return ACSResult{}, "browser_mismatch", err
		}
	} else if in.RelayState != "" {
		if reason := s.requestFailure(ctx, t, c, in.RelayState); reason != "no_pending_request" || !c.AllowIdpInitiated {
			err := errors.New("the request this response answers is unknown, used or expired")
			tr.step("request", err, "")
			return ACSResult{}, reason, err
		}
	}
	if req != nil {
		tr.mode = req.Purpose
		tr.step("request", nil, "answers request "+req.ID)
	} else {
		if !c.AllowIdpInitiated {
			err := errors.New("no request of ours matches and IdP-initiated login is off for this connection")
			tr.step("request", err, "")
			if shape.inResponseTo != "" {
				return ACSResult{}, "unknown_in_response_to", err
			}
			return ACSResult{}, "idp_initiated_disabled", err
		}
		tr.mode = "idp_initiated"
		tr.step("request", nil, "unsolicited (IdP-initiated) response")
	}
	if !c.Enabled && tr.mode != PurposeTest {
		tr.step("connection", ErrDisabled, "connection is disabled")
		return ACSResult{}, "connection_disabled", ErrDisabled
	}

	sp := s.serviceProvider(ctx, t, m, req == nil)
	var ids []string
	if req != nil {
		ids = []string{req.ID}
	}
	sp.ReplayCache = nil // recorded in the sign-in transaction below
	acsURL := sp.AcsURL
	assertion, err := sp.ParseXMLResponse(raw, ids, acsURL)
	if err != nil {
		reason := crewjamReason(err)
		cause := errors.New(privateMessage(err))
		tr.step("signature_and_conditions", cause, "")
		return ACSResult{}, reason, cause
	}
	tr.step("signature_and_conditions", nil, "signature, destination, recipient, issuer, time, InResponseTo")
	fillReport(&tr.report, assertion, m.mapping)

	// Gatehouse's own checks on what crewjam accepted.
	if got := assertion.Issuer.Value; got != c.IdpEntityID {
		err := fmt.Errorf("issuer %q is not this connection's IdP %q", clipMsg(got), clipMsg(c.IdpEntityID))
		tr.step("issuer", err, "")
		return ACSResult{}, "issuer_mismatch", err
	}
	tr.step("issuer", nil, "")
	if err := requireAudience(assertion, sp.EntityID); err != nil {
		tr.step("audience", err, "")
		return ACSResult{}, "audience_mismatch", err
	}
	tr.step("audience", nil, sp.EntityID)
	msgIDs := []string{assertion.ID}
	if shape.responseID != "" {
		msgIDs = append(msgIDs, "response:"+shape.responseID)
	}
	if req == nil {
		if age := s.now().Sub(assertion.IssueInstant); age > 2*time.Minute+s.cfg.Skew || age < -s.cfg.Skew {
			err := fmt.Errorf("IdP-initiated assertion issued %s ago; at most 2 minutes are accepted", age.Round(time.Second))
			tr.step("freshness", err, "")
			return ACSResult{}, "stale_idp_initiated", err
		}
	}
	nameID := tr.report.NameID
	if nameID == "" || len(nameID) > maxNameID {
		err := errors.New("the assertion has no usable NameID")
		tr.step("name_id", err, "")
		return ACSResult{}, "name_id_missing", err
	}
	tr.step("name_id", nil, "")
	authnAt := s.now()
	if tr.report.AuthnInstant != nil {
		authnAt = *tr.report.AuthnInstant
	}
	if req != nil && req.Purpose == PurposeReauth {
		if authnAt.Before(req.CreatedAt.Add(-s.cfg.Skew)) {
			err := fmt.Errorf("AuthnInstant %s is older than the re-authentication request", authnAt.Format(time.RFC3339))
			tr.step("fresh_authentication", err, "")
			return ACSResult{}, "not_fresh", err
		}
		tr.step("fresh_authentication", nil, "")
	}
	if req != nil && req.Purpose == PurposeTest {
		tr.step("test_mode", nil, "no session created")
		ref := s.recordSuccess(ctx, t, tr, nil, in.Who)
		return ACSResult{Purpose: PurposeTest, Reference: ref, Report: &tr.report, ReturnTo: req.ReturnTo}, "", nil
	}

	var res ACSResult
	var reason string
	var evicted [][]byte
	var oldHash []byte
	err = s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		// Replay cache: response and assertion ids, once per connection until they expire.
		n, err := q.RecordSAMLMessages(ctx, sqlcgen.RecordSAMLMessagesParams{ConnectionID: c.ID, Ids: msgIDs, ExpiresAt: s.replayExpiry(notOnOrAfter(assertion))})
		if err != nil {
			return err
		}
		if int(n) < len(msgIDs) {
			reason = "replayed"
			return errors.New("this response or assertion was already used")
		}
		user, r, err := s.resolveUser(ctx, t, q, m, tr, in.Who)
		if err != nil || r != "" {
			reason = r
			return err
		}
		if req != nil && req.Purpose == PurposeReauth {
			sess, err := q.GetSessionByID(ctx, *req.SessionID)
			if err != nil || sess.UserID != user.ID || sess.RevokedAt != nil {
				reason = "reauth_user_mismatch"
				return errors.New("the IdP authenticated someone other than the signed-in user")
			}
			iss, old, err := session.StepUp(ctx, q, sess.ID, "saml", s.now())
			if err != nil {
				return err
			}
			oldHash = old
			res = ACSResult{Purpose: PurposeReauth, Issued: iss, ReturnTo: req.ReturnTo}
			res.Reference = s.recordSuccessTx(ctx, q, tr, &user.ID, in.Who, user.Email, iss.Session.ID)
			return nil
		}
		if !tr.signedIn {
			if err := q.TouchLastLogin(ctx, user.ID); err != nil {
				return err
			}
		}
		iss, ev, err := session.CreateFrom(ctx, q, user.ID, t.Policy.Sessions, in.Meta, session.Origin{Methods: []string{"saml"},
			AuthTime: authnAt, ConnectionID: &c.ID, NameID: nameID, SessionIndex: tr.report.SessionIndex})
		if err != nil {
			return err
		}
		evicted = ev
		returnTo := c.DefaultRedirect
		if req != nil {
			returnTo = req.ReturnTo
		}
		res = ACSResult{Purpose: tr.mode, Issued: iss, ReturnTo: returnTo}
		res.Reference = s.recordSuccessTx(ctx, q, tr, &user.ID, in.Who, user.Email, iss.Session.ID)
		return nil
	})
	if reason != "" {
		name := "user"
		if reason == "replayed" {
			name = "replay"
		}
		tr.step(name, err, "")
		return ACSResult{}, reason, err
	}
	if err != nil {
		return ACSResult{}, "", err
	}
	s.sessions.Invalidate(evicted)
	if tr.provisioned && s.cfg.RolesChanged != nil {
		s.cfg.RolesChanged(t.ID)
	}
	if oldHash != nil {
		s.sessions.Invalidate([][]byte{oldHash})
	}
	return res, "", nil
}

// requestFailure names why a RelayState matched no pending request.
func (s *Service) requestFailure(ctx context.Context, t tenant.Tenant, c sqlcgen.SsoConnection, relay string) string {
	relayHash, err := token.Parse(relay)
	if err != nil {
		return "no_pending_request"
	}
	reason := "no_pending_request"
	_ = s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		r, err := q.GetSAMLRequestByRelay(ctx, relayHash)
		switch {
		case err != nil:
		case r.ConnectionID != c.ID:
			reason = "request_for_other_connection"
		case r.ConsumedAt != nil:
			reason = "request_already_used"
		default:
			reason = "request_expired"
		}
		return nil
	}, store.ReadOnly())
	return reason
}

// shape is what inspect reads from the raw XML before anything trusts it (never used
// for identity: that comes only from crewjam's validated assertion).
type shape struct {
	responseID   string
	inResponseTo string
}

var (
	errDoctype     = errors.New("DOCTYPE or entity declarations are not allowed")
	errDuplicateID = errors.New("two elements carry the same ID")
)

// inspect refuses DTDs, duplicate IDs and excessive nesting, and reads the root's ID.
func inspect(raw []byte) (shape, error) {
	var sh shape
	d := xml.NewDecoder(bytes.NewReader(raw))
	d.Strict = true
	ids := map[string]bool{}
	depth := 0
	for {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			if depth != 0 {
				return sh, errors.New("malformed XML: unexpected end")
			}
			return sh, nil
		}
		if err != nil {
			return sh, fmt.Errorf("malformed XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return sh, errDoctype
		case xml.StartElement:
			depth++
			if depth > 48 {
				return sh, errors.New("malformed XML: nested too deeply")
			}
			for _, a := range t.Attr {
				if a.Name.Local != "ID" && a.Name.Local != "Id" && a.Name.Local != "id" {
					continue
				}
				if ids[a.Value] {
					return sh, errDuplicateID
				}
				ids[a.Value] = true
				if depth == 1 {
					sh.responseID = a.Value
				}
			}
			if depth == 1 {
				for _, a := range t.Attr {
					if a.Name.Local == "InResponseTo" {
						sh.inResponseTo = a.Value
					}
				}
			}
		case xml.EndElement:
			depth--
		}
	}
}

func shapeReason(err error) string {
	switch {
	case errors.Is(err, errDoctype):
		return "doctype_refused"
	case errors.Is(err, errDuplicateID):
		return "duplicate_id"
	}
	return "malformed_response"
}

// privateMessage is crewjam's precise reason (InvalidResponseError.Error is generic on
// purpose); it goes to the admin's trace and the log, never to the user.
func privateMessage(err error) string {
	var ire *saml.InvalidResponseError
	if errors.As(err, &ire) && ire.PrivateErr != nil {
		return ire.PrivateErr.Error()
	}
	return err.Error()
}

// crewjamReason names why crewjam refused a response.
func crewjamReason(err error) string {
	var bad saml.ErrBadStatus
	msg := privateMessage(err)
	lower := strings.ToLower(msg)
	switch {
	case strings.Contains(lower, "sha-1") || strings.Contains(lower, "sha1"):
		return "sha1_refused"
	case errors.As(err, &bad):
		return "idp_status_error"
	case errors.Is(err, saml.ErrAssertionReplayed), errors.Is(err, errReplayed):
		return "replayed"
	case errors.Is(err, saml.ErrUntrustedCertificate):
		return "untrusted_certificate"
	case errors.Is(err, saml.ErrDecryptionFailed):
		return "decryption_failed"
	case errors.Is(err, saml.ErrInvalidSignature):
		if strings.Contains(msg, "not present") {
			return "signature_missing"
		}
		return "signature_invalid"
	case errors.Is(err, saml.ErrIssuerMismatch):
		return "issuer_mismatch"
	case errors.Is(err, saml.ErrDestinationMismatch):
		return "destination_mismatch"
	case errors.Is(err, saml.ErrRequestIDMismatch):
		return "in_response_to_mismatch"
	case errors.Is(err, saml.ErrAudienceMismatch):
		return "audience_mismatch"
	case errors.Is(err, saml.ErrExpired):
		return "expired"
	case errors.Is(err, saml.ErrNotYetValid):
		return "not_yet_valid"
	case errors.Is(err, saml.ErrUnsupported):
		return "unsupported"
	case errors.Is(err, saml.ErrMissingElement), errors.Is(err, saml.ErrMalformedMessage):
		if strings.Contains(msg, "signature") {
			return "signature_missing"
		}
		if strings.Contains(msg, "AudienceRestriction") {
			return "audience_mismatch"
		}
		return "malformed_response"
	}
	switch {
	case strings.Contains(msg, "signature element not present"):
		return "signature_missing"
	case strings.Contains(msg, "Signature could not be verified"), strings.Contains(msg, "verification error"):
		return "signature_invalid"
	case strings.Contains(msg, "AudienceRestriction"):
		return "audience_mismatch"
	}
	return "invalid_response"
}

func requireAudience(a *saml.Assertion, entityID string) error {
	if a.Conditions == nil || len(a.Conditions.AudienceRestrictions) == 0 {
		return errors.New("the assertion has no AudienceRestriction")
	}
	for i := range a.Conditions.AudienceRestrictions {
		ar := &a.Conditions.AudienceRestrictions[i]
		found := false
		for _, au := range ar.AllAudiences() {
			if strings.TrimSpace(au.Value) == entityID {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("an AudienceRestriction does not name %s", entityID)
		}
	}
	return nil
}

func notOnOrAfter(a *saml.Assertion) time.Time {
	if a.Conditions != nil && !a.Conditions.NotOnOrAfter.IsZero() {
		return a.Conditions.NotOnOrAfter
	}
	return time.Time{}
}

// common attribute names per field, tried after the connection's own mapping.
var commonNames = map[string][]string{
	"email": {"email", "mail", "emailaddress", "emailAddress", "Email", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
		"urn:oid:0.9.2342.19200300.100.1.3", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"},
	"first_name": {"first_name", "firstName", "givenName", "given_name", "FirstName", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname", "urn:oid:2.5.4.42"},
	"last_name":  {"last_name", "lastName", "sn", "surname", "family_name", "LastName", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname", "urn:oid:2.5.4.4"},
	"groups":     {"groups", "Groups", "memberOf", "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"},
}

func fillReport(r *Report, a *saml.Assertion, m AttributeMapping) {
	r.Issuer = a.Issuer.Value
	if a.Subject != nil && a.Subject.NameID != nil {
		r.NameID = strings.TrimSpace(a.Subject.NameID.Value)
		r.NameIDFormat = a.Subject.NameID.Format
	}
	for _, st := range a.AuthnStatements {
		at := st.AuthnInstant.UTC()
		if !at.IsZero() {
			r.AuthnInstant = &at
		}
		if st.SessionIndex != "" {
			r.SessionIndex = st.SessionIndex
		}
	}
	n := 0
	for _, as := range a.AttributeStatements {
		for _, at := range as.Attributes {
			if n >= 100 {
				break
			}
			name := at.Name
			if len(name) > 256 {
				continue
			}
			for _, v := range at.Values {
				if len(r.Attributes[name]) < 50 {
					r.Attributes[name] = append(r.Attributes[name], clipMsg(v.Value))
				}
			}
			n++
		}
	}
	r.Email = attr(r.Attributes, m.Email, "email")
	if r.Email == "" && strings.Contains(r.NameID, "@") {
		r.Email = r.NameID
	}
}

func attr(attrs map[string][]string, mapped, field string) string {
	names := commonNames[field]
	if mapped != "" {
		names = []string{mapped}
	}
	for _, n := range names {
		if v := attrs[n]; len(v) > 0 && strings.TrimSpace(v[0]) != "" {
			return strings.TrimSpace(v[0])
		}
	}
	return ""
}

func attrAll(attrs map[string][]string, mapped, field string) []string {
	names := commonNames[field]
	if mapped != "" {
		names = []string{mapped}
	}
	for _, n := range names {
		if v := attrs[n]; len(v) > 0 {
			return v
		}
	}
	return nil
}

// resolveUser finds the user of (connection, NameID), or links or provisions one.
func (s *Service) resolveUser(ctx context.Context, t tenant.Tenant, q *sqlcgen.Queries, m *material, tr *trace, who audit.Who) (sqlcgen.User, string, error) {
	c := m.conn
	nameID := tr.report.NameID
	// A known identity: one statement touches it and the user's last sign-in (rolled
	// back with the transaction when the attempt is refused below).
	u, err := q.SignInSSOIdentity(ctx, sqlcgen.SignInSSOIdentityParams{ConnectionID: c.ID, NameID: nameID})
	if err == nil {
		if u.Status != "active" {
			return sqlcgen.User{}, "account_" + strings.TrimPrefix(u.Status, "pending_"), errors.New("the account is " + u.Status)
		}
		tr.signedIn = true
		tr.step("user", nil, "known identity")
		return u, "", nil
	}
	if !store.IsNotFound(err) {
		return sqlcgen.User{}, "", err
	}
	email, err := emailaddr.Normalize(tr.report.Email)
	if err != nil {
		return sqlcgen.User{}, "email_missing", errors.New("the IdP sent no usable email address (check the attribute mapping)")
	}
	domain := email[strings.LastIndexByte(email, '@')+1:]
	existing, err := q.GetUserByEmail(ctx, email)
	switch {
	case err == nil:
		d, derr := q.GetSSODomain(ctx, domain)
		if derr != nil || d.VerifiedAt == nil || d.ConnectionID != c.ID {
			return sqlcgen.User{}, "link_refused_unverified_domain", fmt.Errorf("an account with this address exists and %s is not a verified domain of this connection", domain)
		}
		if existing.Status != "active" {
			return sqlcgen.User{}, "account_" + strings.TrimPrefix(existing.Status, "pending_"), errors.New("the account is " + existing.Status)
		}
		if err := q.InsertSSOIdentity(ctx, sqlcgen.InsertSSOIdentityParams{ConnectionID: c.ID, NameID: nameID, UserID: existing.ID}); err != nil {
			return sqlcgen.User{}, "", err
		}
		tr.step("user", nil, "linked to the existing account (verified domain)")
		return existing, "", audit.Record(ctx, q, who, audit.Event{Action: audit.SSOIdentityLinked, SubjectID: existing.ID,
			SubjectLabel: existing.Email, Details: map[string]any{"connection_id": c.ID}})
	case !store.IsNotFound(err):
		return sqlcgen.User{}, "", err
	}
	if !c.Jit {
		return sqlcgen.User{}, "jit_disabled", errors.New("no account is linked to this identity and JIT provisioning is off")
	}
	// An address of a domain routed to another connection is that IdP's to vouch for.
	dom, derr := q.GetSSODomain(ctx, domain)
	if derr == nil && dom.ConnectionID != c.ID {
		return sqlcgen.User{}, "domain_of_other_connection", fmt.Errorf("%s belongs to another SSO connection of this tenant", domain)
	} else if derr != nil && !store.IsNotFound(derr) {
		return sqlcgen.User{}, "", derr
	}
	name := strings.TrimSpace(attr(tr.report.Attributes, m.mapping.FirstName, "first_name") + " " + attr(tr.report.Attributes, m.mapping.LastName, "last_name"))
	if len(name) > 200 {
		name = name[:200]
	}
	var verifiedAt *time.Time
	if derr == nil && dom.VerifiedAt != nil && dom.ConnectionID == c.ID {
		now := s.now()
		verifiedAt = &now
	}
	u, err = q.CreateUser(ctx, sqlcgen.CreateUserParams{Email: email, Name: name, EmailVerifiedAt: verifiedAt})
	if err != nil {
		return sqlcgen.User{}, "", err
	}
	if err := q.InsertSSOIdentity(ctx, sqlcgen.InsertSSOIdentityParams{ConnectionID: c.ID, NameID: nameID, UserID: u.ID}); err != nil {
		return sqlcgen.User{}, "", err
	}
	role := roleFor(attrAll(tr.report.Attributes, m.mapping.Groups, "groups"), m.roles)
	// An open invitation for this address is accepted by the first SSO sign-in: its role
	// counts (a mapped group can only raise it).
	if inv, err := q.GetOpenInvitationByEmail(ctx, email); err == nil {
		if rank[inv.Role] > rank[role] {
			role = inv.Role
		}
		if _, err := q.AcceptInvitation(ctx, inv.ID); err != nil {
			return sqlcgen.User{}, "", err
		}
		if err := audit.Record(ctx, q, who, audit.Event{Action: audit.InvitationAccepted, SubjectID: u.ID, SubjectLabel: u.Email,
			Details: map[string]any{"invitation_id": inv.ID, "role": inv.Role, "via": "sso"}}); err != nil {
			return sqlcgen.User{}, "", err
		}
	} else if !store.IsNotFound(err) {
		return sqlcgen.User{}, "", err
	}
	if err := authz.Grant(ctx, q, u.ID, role); err != nil {
		return sqlcgen.User{}, "", err
	}
	tr.provisioned = true
	tr.step("user", nil, "provisioned just in time with role "+role)
	return u, "", audit.Record(ctx, q, who, audit.Event{Action: audit.SSOUserProvisioned, SubjectID: u.ID, SubjectLabel: u.Email,
		Details: map[string]any{"connection_id": c.ID, "role": role}})
}

var rank = map[string]int{"member": 0, "admin": 1, "owner": 2}

// roleFor picks the strongest role any of the user's groups maps to (member by default).
func roleFor(groups []string, mapping map[string]string) string {
	best := "member"
	for _, g := range groups {
		if r, ok := mapping[g]; ok && rank[r] > rank[best] {
			best = r
		}
	}
	return best
}

func (s *Service) recordFailure(ctx context.Context, t tenant.Tenant, tr *trace, reason string, cause error, who audit.Who) string {
	ref := reference()
	details, _ := json.Marshal(tr.report)
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		if _, err := q.InsertSSOAttempt(ctx, sqlcgen.InsertSSOAttemptParams{ConnectionID: tr.conn.ID, Reference: ref, Mode: attemptMode(tr.mode),
			Success: false, Reason: reason, Details: details}); err != nil {
			return err
		}
		return audit.Record(ctx, q, who, audit.Event{Action: audit.SSOLoginFailed, Details: map[string]any{
			"connection_id": tr.conn.ID, "connection": tr.conn.Slug, "reason": reason, "reference": ref, "mode": tr.mode}})
	})
	if err != nil {
		s.logger.Error("record sso failure", "err", err)
	}
	s.logger.Info("sso refused", "tenant", t.Slug, "connection", tr.conn.Slug, "reason", reason, "reference", ref, "detail", errDetail(cause))
	return ref
}

func (s *Service) recordSuccess(ctx context.Context, t tenant.Tenant, tr *trace, userID *uuid.UUID, who audit.Who) string {
	var ref string
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		ref = s.recordSuccessTx(ctx, q, tr, userID, who, "", uuid.Nil)
		return nil
	})
	if err != nil {
		s.logger.Error("record sso attempt", "err", err)
	}
	return ref
}

func (s *Service) recordSuccessTx(ctx context.Context, q *sqlcgen.Queries, tr *trace, userID *uuid.UUID, who audit.Who, email string, sessionID uuid.UUID) string {
	ref := reference()
	details, _ := json.Marshal(tr.report)
	if _, err := q.InsertSSOAttempt(ctx, sqlcgen.InsertSSOAttemptParams{ConnectionID: tr.conn.ID, Reference: ref, Mode: attemptMode(tr.mode),
		Success: true, Reason: "ok", UserID: userID, Details: details}); err != nil {
		s.logger.Error("record sso attempt", "err", err)
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
		s.logger.Error("audit sso", "err", err)
	}
	return ref
}

func attemptMode(m string) string {
	if slices.Contains([]string{"login", "test", "reauth", "idp_initiated"}, m) {
		return m
	}
	return "login"
}

// reference is a short id the user can quote to the admin.
func reference() string {
	tok, _ := token.New()
	return strings.ToUpper(tok[:10])
}
