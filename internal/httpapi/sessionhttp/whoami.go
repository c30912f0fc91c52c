package sessionhttp

import (
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/session"
)

// whoami is the body of GET /api/v1/session: what an app needs to know about a request.
type whoami struct {
	Session session.Session `json:"session"`
	User    struct {
		ID              uuid.UUID  `json:"id"`
		Email           string     `json:"email"`
		Name            string     `json:"name"`
		Status          string     `json:"status"`
		EmailVerified   bool       `json:"email_verified"`
		EmailVerifiedAt *time.Time `json:"email_verified_at"`
		CreatedAt       time.Time  `json:"created_at"`
	} `json:"user"`
	Tenant struct {
		Slug string `json:"slug"`
		Name string `json:"name"`
	} `json:"tenant"`
}

func HandleWhoami(rs *kit.Responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := kit.PrincipalFrom(r.Context())
		t, _ := kit.TenantFrom(r.Context())
		var out whoami
		out.Session = p.Session
		out.User.ID, out.User.Email, out.User.Name, out.User.Status = p.UserID, p.Email, p.Name, p.Status
		out.User.EmailVerified, out.User.EmailVerifiedAt, out.User.CreatedAt = p.EmailVerifiedAt != nil, p.EmailVerifiedAt, p.UserCreatedAt
		out.Tenant.Slug, out.Tenant.Name = t.Slug, t.Name
		bp := whoamiBufs.Get().(*[]byte)
		buf := appendWhoami((*bp)[:0], &out)
		w.Header()["Content-Type"] = jsonContentType
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(buf) // copied into the connection's buffer: buf is free again
		if cap(buf) <= 4<<10 {
			*bp = buf
			whoamiBufs.Put(bp)
		}
	}
}

var jsonContentType = kit.Fixed("application/json; charset=utf-8")

// whoamiBufs holds the bodies' buffers between requests (a body is ~600 bytes).
var whoamiBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}
