package platformhttp

import (
	"net/http"

	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/mail"
)

func devMail(r *http.Request, dir string) ([]mail.Captured, error) {
	if t, ok := kit.TenantFrom(r.Context()); ok {
		return mail.ReadTenantDir(dir, t.ID)
	}
	return mail.ReadDir(dir)
}

// DevMailView lists captured messages.
type DevMailView struct{ Messages []mail.Captured }

// PageDevMail is the dev mailbox page.
func PageDevMail(rs *kit.Responder, dir string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		msgs, err := devMail(r, dir)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.Page(w, r, http.StatusOK, "devmail", "Dev mailbox", DevMailView{Messages: msgs})
	}
}

// HandleDevMailJSON is the dev mailbox as JSON (tests and scripts read links from it).
func HandleDevMailJSON(rs *kit.Responder, dir string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		msgs, err := devMail(r, dir)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, msgs)
	}
}
