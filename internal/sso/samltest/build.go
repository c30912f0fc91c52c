package samltest

import (
	"sort"
	"time"

	"github.com/beevik/etree"
)

// TimeFormat is how instants are written: UTC with millisecond precision.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// Assertion describes a saml:Assertion. A zero value for an optional part
// leaves that part out, so that tests can build assertions that lack it:
//
//   - ID "" or IssueInstant zero: the attribute is omitted;
//   - Issuer "": no saml:Issuer;
//   - NameIDFormat "": no Format attribute on the NameID;
//   - Recipient "", InResponseTo "", SubjectNotOnOrAfter zero: the
//     attribute is omitted from SubjectConfirmationData;
//   - Audience "": no AudienceRestriction at all;
//   - NotBefore/NotOnOrAfter zero: the attribute is omitted from Conditions,
//     and Conditions itself is omitted if it would be empty;
//   - AuthnInstant zero: no AuthnStatement; SessionIndex "": no SessionIndex;
//   - Attributes empty: no AttributeStatement.
type Assertion struct {
	ID           string
	IssueInstant time.Time
	Issuer       string

	NameID       string
	NameIDFormat string

	Audience     string // "" => omit AudienceRestriction entirely
	Recipient    string // SubjectConfirmationData Recipient
	InResponseTo string // "" => omitted

	NotBefore, NotOnOrAfter time.Time // Conditions
	SubjectNotOnOrAfter     time.Time // SubjectConfirmationData NotOnOrAfter

	AuthnInstant time.Time
	SessionIndex string

	// Attributes become an AttributeStatement, one saml:Attribute per key
	// (sorted by name) with NameFormat basic and an xs:string
	// AttributeValue per value.
	Attributes map[string][]string
}

// Response describes a samlp:Response. As for Assertion, ID, Issuer,
// Destination and InResponseTo that are "" and an IssueInstant that is zero
// are omitted. StatusCode "" means StatusSuccess.
type Response struct {
	ID, Issuer, Destination, InResponseTo string
	IssueInstant                          time.Time
	StatusCode                            string // default urn:oasis:names:tc:SAML:2.0:status:Success
	Assertions                            []Assertion
}

// NewResponse returns a Response with one Assertion, valid for an SP whose
// entity ID is audience, answering the AuthnRequest inResponseTo ("" for an
// IdP-initiated response), received at acsURL at time now:
//
//   - random IDs ("_" + 40 hex digits), Issuer idp.EntityID, IssueInstant now;
//   - Destination and Recipient acsURL;
//   - NameID nameID in the emailAddress format;
//   - Conditions now-1m .. now+5m, SubjectConfirmationData NotOnOrAfter now+5m;
//   - AuthnInstant now with a random SessionIndex;
//   - one attribute, email = nameID.
//
// Change fields of the result to build invalid responses.
func (i *IdP) NewResponse(now time.Time, acsURL, audience, inResponseTo, nameID string) Response {
	now = now.UTC()
	return Response{
		ID:           NewID(),
		Issuer:       i.EntityID,
		Destination:  acsURL,
		InResponseTo: inResponseTo,
		IssueInstant: now,
		StatusCode:   StatusSuccess,
		Assertions: []Assertion{{
			ID:                  NewID(),
			IssueInstant:        now,
			Issuer:              i.EntityID,
			NameID:              nameID,
			NameIDFormat:        NameIDFormatEmail,
			Audience:            audience,
			Recipient:           acsURL,
			InResponseTo:        inResponseTo,
			NotBefore:           now.Add(-time.Minute),
			NotOnOrAfter:        now.Add(5 * time.Minute),
			SubjectNotOnOrAfter: now.Add(5 * time.Minute),
			AuthnInstant:        now,
			SessionIndex:        NewID(),
			Attributes:          map[string][]string{"email": {nameID}},
		}},
	}
}

func formatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

func attrIf(el *etree.Element, key, value string) {
	if value != "" {
		el.CreateAttr(key, value)
	}
}

func timeAttrIf(el *etree.Element, key string, t time.Time) {
	if !t.IsZero() {
		el.CreateAttr(key, formatTime(t))
	}
}

// buildAssertion returns the unsigned saml:Assertion element for a. It
// declares xmlns:saml itself, so that it is self-contained under exclusive
// canonicalization and can be moved, signed or encrypted on its own.
func buildAssertion(a Assertion) *etree.Element {
	el := etree.NewElement("saml:Assertion")
	el.CreateAttr("xmlns:saml", NSAssertion)
	attrIf(el, "ID", a.ID)
	el.CreateAttr("Version", "2.0")
	timeAttrIf(el, "IssueInstant", a.IssueInstant)

	if a.Issuer != "" {
		el.CreateElement("saml:Issuer").SetText(a.Issuer)
	}

	subj := el.CreateElement("saml:Subject")
	nameID := subj.CreateElement("saml:NameID")
	attrIf(nameID, "Format", a.NameIDFormat)
	nameID.SetText(a.NameID)
	sc := subj.CreateElement("saml:SubjectConfirmation")
	sc.CreateAttr("Method", CMBearer)
	scd := sc.CreateElement("saml:SubjectConfirmationData")
	attrIf(scd, "InResponseTo", a.InResponseTo)
	timeAttrIf(scd, "NotOnOrAfter", a.SubjectNotOnOrAfter)
	attrIf(scd, "Recipient", a.Recipient)

	if !a.NotBefore.IsZero() || !a.NotOnOrAfter.IsZero() || a.Audience != "" {
		cond := el.CreateElement("saml:Conditions")
		timeAttrIf(cond, "NotBefore", a.NotBefore)
		timeAttrIf(cond, "NotOnOrAfter", a.NotOnOrAfter)
		if a.Audience != "" {
			cond.CreateElement("saml:AudienceRestriction").CreateElement("saml:Audience").SetText(a.Audience)
		}
	}

	if !a.AuthnInstant.IsZero() {
		as := el.CreateElement("saml:AuthnStatement")
		as.CreateAttr("AuthnInstant", formatTime(a.AuthnInstant))
		attrIf(as, "SessionIndex", a.SessionIndex)
		as.CreateElement("saml:AuthnContext").CreateElement("saml:AuthnContextClassRef").SetText(PasswordProtectedTransport)
	}

	if len(a.Attributes) > 0 {
		names := make([]string, 0, len(a.Attributes))
		for n := range a.Attributes {
			names = append(names, n)
		}
		sort.Strings(names)
		st := el.CreateElement("saml:AttributeStatement")
		for _, n := range names {
			attr := st.CreateElement("saml:Attribute")
			attr.CreateAttr("Name", n)
			attr.CreateAttr("NameFormat", AttrNameFormatBasic)
			for _, v := range a.Attributes[n] {
				// Namespaces declared on the value itself, as Okta does, so
				// that xsi:type resolves wherever the value ends up.
				av := attr.CreateElement("saml:AttributeValue")
				av.CreateAttr("xmlns:xs", NSXS)
				av.CreateAttr("xmlns:xsi", NSXSI)
				av.CreateAttr("xsi:type", "xs:string")
				av.SetText(v)
			}
		}
	}
	return el
}

// buildResponse returns the samlp:Response element for r, without its
// assertions.
func buildResponse(r Response) *etree.Element {
	el := etree.NewElement("samlp:Response")
	el.CreateAttr("xmlns:samlp", NSProtocol)
	el.CreateAttr("xmlns:saml", NSAssertion)
	attrIf(el, "ID", r.ID)
	el.CreateAttr("Version", "2.0")
	timeAttrIf(el, "IssueInstant", r.IssueInstant)
	attrIf(el, "Destination", r.Destination)
	attrIf(el, "InResponseTo", r.InResponseTo)

	if r.Issuer != "" {
		el.CreateElement("saml:Issuer").SetText(r.Issuer)
	}
	status := r.StatusCode
	if status == "" {
		status = StatusSuccess
	}
	el.CreateElement("samlp:Status").CreateElement("samlp:StatusCode").CreateAttr("Value", status)
	return el
}
