package devidp

import (
	"net/http"

	"github.com/gatehouse-id/gatehouse/internal/sso/oidctest"
)

// OIDCIdP is the dev OpenID Provider `gatehouse dev` runs beside the SAML one: a small
// provider on zitadel/oidc's op package (internal/sso/oidctest) with the same demo
// employees and password, so both doors — SAML and OpenID Connect — can be tried without
// an account anywhere. Never for production.
type OIDCIdP struct {
	*oidctest.IdP
	Handler http.Handler
}

// OIDCGroupsClaim is the claim the dev OpenID Provider puts groups in.
const OIDCGroupsClaim = "groups"

// OIDCDomain is the demo employees' domain at the dev OpenID Provider (alice@acme-oidc.test,
// …): acme.test belongs to the SAML connection, and an address of a domain routed to one
// connection is never provisioned through another.
const OIDCDomain = "acme-oidc.test"

// NewOIDC builds the provider at issuer (such as http://localhost:8083). Its client ID and
// secret are new at each start (the dev connection is updated with them).
func NewOIDC(issuer string) (*OIDCIdP, error) {
	people := make([]oidctest.Person, 0, len(Employees))
	for _, e := range Employees {
		people = append(people, oidctest.Person{Sub: "dev-" + e.Name, Username: e.Name, Password: Password, Email: e.Name + "@" + OIDCDomain,
			EmailVerified: true, FirstName: e.Given, LastName: e.Surname, Claims: map[string]any{OIDCGroupsClaim: e.Groups}})
	}
	idp, h, err := oidctest.Build(issuer, nil, people)
	if err != nil {
		return nil, err
	}
	return &OIDCIdP{IdP: idp, Handler: h}, nil
}
