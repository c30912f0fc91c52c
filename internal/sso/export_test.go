package sso

import "github.com/google/uuid"

// SetSignInHook makes fn run inside every attempt of s's ACS sign-in transaction, at
// "begin" and just before "commit" (nil removes it). An error fn returns fails that
// attempt; a *pgconn.PgError with code 40001 makes the store run the transaction again.
func SetSignInHook(s *Service, fn func(point string) error) {
	if fn == nil {
		s.signInHook.Store(nil)
		return
	}
	s.signInHook.Store(&fn)
}

// ConnCached tells whether s's ACS connection cache holds (tenant, slug) now.
func ConnCached(s *Service, tenantID uuid.UUID, slug string) bool {
	e, _ := s.conns.get(tenantID, slug)
	return e != nil
}
