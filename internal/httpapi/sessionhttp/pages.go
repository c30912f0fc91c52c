package sessionhttp

import (
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/sso"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// SessionRow is one line of "Where you're signed in".
type SessionRow struct {
	ID         string
	Current    bool
	Device     string
	IP         string
	LastActive string
	Since      string
}

func PageSessions(rs *kit.Responder, sessions *session.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.SignedIn(w, r, "/sessions")
		if !ok {
			return
		}
		notice := ""
		if r.URL.Query().Get("revoked") == "1" {
			notice = "Signed out of that session. That device must sign in again."
		}
		renderSessions(rs, sessions, w, r, p, notice)
	}
}

func renderSessions(rs *kit.Responder, sessions *session.Service, w http.ResponseWriter, r *http.Request, p session.Principal, notice string) {
	list, err := sessions.List(r.Context(), p)
	if err != nil {
		rs.Error(w, r, err)
		return
	}
	now := time.Now()
	rows := make([]SessionRow, 0, len(list))
	for _, v := range list {
		rows = append(rows, SessionRow{ID: v.ID.String(), Current: v.Current,
			Device:     account.DeviceLabel(session.Session{Browser: v.Browser, OS: v.OS, Device: v.Device}),
			IP:         orDash(v.IP),
			LastActive: ago(now.Sub(v.LastActiveAt)),
			Since:      v.CreatedAt.UTC().Format("2 Jan 2006 15:04 UTC")})
	}
	rs.Page(w, r, http.StatusOK, "sessions", "Where you're signed in", SessionsView{Sessions: rows, Notice: notice, Others: len(rows) > 1})
}

// PageRevokeSession signs one session out and comes back to the list with a notice.
func PageRevokeSession(rs *kit.Responder, sessions *session.Service, svc *sso.Service) http.HandlerFunc {
	logout := PageLogout(rs, sessions, svc)
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.SignedIn(w, r, "/sessions")
		if !ok {
			return
		}
		id, err := uuid.Parse(chi.URLParam(r, "id"))
		if err != nil {
			rs.Error(w, r, session.ErrNotFound)
			return
		}
		if id == p.Session.ID {
			// This device: the same as signing out (single logout included).
			logout(w, r)
			return
		}
		if err := sessions.Revoke(r.Context(), p, id, "revoked_by_user"); err != nil {
			rs.Error(w, r, err)
			return
		}
		http.Redirect(w, r, "/sessions?revoked=1", http.StatusSeeOther)
	}
}

func PageRevokeOthers(rs *kit.Responder, sessions *session.Service, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.SignedIn(w, r, "/sessions")
		if !ok {
			return
		}
		if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionSessionsRevokeOthers, "/sessions") {
			return
		}
		n, err := sessions.RevokeOthers(r.Context(), p)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		renderSessions(rs, sessions, w, r, p, fmt.Sprintf("Signed out of %d other session(s).", n))
	}
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// ago renders a duration the way people say it: "just now", "2 minutes ago".
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < 2*time.Minute:
		return "1 minute ago"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes ago", int(d.Minutes()))
	case d < 2*time.Hour:
		return "1 hour ago"
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}
