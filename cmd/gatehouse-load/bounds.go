package main

import (
	"context"
	"fmt"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"

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
