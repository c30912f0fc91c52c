package scimhttp

import (
	"embed"
	"errors"
	"io/fs"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/scim"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// The portal's Directory sync pages (/admin/directories): the list with the form for a new
// directory and the setup guides, one directory's page (tokens, request log), and the page
// that shows a token once. Writes need directories.manage (the route) and its step-up.

//go:embed templates/*.html
var templates embed.FS

// Templates are this package's pages.
func Templates() fs.FS {
	sub, _ := fs.Sub(templates, "templates")
	return sub
}

// DirectoriesView is the list page.
type DirectoriesView struct {
	Directories []scim.Directory
	Connections []scim.ConnectionOption
	BaseURL     string
	Error       string
	Deleted     bool
}

// DirectoryView is one directory's page.
type DirectoryView struct {
	D       scim.Directory
	Log     []scim.LogEntry
	Notice  string
	Revoked bool
}

// TokenView shows a new token once, with what to paste where.
type TokenView struct {
	D     scim.Directory
	Token string
}

func renderList(rs *kit.Responder, svc *scim.Service, w http.ResponseWriter, r *http.Request, status int, v DirectoriesView) {
	t, _ := kit.TenantFrom(r.Context())
	var err error
	if v.Directories, err = svc.ListDirectories(r.Context(), t); err != nil {
		rs.Error(w, r, err)
		return
	}
	if v.Connections, err = svc.Connections(r.Context(), t); err != nil {
		rs.Error(w, r, err)
		return
	}
	v.BaseURL = svc.BaseURL(t)
	rs.AdminPage(w, r, status, "admin_directories", "Directory sync", v)
}

// PageDirectories is GET /admin/directories.
func PageDirectories(rs *kit.Responder, svc *scim.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		renderList(rs, svc, w, r, http.StatusOK, DirectoriesView{Deleted: r.URL.Query().Get("deleted") != ""})
	}
}

// PageDirectoryCreate is POST /admin/directories: the new token is shown on the answer.
func PageDirectoryCreate(rs *kit.Responder, svc *scim.Service, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := kit.PrincipalFrom(r.Context())
		if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionDirectoriesManage, "/admin/directories") {
			return
		}
		if err := r.ParseForm(); err != nil {
			rs.Error(w, r, kit.ErrTooLarge)
			return
		}
		in := scim.DirectoryInput{Name: r.PostFormValue("name"), Provider: r.PostFormValue("provider"), DeleteMode: r.PostFormValue("delete_mode")}
		if c := r.PostFormValue("sso_connection_id"); c != "" {
			if id, err := uuid.Parse(c); err == nil {
				in.SSOConnectionID = &id
			}
		}
		t, _ := kit.TenantFrom(r.Context())
		c, err := svc.CreateDirectory(r.Context(), t, in, kit.Who(r))
		if apperr.IsKind(err, apperr.Invalid) {
			renderList(rs, svc, w, r, http.StatusBadRequest, DirectoriesView{Error: apperr.From(err).Message + " " + reason(err)})
			return
		}
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		rs.AdminPage(w, r, http.StatusCreated, "admin_directory_token", "Directory token", TokenView{D: c.Directory, Token: c.Token})
	}
}

func reason(err error) string {
	var e *apperr.Error
	if errors.As(err, &e) {
		if s, ok := e.Details["reason"].(string); ok {
			return "(" + s + ")"
		}
	}
	return ""
}

func pageID(rs *kit.Responder, w http.ResponseWriter, r *http.Request) (tenant.Tenant, uuid.UUID, bool) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		rs.Error(w, r, scim.ErrDirectoryNotFound)
		return tenant.Tenant{}, id, false
	}
	t, _ := kit.TenantFrom(r.Context())
	return t, id, true
}

// PageDirectory is GET /admin/directories/{id}.
func PageDirectory(rs *kit.Responder, svc *scim.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, id, ok := pageID(rs, w, r)
		if !ok {
			return
		}
		d, err := svc.GetDirectory(r.Context(), t, id)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		log, err := svc.RequestLog(r.Context(), t, id, 100)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.AdminPage(w, r, http.StatusOK, "admin_directory", d.Name, DirectoryView{D: d, Log: log, Revoked: r.URL.Query().Get("revoked") != ""})
	}
}

// PageDirectoryAction is POST /admin/directories/{id}/tokens, …/tokens/{token}/revoke and
// …/delete.
func PageDirectoryAction(rs *kit.Responder, svc *scim.Service, steps *stepup.Service, action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, id, ok := pageID(rs, w, r)
		if !ok {
			return
		}
		p, _ := kit.PrincipalFrom(r.Context())
		if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionDirectoriesManage, "/admin/directories/"+id.String()) {
			return
		}
		switch action {
		case "token":
			c, err := svc.CreateToken(r.Context(), t, id, kit.Who(r))
			if err != nil {
				rs.Error(w, r, err)
				return
			}
			w.Header().Set("Cache-Control", "no-store")
			rs.AdminPage(w, r, http.StatusCreated, "admin_directory_token", "Directory token", TokenView{D: c.Directory, Token: c.Token})
		case "revoke":
			tid, err := uuid.Parse(chi.URLParam(r, "token"))
			if err == nil {
				err = svc.RevokeToken(r.Context(), t, id, tid, kit.Who(r))
			} else {
				err = scim.ErrTokenNotFound
			}
			if err != nil {
				rs.Error(w, r, err)
				return
			}
			http.Redirect(w, r, "/admin/directories/"+id.String()+"?revoked=1", http.StatusSeeOther)
		case "delete":
			if err := svc.DeleteDirectory(r.Context(), t, id, kit.Who(r)); err != nil {
				rs.Error(w, r, err)
				return
			}
			http.Redirect(w, r, "/admin/directories?deleted=1", http.StatusSeeOther)
		}
	}
}
