package sso

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/crewjam/saml"

	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/token"
)

// accepted is a response that passed every check that runs before the sign-in
// transaction.
type accepted struct {
	assertion *saml.Assertion
	msgIDs    []string // the assertion's and the response's IDs, for the replay cache
	nameID    string
	authnAt   time.Time
	// replayUntil is how long msgIDs stay in the replay cache when there is no SAML
	// assertion (OIDC: the ID token's expiry).
	replayUntil time.Time
}

// validate runs the checks on a posted response, in order, recording each in the trace;
// c is the connection row, dec the decoded form value and its shape, and q the ACS
// transaction. A refusal has a reason; an error without one is infrastructure.
func (s *Service) validate(ctx context.Context, q *sqlcgen.Queries, c sqlcgen.SSOConnection, m *material, req *sqlcgen.SAMLRequest, in ACSInput, dec decoded, tr *trace) (accepted, string, error) {
	if dec.reason == "malformed_response" && dec.raw == nil {
		tr.step("decode", dec.err, "")
		return accepted{}, dec.reason, dec.err
	}
	tr.step("decode", nil, fmt.Sprintf("%d bytes", len(dec.raw)))
	if dec.err != nil {
		tr.step("xml_shape", dec.err, "")
		return accepted{}, dec.reason, dec.err
	}
	tr.step("xml_shape", nil, "")
	if reason, err := s.matchRequest(ctx, q, c, req, in, dec.sh, tr); err != nil || reason != "" {
		return accepted{}, reason, err
	}
	return s.checkAssertion(c, m, req, dec, tr)
}

// parsed is crewjam's verdict on a response for one SP value (IdP-initiated or not) and
// one expected request id: ParseXMLResponse depends on nothing else (no replay cache),
// so a verdict reached before the ACS transaction stands in for the call inside it when
// the request the transaction consumed asks for the same SP and id.
type parsed struct {
	idpInitiated bool
	requestID    string
	assertion    *saml.Assertion
	err          error
}

// parse runs crewjam's validation of raw with this connection's metadata only.
func (s *Service) parse(m *material, raw []byte, idpInitiated bool, requestID string) parsed {
	sp := s.acsProvider(m, idpInitiated) // no replay cache: the ids are recorded in the sign-in
	var ids []string
	if !idpInitiated {
		ids = []string{requestID}
	}
	a, err := sp.ParseXMLResponse(raw, ids, sp.AcsURL)
	return parsed{idpInitiated: idpInitiated, requestID: requestID, assertion: a, err: err}
}

// preParse validates the signature and conditions before the ACS transaction, for the
// request the response names (its unverified InResponseTo; none: IdP-initiated), so the
// transaction does not hold a database connection during crewjam's work. The transaction
// uses the verdict only when the request it consumed matches (checkAssertion).
func (s *Service) preParse(m *material, dec decoded) *parsed {
	if dec.err != nil || m == nil || isDraft(m.conn) {
		return nil
	}
	p := s.parse(m, dec.raw, dec.sh.inResponseTo == "", dec.sh.inResponseTo)
	return &p
}

// decoded is a posted SAMLResponse decoded and checked for XML shapes nothing should
// trust (before anything else reads it): raw is nil when it is not base64; err and reason
// tell a refusal.
type decoded struct {
	raw    []byte
	sh     shape
	reason string
	err    error
	pre    *parsed // crewjam's verdict reached before the transaction, if any
}

// decodeResponse decodes the form value and refuses XML shapes nothing should trust.
func decodeResponse(form string) decoded {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(form))
	if err != nil || len(raw) == 0 {
		return decoded{reason: "malformed_response", err: errors.New("SAMLResponse is not base64")}
	}
	sh, err := inspect(raw)
	if err != nil {
		return decoded{raw: raw, reason: shapeReason(err), err: err}
	}
	return decoded{raw: raw, sh: sh}
}

// matchRequest decides which request of ours the response answers (the RelayState is
// our opaque reference), or whether it may be an unsolicited one, and sets the mode.
func (s *Service) matchRequest(ctx context.Context, q *sqlcgen.Queries, c sqlcgen.SSOConnection, req *sqlcgen.SAMLRequest, in ACSInput, sh shape, tr *trace) (string, error) {
	if req != nil {
		bh := sha256.Sum256([]byte(in.Browser))
		if in.Browser == "" || subtle.ConstantTimeCompare(bh[:], req.BrowserHash) != 1 {
			err := errors.New("the response arrived in a different browser than the one that started the login")
			tr.step("request", err, "")
			return "browser_mismatch", err
		}
	} else if in.RelayState != "" {
		reason, err := requestFailure(ctx, q, c, in.RelayState)
		if err != nil {
			return "", err
		}
		if reason != "no_pending_request" || !c.AllowIdPInitiated {
			err := errors.New("the request this response answers is unknown, used or expired")
			tr.step("request", err, "")
			return reason, err
		}
	}
	if req != nil {
		tr.mode = req.Purpose
		tr.step("request", nil, "answers request "+req.ID)
	} else {
		if !c.AllowIdPInitiated {
			err := errors.New("no request of ours matches and IdP-initiated login is off for this connection")
			tr.step("request", err, "")
			if sh.inResponseTo != "" {
				return "unknown_in_response_to", err
			}
			return "idp_initiated_disabled", err
		}
		tr.mode = "idp_initiated"
		tr.step("request", nil, "unsolicited (IdP-initiated) response")
	}
	if isDraft(c) || !c.Enabled && tr.mode != PurposeTest {
		tr.step("connection", ErrDisabled, "connection is disabled")
		return "connection_disabled", ErrDisabled
	}
	return "", nil
}

// checkAssertion has crewjam validate the response with this connection's metadata only,
// then makes Gatehouse's own checks on what crewjam accepted.
func (s *Service) checkAssertion(c sqlcgen.SSOConnection, m *material, req *sqlcgen.SAMLRequest, dec decoded, tr *trace) (accepted, string, error) {
	sh := dec.sh
	entityID := m.spInit.EntityID // the same for both SP values
	var requestID string
	if req != nil {
		requestID = req.ID
	}
	v := dec.pre
	if v == nil || v.idpInitiated != (req == nil) || v.requestID != requestID {
		p := s.parse(m, dec.raw, req == nil, requestID)
		v = &p
	}
	assertion, err := v.assertion, v.err
	if err != nil {
		reason := crewjamReason(err)
		cause := errors.New(privateMessage(err))
		tr.step("signature_and_conditions", cause, "")
		return accepted{}, reason, cause
	}
	tr.step("signature_and_conditions", nil, "signature, destination, recipient, issuer, time, InResponseTo")
	if m.mappingErr != nil {
		// Never a default in place of the admin's mapping: the identity, email and role
		// would come from attributes the admin did not choose.
		fillReport(&tr.report, assertion, AttributeMapping{})
		tr.report.Email = "" // depends on the mapping: none is claimed
		tr.step("mapping", m.mappingErr, "")
		return accepted{}, "corrupt_mapping", m.mappingErr
	}
	fillReport(&tr.report, assertion, m.mapping)

	if got := assertion.Issuer.Value; got != c.IdPEntityID {
		err := fmt.Errorf("issuer %q is not this connection's IdP %q", clipMsg(got), clipMsg(c.IdPEntityID))
		tr.step("issuer", err, "")
		return accepted{}, "issuer_mismatch", err
	}
	tr.step("issuer", nil, "")
	if err := requireAudience(assertion, entityID); err != nil {
		tr.step("audience", err, "")
		return accepted{}, "audience_mismatch", err
	}
	tr.step("audience", nil, entityID)
	a := accepted{assertion: assertion, msgIDs: []string{assertion.ID}, nameID: tr.report.NameID}
	if sh.responseID != "" {
		a.msgIDs = append(a.msgIDs, "response:"+sh.responseID)
	}
	if req == nil {
		if age := s.now().Sub(assertion.IssueInstant); age > 2*time.Minute+s.cfg.Skew || age < -s.cfg.Skew {
			err := fmt.Errorf("IdP-initiated assertion issued %s ago; at most 2 minutes are accepted", age.Round(time.Second))
			tr.step("freshness", err, "")
			return accepted{}, "stale_idp_initiated", err
		}
	}
	if a.nameID == "" || len(a.nameID) > maxNameID {
		err := errors.New("the assertion has no usable NameID")
		tr.step("name_id", err, "")
		return accepted{}, "name_id_missing", err
	}
	tr.step("name_id", nil, "")
	a.authnAt = s.now()
	if tr.report.AuthnInstant != nil {
		a.authnAt = *tr.report.AuthnInstant
	}
	if req != nil && req.Purpose == PurposeReauth {
		if a.authnAt.Before(req.CreatedAt.Add(-s.cfg.Skew)) {
			err := fmt.Errorf("AuthnInstant %s is older than the re-authentication request", a.authnAt.Format(time.RFC3339))
			tr.step("fresh_authentication", err, "")
			return accepted{}, "not_fresh", err
		}
		tr.step("fresh_authentication", nil, "")
	}
	return a, "", nil
}

// requestFailure names why a RelayState matched no pending request (read in the ACS
// transaction q).
func requestFailure(ctx context.Context, q *sqlcgen.Queries, c sqlcgen.SSOConnection, relay string) (string, error) {
	relayHash, err := token.Parse(relay)
	if err != nil {
		return "no_pending_request", nil
	}
	r, err := q.GetSAMLRequestByRelay(ctx, relayHash)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "no_pending_request", nil
	case err != nil:
		return "", fmt.Errorf("look up the request of a RelayState: %w", err)
	case r.ConnectionID != c.ID:
		return "request_for_other_connection", nil
	case r.ConsumedAt != nil:
		return "request_already_used", nil
	}
	return "request_expired", nil
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

// fillReport copies what the IdP asserted into the report: issuer, NameID, session,
// attributes (bounded), and the email as the mapping names it.
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
