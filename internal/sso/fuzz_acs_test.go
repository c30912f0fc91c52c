package sso

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"

	"github.com/gatehouse-id/gatehouse/internal/sso/samltest"
)

// FuzzACSInput drives the ACS input path that runs before any database access, exactly as
// acs() composes it: base64, inspect (DTDs, duplicate IDs, depth), crewjam validation
// with one connection's metadata, the audience and NameID checks, then the report. It
// must never panic, and nothing unsigned may come out accepted.
func FuzzACSInput(f *testing.F) {
	idp, err := samltest.NewIdP("https://idp.example/fuzz")
	if err != nil {
		f.Fatal(err)
	}
	ed, err := samlsp.ParseMetadata(idp.Metadata("https://idp.example/sso", ""))
	if err != nil {
		f.Fatal(err)
	}
	key, cert, err := samltest.NewKeyPair("sp.example", 2048)
	if err != nil {
		f.Fatal(err)
	}
	acs, _ := url.Parse("https://t.example/sso/saml/c/acs")
	md, _ := url.Parse("https://t.example/sso/saml/c/metadata")
	now := time.Now()
	sp := &saml.ServiceProvider{EntityID: md.String(), Key: key, Certificate: cert, AcsURL: *acs, MetadataURL: *md,
		IDPMetadata: ed, RejectSHA1Signatures: true, RejectUnknownConditions: true}
	seed := func(mut func(*samltest.Response), opt samltest.SignOptions) []byte {
		r := idp.NewResponse(now, acs.String(), md.String(), "_req", "fuzz@example.org")
		if mut != nil {
			mut(&r)
		}
		doc, err := idp.Sign(r, opt)
		if err != nil {
			f.Fatal(err)
		}
		return doc
	}
	valid := seed(nil, samltest.SignOptions{SignAssertion: true})
	f.Add(base64.StdEncoding.EncodeToString(valid))
	f.Add(base64.StdEncoding.EncodeToString(seed(nil, samltest.SignOptions{SignResponse: true})))
	f.Add(base64.StdEncoding.EncodeToString(samltest.StripSignatures(valid)))
	f.Add(base64.StdEncoding.EncodeToString(samltest.WithDoctype(valid, samltest.DoctypeBomb)))
	if x, err := samltest.XSW(valid, 3, "evil@example.org"); err == nil {
		f.Add(base64.StdEncoding.EncodeToString(x))
	}
	f.Add("")
	f.Add("PD94bWw+")
	f.Fuzz(func(t *testing.T, form string) {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(form))
		if err != nil || len(raw) == 0 || len(raw) > MaxACSBody {
			return
		}
		if _, err := inspect(raw); err != nil {
			_ = shapeReason(err)
			return
		}
		sp := *sp
		sp.Clock = nil
		a, err := sp.ParseXMLResponse(raw, []string{"_req"}, *acs)
		if err != nil {
			_ = crewjamReason(err)
			return
		}
		if err := requireAudience(a, sp.EntityID); err != nil {
			return
		}
		var r Report
		r.Attributes = map[string][]string{}
		fillReport(&r, a, AttributeMapping{})
		if r.NameID == "evil@example.org" {
			t.Fatalf("a wrapped identity was accepted")
		}
	})
}
