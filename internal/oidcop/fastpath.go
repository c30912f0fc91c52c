package oidcop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/google/uuid"
	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Userinfo and introspection of an access token string this node verified before answer
// from the cache (cache.go) without verifying the JWT again or opening a transaction; any
// other request goes to the library, which verifies the token (signature over the tenant's
// JWKS, issuer, expiry) and then calls storage, which binds the string's hash to the
// token it verified as. The fast path is an interceptor inside the library's router, so
// its CORS handling and issuer context apply alike, and it answers exactly as
// op.Userinfo and op.Introspect do.

type verifiedHashKey struct{}

// withTokenHash marks a request whose token string hashes to h, for storage to bind once
// the library verified it.
func withTokenHash(ctx context.Context, h [32]byte) context.Context {
	return context.WithValue(ctx, verifiedHashKey{}, h)
}

func tokenHashFrom(ctx context.Context) ([32]byte, bool) {
	h, ok := ctx.Value(verifiedHashKey{}).([32]byte)
	return h, ok
}

// bearer is op.Userinfo's reading of the Authorization header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("authorization")
	if len(h) < len(oidc.PrefixBearer) || !strings.EqualFold(h[:len(oidc.PrefixBearer)], oidc.PrefixBearer) {
		return "", false
	}
	return h[len(oidc.PrefixBearer):], true
}

// fastPath is the interceptor; provider is the library's (for client authentication).
func (s *Service) fastPath(provider func() *op.Provider) op.HttpInterceptor {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if s.cache.usable() {
				switch r.URL.Path {
				case UserinfoPath:
					if r = s.cachedUserinfo(w, r); r == nil {
						return
					}
				case IntrospectPath:
					if r = s.cachedIntrospection(w, r, provider()); r == nil {
						return
					}
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// cachedUserinfo answers from the cache (nil) or returns the request for the library,
// marked with its token's hash.
func (s *Service) cachedUserinfo(w http.ResponseWriter, r *http.Request) *http.Request {
	tok, ok := bearer(r)
	t, err := tenantFrom(r.Context())
	if !ok || err != nil {
		return r
	}
	h := sha256.Sum256([]byte(tok))
	id, subject, hit := s.cache.verifiedToken(t.ID, h, s.now())
	if !hit {
		return r.WithContext(withTokenHash(r.Context(), h))
	}
	if b := s.cache.body(t.ID, id, false, s.now()); b != nil {
		writeJSON(w, b)
		return nil
	}
	epoch := s.cache.currentEpoch()
	info := new(oidc.UserInfo)
	if err := (storage{s}).SetUserinfoFromToken(r.Context(), info, id.String(), subject, r.Header.Get("origin")); err != nil {
		httphelper.MarshalJSONWithStatus(w, err, http.StatusForbidden)
		return nil
	}
	s.answer(w, t.ID, id, false, info, epoch)
	return nil
}

// answer writes v as httphelper.MarshalJSON does (status 200, the encoder's bytes), and
// keeps the bytes on the token's entry for the next request.
func (s *Service) answer(w http.ResponseWriter, tenantID, id uuid.UUID, introspection bool, v any, epoch uint64) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		httphelper.MarshalJSON(w, v) // the library's own handling of the error
		return
	}
	b := buf.Bytes()
	s.cache.setBody(tenantID, id, introspection, b, epoch)
	writeJSON(w, b)
}

func writeJSON(w http.ResponseWriter, b []byte) {
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// cachedIntrospection answers from the cache after authenticating the client as the
// library does (nil), or returns the request for the library. Only a request with one
// token value is considered: the hash must be of the string the library reads.
func (s *Service) cachedIntrospection(w http.ResponseWriter, r *http.Request, provider *op.Provider) *http.Request {
	t, err := tenantFrom(r.Context())
	if err != nil || provider == nil || r.ParseForm() != nil || len(r.Form["token"]) != 1 {
		return r
	}
	h := sha256.Sum256([]byte(r.Form["token"][0]))
	id, subject, hit := s.cache.verifiedToken(t.ID, h, s.now())
	if !hit {
		return r.WithContext(withTokenHash(r.Context(), h))
	}
	// op.ClientIDFromRequest's branch for client_secret_basic, the one introspection
	// accepts from Gatehouse's apps: anything else goes to the library before any check.
	if _, _, basic := r.BasicAuth(); !basic || r.Form.Get("client_assertion") != "" {
		return r
	}
	clientID, err := op.ClientBasicAuth(r, provider.Storage())
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return nil
	}
	if b := s.cache.body(t.ID, id, true, s.now()); b != nil {
		writeJSON(w, b)
		return nil
	}
	epoch := s.cache.currentEpoch()
	resp := new(oidc.IntrospectionResponse)
	if err := (storage{s}).SetIntrospectionFromToken(r.Context(), resp, id.String(), subject, clientID); err != nil {
		httphelper.MarshalJSON(w, new(oidc.IntrospectionResponse))
		return nil
	}
	resp.Active = true
	s.answer(w, t.ID, id, true, resp, epoch)
	return nil
}
