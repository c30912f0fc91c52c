package devapp

import (
	"net/http"
	"strings"
	"time"
)

// CookieName is the demo app's session cookie (a random key into its in-memory sessions).
const CookieName = "demoapp_session"

const (
	sessionIdle    = 12 * time.Hour   // a session unused this long is forgotten
	maxSessions    = 1000             // beyond this the least recently used go first
	pendingTTL     = 10 * time.Minute // an authorization not answered by then is refused
	maxPendingEach = 5                // authorizations a browser may have in flight
)

// session is one browser's state in the demo app.
type session struct {
	seen    time.Time
	pending map[string]pending // by state
	user    *user              // nil: signed out
	// ended: a back-channel logout ended the sign-in; the next page says so.
	ended  bool
	notice *notice // shown once by the next page
}

// pending is an authorization the browser was sent to: what its answer must match.
type pending struct {
	nonce, verifier string
	sensitive       bool      // max_age=0 for the sensitive action
	started         time.Time // when the app asked
}

// user is a signed-in user: what the ID token and userinfo said.
type user struct {
	rawIDToken string
	claims     idClaims
	userinfo   string // pretty JSON
}

// idClaims are the ID token claims the demo shows.
type idClaims struct {
	Subject  string   `json:"sub"`
	Email    string   `json:"email"`
	Name     string   `json:"name"`
	AuthTime int64    `json:"auth_time"`
	ACR      string   `json:"acr"`
	AMR      []string `json:"amr"`
	SID      string   `json:"sid"`
}

type notice struct {
	ID, Kind, Text string // Kind: ok or error
}

// current returns the browser's session (nil: none). The caller holds a.mu.
func (a *App) current(r *http.Request) *session {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return nil
	}
	s := a.sessions[c.Value]
	if s == nil {
		return nil
	}
	if a.now().Sub(s.seen) > sessionIdle {
		delete(a.sessions, c.Value)
		return nil
	}
	s.seen = a.now()
	return s
}

// currentOrNew returns the browser's session, making one (and setting its cookie) when
// there is none. The caller holds a.mu.
func (a *App) currentOrNew(w http.ResponseWriter, r *http.Request) *session {
	if s := a.current(r); s != nil {
		return s
	}
	a.evict()
	id := random()
	s := &session{seen: a.now(), pending: map[string]pending{}}
	a.sessions[id] = s
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: id, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: strings.HasPrefix(a.d.BaseURL, "https://")})
	return s
}

// evict forgets idle sessions, and the least recently used beyond maxSessions-1.
func (a *App) evict() {
	for id, s := range a.sessions {
		if a.now().Sub(s.seen) > sessionIdle {
			delete(a.sessions, id)
		}
	}
	for len(a.sessions) >= maxSessions {
		var oldest string
		for id, s := range a.sessions {
			if oldest == "" || s.seen.Before(a.sessions[oldest].seen) {
				oldest = id
			}
		}
		delete(a.sessions, oldest)
	}
}

// addPending records an authorization the browser is sent to, keeping the newest few.
func (a *App) addPending(s *session, state string, p pending) {
	for st, old := range s.pending {
		if a.now().Sub(old.started) > pendingTTL {
			delete(s.pending, st)
		}
	}
	for len(s.pending) >= maxPendingEach {
		var oldest string
		for st, old := range s.pending {
			if oldest == "" || old.started.Before(s.pending[oldest].started) {
				oldest = st
			}
		}
		delete(s.pending, oldest)
	}
	s.pending[state] = p
}

// endSessions ends the local sign-ins a logout token names: by sid when it has one (and
// the same sub, when it has that too), else every sign-in of sub. It returns how many.
func (a *App) endSessions(sub, sid string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, s := range a.sessions {
		if s.user == nil {
			continue
		}
		c := s.user.claims
		match := (sid != "" && c.SID == sid && (sub == "" || c.Subject == sub)) || (sid == "" && c.Subject == sub)
		if match {
			s.user, s.ended, s.notice = nil, true, nil
			n++
		}
	}
	return n
}
