package oidcop_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestCodeFlowWithNodeOpenIDClient: the OpenID certified Node library openid-client v6
// (vendored, unmodified, in testdata/node/node_modules; no network at test time) is the
// relying party: it discovers the tenant's issuer, builds the code + PKCE authorization
// request, exchanges the code and validates the ID token (JWKS signature, iss, aud, exp,
// nonce, state, RFC 9207 iss), reads userinfo for the expected subject, refreshes (a
// first-party app), introspects and revokes. The browser's part is this test's, with the
// user's session cookie. The script is testdata/node/interop.mjs.
func TestCodeFlowWithNodeOpenIDClient(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the openid-client (Node) interoperability test needs Node.js 20 or later on PATH")
	}
	srv := testutil.NewServer(t, testutil.PackageDB(t))
	e := newEnv(t, srv, "opnode")
	redirect := "http://127.0.0.1:9/callback"
	clientID, secret := e.app(t, map[string]any{"name": "Node RP", "type": "confidential", "first_party": true,
		"redirect_uris": []string{redirect}, "grant_types": []string{"authorization_code", "refresh_token"}})
	userID, session := e.Person(t, "grace@example.com")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "testdata/node/interop.mjs")
	cmd.Env = append(os.Environ(), "ISSUER="+e.issuer, "CLIENT_ID="+clientID, "CLIENT_SECRET="+secret, "REDIRECT_URI="+redirect)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	defer func() { _ = cmd.Wait() }()
	defer cancel()
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 0, 64<<10), 1<<20)
	read := func(v any) {
		t.Helper()
		if !lines.Scan() {
			rest, _ := io.ReadAll(stdout)
			t.Fatalf("openid-client script ended early: %v %s; stderr: %s", lines.Err(), rest, stderr.String())
		}
		var fail struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(lines.Bytes(), &fail) == nil && fail.Error != "" {
			t.Fatalf("openid-client failed: %s; stderr: %s", lines.Bytes(), stderr.String())
		}
		if err := json.Unmarshal(lines.Bytes(), v); err != nil {
			t.Fatalf("openid-client output %q: %v", lines.Bytes(), err)
		}
	}

	var start struct {
		AuthorizationURL string `json:"authorization_url"`
		State            string `json:"state"`
		Nonce            string `json:"nonce"`
	}
	read(&start)
	q := e.authorize(t, start.AuthorizationURL, session, redirect)
	if q.Get("state") != start.State || q.Get("iss") != e.issuer || q.Get("code") == "" {
		t.Fatalf("authorization response: %v", q)
	}
	if _, err := io.WriteString(stdin, redirect+"?"+q.Encode()+"\n"); err != nil {
		t.Fatal(err)
	}

	var out struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
		Claims        struct {
			Iss      string `json:"iss"`
			Sub      string `json:"sub"`
			Aud      any    `json:"aud"`
			Email    string `json:"email"`
			Nonce    string `json:"nonce"`
			Sid      string `json:"sid"`
			AuthTime int64  `json:"auth_time"`
		} `json:"id_token_claims"`
		TokenType    string `json:"token_type"`
		RefreshToken string `json:"refresh_token"`
		UserInfo     struct {
			Sub   string `json:"sub"`
			Email string `json:"email"`
		} `json:"userinfo"`
		Refreshed struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		} `json:"refreshed"`
		Introspection struct {
			Active   bool   `json:"active"`
			Sub      string `json:"sub"`
			ClientID string `json:"client_id"`
		} `json:"introspection"`
		RefreshAfterRevoke string `json:"refresh_after_revoke"`
	}
	read(&out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("node exited: %v; stderr: %s", err, stderr.String())
	}

	if out.Issuer != e.issuer || out.TokenEndpoint != e.issuer+"/oauth2/token" {
		t.Fatalf("discovery through openid-client: issuer %q token endpoint %q", out.Issuer, out.TokenEndpoint)
	}
	c := out.Claims
	if c.Iss != e.issuer || c.Sub != userID.String() || c.Email != "grace@example.com" || c.Nonce != start.Nonce ||
		c.Sid == "" || c.AuthTime == 0 || (c.Aud != clientID && !containsAny(c.Aud, clientID)) {
		t.Fatalf("ID token claims validated by openid-client: %+v (want sub %s, nonce %s)", c, userID, start.Nonce)
	}
	if out.TokenType != "bearer" && out.TokenType != "Bearer" {
		t.Fatalf("token type %q", out.TokenType)
	}
	if out.UserInfo.Sub != userID.String() || out.UserInfo.Email != "grace@example.com" {
		t.Fatalf("userinfo through openid-client: %+v", out.UserInfo)
	}
	if out.RefreshToken == "" || out.Refreshed.RefreshToken == "" || out.Refreshed.RefreshToken == out.RefreshToken ||
		out.Refreshed.AccessToken == "" {
		t.Fatalf("refresh through openid-client did not rotate: first %q, next %q", out.RefreshToken, out.Refreshed.RefreshToken)
	}
	if !out.Introspection.Active || out.Introspection.Sub != userID.String() || out.Introspection.ClientID != clientID {
		t.Fatalf("introspection through openid-client: %+v", out.Introspection)
	}
	if out.RefreshAfterRevoke != "invalid_grant" {
		t.Fatalf("refresh with a token revoked through openid-client: %q", out.RefreshAfterRevoke)
	}
	// The server agrees with what the library saw: the refreshed access token is live.
	if a := e.introspect(t, clientID, secret, out.Refreshed.AccessToken); a["active"] != true || a["sub"] != userID.String() {
		t.Fatalf("introspection of the access token openid-client refreshed: %v", a)
	}
}

func containsAny(v any, s string) bool {
	list, _ := v.([]any)
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
