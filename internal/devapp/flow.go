package devapp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// pageView is the one page of the demo app.
type pageView struct {
	Provider string
	Issuer   string
	Notice   *notice
	Ended    bool      // a back-channel logout ended the sign-in
	User     *userView // nil: signed out
}

type userView struct {
	Subject, Email, Name   string
	AuthTime               string // RFC 3339, UTC
	AuthTimeUnix           int64
	ACR, AMR, SID          string
	Userinfo               string
	RPInitiatedLogoutKnown bool // the provider has an end_session_endpoint
}

func (a *App) render(w http.ResponseWriter, status int, v pageView) {
	var buf bytes.Buffer
	if err := a.pages.ExecuteTemplate(&buf, "page.html", v); err != nil {
		a.d.Logger.Error("demo app page", "err", err)
		http.Error(w, "the demo app could not render its page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// view builds the page for s (nil: no session) and takes its one-time notice.
func (a *App) view(s *session) pageView {
	v := pageView{Provider: a.d.Provider, Issuer: a.d.Issuer}
	if s == nil {
		return v
	}
	v.Notice, s.notice = s.notice, nil
	v.Ended = s.ended && s.user == nil
	if u := s.user; u != nil {
		c := u.claims
		v.User = &userView{Subject: c.Subject, Email: c.Email, Name: c.Name, AuthTimeUnix: c.AuthTime,
			AuthTime: time.Unix(c.AuthTime, 0).UTC().Format(time.RFC3339), ACR: c.ACR, AMR: strings.Join(c.AMR, " "),
			SID: c.SID, Userinfo: u.userinfo}
		v.User.RPInitiatedLogoutKnown = a.rp != nil && a.rp.endSession != ""
	}
	return v
}

func (a *App) home(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.render(w, http.StatusOK, a.view(a.current(r)))
}

// fail shows the page with an error notice and status (the browser's session, if any, is
// unchanged but for the notice).
func (a *App) fail(w http.ResponseWriter, r *http.Request, status int, id, text string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v := a.view(a.current(r))
	v.Notice = &notice{ID: id, Kind: "error", Text: text}
	a.render(w, status, v)
}

// login starts "Sign in with …": an authorization with PKCE S256, state and nonce.
func (a *App) login(w http.ResponseWriter, r *http.Request) { a.authorize(w, r, false) }

// sensitive starts a fresh authentication for the sensitive action: max_age=0 tells the
// provider to re-authenticate the user whatever the age of their session.
func (a *App) sensitive(w http.ResponseWriter, r *http.Request) { a.authorize(w, r, true) }

func (a *App) authorize(w http.ResponseWriter, r *http.Request, sensitive bool) {
	rp, err := a.relyingParty(r.Context())
	if err != nil {
		a.d.Logger.Warn("demo app: provider unavailable", "err", err)
		a.fail(w, r, http.StatusServiceUnavailable, "provider-unavailable",
			a.d.Provider+" is not reachable right now (discovery failed). Try again in a moment.")
		return
	}
	a.mu.Lock()
	s := a.currentOrNew(w, r)
	if sensitive && s.user == nil {
		a.mu.Unlock()
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	state, nonce, verifier := random(), random(), oauth2.GenerateVerifier()
	a.addPending(s, state, pending{nonce: nonce, verifier: verifier, sensitive: sensitive, started: a.now()})
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)}
	if sensitive {
		opts = append(opts, oauth2.SetAuthURLParam("max_age", "0"))
		if s.user.claims.Email != "" {
			opts = append(opts, oauth2.SetAuthURLParam("login_hint", s.user.claims.Email))
		}
	}
	a.mu.Unlock()
	http.Redirect(w, r, rp.oauth.AuthCodeURL(state, opts...), http.StatusFound)
}

// callback is the redirect URI: the answer must carry a state this browser's session
// started (single use), the issuer's iss, and a code that exchanges, with the PKCE
// verifier, for an ID token with the nonce sent.
func (a *App) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	a.mu.Lock()
	s := a.current(r)
	var p pending
	var ok bool
	if s != nil {
		if p, ok = s.pending[q.Get("state")]; ok {
			delete(s.pending, q.Get("state"))
		}
	}
	a.mu.Unlock()
	switch {
	case s == nil:
		a.fail(w, r, http.StatusBadRequest, "callback-refused",
			"Refused: this browser has no sign-in in progress with the demo app (no session cookie). Start again.")
		return
	case !ok || q.Get("state") == "":
		a.fail(w, r, http.StatusBadRequest, "callback-refused",
			"Refused: the state in the answer does not match a sign-in this browser started.")
		return
	case a.now().Sub(p.started) > pendingTTL:
		a.fail(w, r, http.StatusBadRequest, "callback-refused", "Refused: this sign-in took too long. Start again.")
		return
	}
	rp, err := a.relyingParty(r.Context())
	if err != nil {
		a.fail(w, r, http.StatusServiceUnavailable, "provider-unavailable", a.d.Provider+" is not reachable right now.")
		return
	}
	// RFC 9207: the answer names its issuer, so an answer from another provider is refused.
	if iss := q.Get("iss"); (iss != "" || rp.issParam) && iss != a.d.Issuer {
		a.fail(w, r, http.StatusBadRequest, "callback-refused", "Refused: the answer's iss is not "+a.d.Issuer+".")
		return
	}
	if e := q.Get("error"); e != "" {
		a.fail(w, r, http.StatusBadRequest, "callback-error", fmt.Sprintf("%s answered %s: %s", a.d.Provider, e, q.Get("error_description")))
		return
	}
	ctx := a.ctx(r.Context())
	tok, err := rp.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(p.verifier))
	if err != nil {
		a.fail(w, r, http.StatusBadRequest, "callback-refused", "Refused: the code did not exchange for tokens: "+err.Error())
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(ctx, raw)
	if err != nil {
		a.fail(w, r, http.StatusBadRequest, "callback-refused", "Refused: the ID token did not verify: "+err.Error())
		return
	}
	if idt.Nonce != p.nonce {
		a.fail(w, r, http.StatusBadRequest, "callback-refused", "Refused: the ID token's nonce is not the one this sign-in sent.")
		return
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		a.fail(w, r, http.StatusBadRequest, "callback-refused", "Refused: the ID token's claims do not parse: "+err.Error())
		return
	}
	info, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	userinfo := ""
	switch {
	case err != nil:
		userinfo = "(userinfo failed: " + err.Error() + ")"
	case info.Subject != idt.Subject: // OpenID Connect Core 5.3.4
		a.fail(w, r, http.StatusBadRequest, "callback-refused", "Refused: userinfo is about another subject than the ID token.")
		return
	default:
		var m map[string]any
		_ = info.Claims(&m)
		b, _ := json.MarshalIndent(m, "", "  ")
		userinfo = string(b)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	if s = a.current(r); s == nil {
		a.render(w, http.StatusBadRequest, a.view(nil))
		return
	}
	u := &user{rawIDToken: raw, claims: c, userinfo: userinfo}
	if !p.sensitive {
		s.user, s.ended = u, false
		s.notice = &notice{ID: "signed-in", Kind: "ok", Text: "Signed in through " + a.d.Provider + "."}
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if refusal := a.freshFor(s.user, c, p); refusal != "" {
		s.notice = &notice{ID: "sensitive-refused", Kind: "error", Text: "Sensitive action refused: " + refusal}
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	prev := s.user.claims.AuthTime
	s.user = u
	s.notice = &notice{ID: "sensitive-done", Kind: "ok", Text: fmt.Sprintf(
		"Sensitive action done: %s re-authenticated you at %s (auth_time renewed from %s).", a.d.Provider,
		time.Unix(c.AuthTime, 0).UTC().Format(time.RFC3339), time.Unix(prev, 0).UTC().Format(time.RFC3339))}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// freshFor says why the answer to a max_age=0 authorization does not allow the sensitive
// action ("" when it does): it must be the signed-in user, and auth_time must be at or
// after the second the app asked and newer than the sign-in it had.
func (a *App) freshFor(cur *user, c idClaims, p pending) string {
	switch {
	case cur == nil:
		return "you were signed out meanwhile."
	case c.Subject != cur.claims.Subject:
		return "the re-authentication was by another user."
	case c.AuthTime == 0:
		return "the ID token has no auth_time."
	case c.AuthTime < p.started.Unix() || c.AuthTime <= cur.claims.AuthTime:
		return fmt.Sprintf("auth_time %s is not fresh: the provider did not re-authenticate you after %s.",
			time.Unix(c.AuthTime, 0).UTC().Format(time.RFC3339), p.started.UTC().Format(time.RFC3339))
	}
	return ""
}

// logout signs the browser out of the demo app, then out of the provider by RP-initiated
// logout when it has an end_session_endpoint (with the ID token as hint and the
// registered post-logout URI).
func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	rp, _ := a.relyingParty(r.Context()) // nil: local sign-out only
	a.mu.Lock()
	s := a.current(r)
	var raw string
	if s != nil && s.user != nil {
		raw = s.user.rawIDToken
		s.user, s.ended = nil, false
	}
	a.mu.Unlock()
	if raw == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if rp == nil || !a.endSessionServed(r.Context(), rp) {
		a.mu.Lock()
		if s = a.current(r); s != nil {
			s.notice = &notice{ID: "signed-out", Kind: "ok", Text: "Signed out of the demo app. Your " + a.d.Provider +
				" session goes on: " + a.d.Provider + " offers no RP-initiated logout."}
		}
		a.mu.Unlock()
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	_, postLogout, _ := URIs(a.d.BaseURL)
	u, err := url.Parse(rp.endSession)
	if err != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	v := u.Query()
	v.Set("id_token_hint", raw)
	v.Set("client_id", a.d.ClientID)
	v.Set("post_logout_redirect_uri", postLogout)
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// endSessionServed reports whether the provider has an end_session_endpoint that is
// actually served: discovery may name one that answers 404 (a provider whose RP-initiated
// logout is not switched on). The probe carries no cookie and no id_token_hint, so it
// ends nothing.
func (a *App) endSessionServed(ctx context.Context, rp *relyingParty) bool {
	if rp.endSession == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rp.endSession, nil)
	if err != nil {
		return false
	}
	hc := *a.d.HTTP
	hc.Jar = nil
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed
}

// signedOut is the post-logout redirect URI: the provider ended its session too.
func (a *App) signedOut(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.current(r)
	v := a.view(s)
	if s != nil && s.user == nil {
		v.Notice = &notice{ID: "signed-out", Kind: "ok", Text: "Signed out of the demo app and of " + a.d.Provider + "."}
	}
	a.render(w, http.StatusOK, v)
}

// backchannel receives OpenID Back-Channel Logout 1.0 logout tokens: a JWT signed with
// one of the issuer's JWKS keys, for this client, with the back-channel logout event,
// sub and/or sid, a jti, no nonce, and typ logout+jwt when it has a typ. The sign-ins it
// names end here; the next page load says so. Answers: 200, or 400 with an OAuth error.
func (a *App) backchannel(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	raw := r.PostFormValue("logout_token")
	if raw == "" {
		backchannelError(w, http.StatusBadRequest, "invalid_request", "logout_token is missing")
		return
	}
	if typ := jwtType(raw); typ != "" && !strings.EqualFold(typ, "logout+jwt") && !strings.EqualFold(typ, "application/logout+jwt") {
		backchannelError(w, http.StatusBadRequest, "invalid_request", "the token's typ is not logout+jwt")
		return
	}
	rp, err := a.relyingParty(r.Context())
	if err != nil {
		backchannelError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the provider's keys are not reachable")
		return
	}
	lt, err := rp.verifier.VerifyLogout(a.ctx(r.Context()), raw)
	if err != nil {
		a.d.Logger.Warn("demo app: logout token refused", "err", err)
		backchannelError(w, http.StatusBadRequest, "invalid_request", "the logout token did not verify")
		return
	}
	n := a.endSessions(lt.Subject, lt.SessionID)
	a.d.Logger.Info("demo app: back-channel logout", "sessions_ended", n)
	w.WriteHeader(http.StatusOK)
}

func backchannelError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// jwtType is the typ of a compact JWT's header ("" when absent or unreadable; the
// signature check refuses what does not parse).
func jwtType(raw string) string {
	head, _, ok := strings.Cut(raw, ".")
	if !ok {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		Typ string `json:"typ"`
	}
	_ = json.Unmarshal(b, &h)
	return h.Typ
}
