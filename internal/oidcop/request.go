package oidcop

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

// params are the authorization request's parameters, stored with it.
type params struct {
	RedirectURI         string   `json:"redirect_uri"`
	State               string   `json:"state,omitempty"`
	Nonce               string   `json:"nonce,omitempty"`
	Scopes              []string `json:"scopes"`
	ResponseType        string   `json:"response_type"`
	ResponseMode        string   `json:"response_mode,omitempty"`
	CodeChallenge       string   `json:"code_challenge"`
	CodeChallengeMethod string   `json:"code_challenge_method"`
	Prompt              []string `json:"prompt,omitempty"`
	MaxAge              *uint    `json:"max_age,omitempty"`
	ACRValues           []string `json:"acr_values,omitempty"`
	LoginHint           string   `json:"login_hint,omitempty"`
}

// authRequest is a stored authorization request, as zitadel/oidc's op.AuthRequest.
type authRequest struct {
	id        uuid.UUID
	appID     uuid.UUID
	clientID  string
	p         params
	userID    *uuid.UUID
	sessionID *uuid.UUID
	authTime  time.Time
	amr       []string
	acr       string
	done      bool
	createdAt time.Time
	user      *userClaims // read with the tokens for the ID token that follows
	byCode    bool        // presented as a code: the token transaction marks it used
}

var _ op.AuthRequest = (*authRequest)(nil)

func requestFrom(id, appID uuid.UUID, clientID string, raw json.RawMessage, userID, sessionID *uuid.UUID, authTime *time.Time,
	amr []string, acr string, done bool, created time.Time) (*authRequest, error) {
	r := &authRequest{id: id, appID: appID, clientID: clientID, userID: userID, sessionID: sessionID, amr: amr, acr: acr, done: done, createdAt: created}
	if err := json.Unmarshal(raw, &r.p); err != nil {
		return nil, err
	}
	if authTime != nil {
		r.authTime = *authTime
	}
	return r, nil
}

func requestFromRow(row sqlcgen.GetAuthRequestRow) (*authRequest, error) {
	return requestFrom(row.ID, row.AppID, row.ClientID, row.Params, row.UserID, row.SessionID, row.AuthTime, row.AMR, row.ACR, row.Done, row.CreatedAt)
}

func (r *authRequest) GetID() string          { return r.id.String() }
func (r *authRequest) GetACR() string         { return r.acr }
func (r *authRequest) GetAMR() []string       { return r.amr }
func (r *authRequest) GetAudience() []string  { return []string{r.clientID} }
func (r *authRequest) GetAuthTime() time.Time { return r.authTime }
func (r *authRequest) GetClientID() string    { return r.clientID }
func (r *authRequest) GetNonce() string       { return r.p.Nonce }
func (r *authRequest) GetRedirectURI() string { return r.p.RedirectURI }
func (r *authRequest) GetScopes() []string    { return r.p.Scopes }
func (r *authRequest) GetState() string       { return r.p.State }
func (r *authRequest) Done() bool             { return r.done }
func (r *authRequest) GetResponseType() oidc.ResponseType {
	return oidc.ResponseType(r.p.ResponseType)
}
func (r *authRequest) GetResponseMode() oidc.ResponseMode { return oidc.ResponseMode(r.p.ResponseMode) }

func (r *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	return &oidc.CodeChallenge{Challenge: r.p.CodeChallenge, Method: oidc.CodeChallengeMethod(r.p.CodeChallengeMethod)}
}

func (r *authRequest) GetSubject() string {
	if r.userID == nil {
		return ""
	}
	return r.userID.String()
}

// refreshRequest is a refresh token presented at the token endpoint.
type refreshRequest struct {
	token     sqlcgen.GetRefreshTokenRow
	scopes    []string
	authTime  time.Time
	userID    uuid.UUID
	sessionID *uuid.UUID
	user      *userClaims // read with the tokens for the ID token that follows
}

var _ op.RefreshTokenRequest = (*refreshRequest)(nil)

func (r *refreshRequest) GetAMR() []string            { return r.token.AMR }
func (r *refreshRequest) GetAudience() []string       { return []string{r.token.ClientID} }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.authTime }
func (r *refreshRequest) GetClientID() string         { return r.token.ClientID }
func (r *refreshRequest) GetScopes() []string         { return r.scopes }
func (r *refreshRequest) GetSubject() string          { return r.userID.String() }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.scopes = s }

// clientRequest is a client_credentials grant: the app acts for itself, no user.
type clientRequest struct {
	app    sqlcgen.App
	scopes []string
}

func (r *clientRequest) GetSubject() string    { return r.app.ClientID }
func (r *clientRequest) GetAudience() []string { return []string{r.app.ClientID} }
func (r *clientRequest) GetScopes() []string   { return r.scopes }
