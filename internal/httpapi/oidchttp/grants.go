package oidchttp

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/oidcop"
)

// AccountAppsView is "Apps with access" on the user's account.
type AccountAppsView struct {
	Grants []GrantRow
	Notice string
}

// GrantRow is one app the user let in.
type GrantRow struct {
	AppID, AppName, Since string
	Scopes                []string
}

// PageAccountApps lists the third-party apps the user let in, each with "Remove access".
func PageAccountApps(rs *kit.Responder, svc *oidcop.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.SignedIn(w, r, "/account/apps")
		if !ok {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		grants, err := svc.ListGrants(r.Context(), t, p.UserID)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		v := AccountAppsView{Grants: []GrantRow{}}
		if r.URL.Query().Get("removed") != "" {
			v.Notice = "Access removed. The app was signed out and must ask you again."
		}
		for _, g := range grants {
			row := GrantRow{AppID: g.AppID.String(), AppName: g.AppName, Since: g.GrantedAt.UTC().Format("2 Jan 2006")}
			for _, sc := range g.Scopes {
				if txt, ok := scopeText[sc]; ok {
					row.Scopes = append(row.Scopes, txt)
				}
			}
			v.Grants = append(v.Grants, row)
		}
		rs.Page(w, r, http.StatusOK, "account_apps", "Apps with access", v)
	}
}

// PageAccountAppRevoke takes an app's access back.
func PageAccountAppRevoke(rs *kit.Responder, svc *oidcop.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.SignedIn(w, r, "/account/apps")
		if !ok {
			return
		}
		id, err := uuid.Parse(chi.URLParam(r, "id"))
		if err != nil {
			rs.Error(w, r, oidcop.ErrGrantNotFound)
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		if err := svc.RevokeGrant(r.Context(), t, p, id, kit.Who(r)); err != nil {
			rs.Error(w, r, err)
			return
		}
		http.Redirect(w, r, "/account/apps?removed=1", http.StatusSeeOther)
	}
}
