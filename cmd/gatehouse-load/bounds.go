package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-id/gatehouse/internal/password"
	"github.com/gatehouse-id/gatehouse/internal/sso/samltest"
)

// Bound is a physical limit of this machine measured in the same run as the product.
type Bound struct {
	Name    string  `json:"name"`
	RPS     float64 `json:"rps"`
	Note    string  `json:"note"`
	PerOpMs float64 `json:"per_op_ms,omitempty"`
}

// argon2Bound hashes with the server's parameters on every core for dur: the most logins
// per second this machine can verify. It also times one hash alone (cores ÷ that time is
// the textbook bound).
func argon2Bound(p password.Params, dur time.Duration) (Bound, error) {
	h := password.NewHasher(p)
	t0 := time.Now()
	if _, err := h.Hash(context.Background(), loadPassword); err != nil {
		return Bound{}, err
	}
	single := time.Since(t0)
	cores := runtime.GOMAXPROCS(0)
	var n atomic.Int64
	deadline := time.Now().Add(dur)
	start := time.Now()
	var wg sync.WaitGroup
	for range cores {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if _, err := h.Hash(context.Background(), loadPassword); err == nil {
					n.Add(1)
				}
			}
		})
	}
	wg.Wait()
	rps := float64(n.Load()) / time.Since(start).Seconds()
	return Bound{Name: "argon2id", RPS: rps, PerOpMs: ms(single),
		Note: fmt.Sprintf("argon2id m=%d KiB t=%d p=%d on %d cores in parallel (one hash alone: %.1f ms, cores ÷ time = %.1f/s)",
			p.MemoryKiB, p.Iterations, p.Parallelism, cores, ms(single), float64(cores)/single.Seconds())}, nil
}

// crewjamBound parses and verifies the same signed responses the ACS run posts, with
// crewjam/saml alone on every core: the most SAML sign-ins per second the library allows.
func crewjamBound(idp *samltest.IdP, sp map[string]spInfo, items []pendingSSO, dur time.Duration) (Bound, error) {
	ed, err := samlsp.ParseMetadata(idp.Metadata(idpSSOURL, ""))
	if err != nil {
		return Bound{}, err
	}
	key, cert, err := samltest.NewKeyPair("bare sp", 2048)
	if err != nil {
		return Bound{}, err
	}
	sps := map[string]*saml.ServiceProvider{}
	for slug, info := range sp {
		acs, err := url.Parse(info.acsURL)
		if err != nil {
			return Bound{}, err
		}
		sps[slug] = &saml.ServiceProvider{EntityID: info.entityID, Key: key, Certificate: cert, AcsURL: *acs, IDPMetadata: ed,
			RejectSHA1Signatures: true, RejectUnknownConditions: true}
	}
	cores := runtime.GOMAXPROCS(0)
	var next, done atomic.Int64
	var firstErr atomic.Pointer[error]
	deadline := time.Now().Add(dur)
	start := time.Now()
	var wg sync.WaitGroup
	for range cores {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				i := int(next.Add(1)-1) % len(items)
				s := sps[items[i].slug]
				if _, err := s.ParseXMLResponse(items[i].doc, []string{items[i].reqID}, s.AcsURL); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return Bound{}, fmt.Errorf("bare crewjam refused a response the ACS would get: %w", *e)
	}
	return Bound{Name: "crewjam ParseXMLResponse", RPS: float64(done.Load()) / time.Since(start).Seconds(),
		Note: fmt.Sprintf("crewjam/saml ServiceProvider.ParseXMLResponse of the same signed responses on %d cores (no HTTP, no database)", cores)}, nil
}

// signingBound signs, on every core for dur, what one token response signs: an ID token
// and an RFC 9068 access token, RS256 with a 2048-bit key, through go-jose as zitadel/oidc
// does (claims encoded as JSON, then signed and serialised). The most token responses per
// second this machine can sign; the token endpoint does nothing else with RSA.
func signingBound(dur time.Duration) (Bound, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return Bound{}, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "bound"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return Bound{}, err
	}
	now := time.Now().Unix()
	const iss, sub, sid = "http://load-000.localhost:8080", "5a6b7c8d-1e2f-4a5b-8c9d-0e1f2a3b4c5d", "0b0f6c1e-6a8e-4f53-9d7e-1d2b7c3a4e5f"
	claims := []map[string]any{
		{"iss": iss, "sub": sub, "aud": []string{"gh_client_0123456789abcdef"}, "exp": now + 3600, "iat": now, "auth_time": now,
			"nonce": "load", "acr": "urn:gatehouse:aal1", "amr": []string{"pwd"}, "azp": "gh_client_0123456789abcdef",
			"at_hash": "x0Zb2yZxnYbq7Q3tJqZ8Bw", "sid": sid, "email": "u1-abc@load-000.load.example", "email_verified": true,
			"tenant": "load-000", "roles": []string{}},
		{"iss": iss, "sub": sub, "aud": []string{"gh_client_0123456789abcdef"}, "exp": now + 3600, "iat": now, "nbf": now,
			"jti": "1d2b7c3a-4e5f-4a5b-8c9d-0e1f2a3b4c5d", "client_id": "gh_client_0123456789abcdef",
			"scope": "openid email profile offline_access", "tenant": "load-000", "sid": sid},
	}
	signTwo := func() error {
		for _, c := range claims {
			payload, err := json.Marshal(c)
			if err != nil {
				return err
			}
			jws, err := signer.Sign(payload)
			if err != nil {
				return err
			}
			if _, err := jws.CompactSerialize(); err != nil {
				return err
			}
		}
		return nil
	}
	t0 := time.Now()
	if err := signTwo(); err != nil {
		return Bound{}, err
	}
	single := time.Since(t0)
	cores := runtime.GOMAXPROCS(0)
	var n atomic.Int64
	deadline := time.Now().Add(dur)
	start := time.Now()
	var wg sync.WaitGroup
	for range cores {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if signTwo() == nil {
					n.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return Bound{Name: "RS256 ×2", RPS: float64(n.Load()) / time.Since(start).Seconds(), PerOpMs: ms(single),
		Note: fmt.Sprintf("two RS256 signatures (2048-bit key, go-jose: an ID token and a JWT access token, JSON-encoded) per token response, on %d cores in the load tool's process", cores)}, nil
}
