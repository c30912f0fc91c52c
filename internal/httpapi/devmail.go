package httpapi

import (
	"net/http"

	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/web"
)

// The dev mailbox: mail that `gatehouse dev` captured as .eml files. Never routed in serve.

func pageDevMail(rs *responder, pages *web.Renderer, dir string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		msgs, err := mail.ReadDir(dir)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		renderPage(rs, pages, w, r, http.StatusOK, "devmail", "Dev mailbox", pageData{"Messages": msgs})
	}
}

func handleDevMailJSON(rs *responder, dir string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		msgs, err := mail.ReadDir(dir)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, msgs)
	}
}
