package ssohttp

import (
	"io"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/sso"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// Guide is what to copy where in one IdP's admin console.
type Guide struct {
	Provider, Title string
	Steps           []string
	EntityField     string // the IdP's name for the SP entity id
	ACSField        string // the IdP's name for the ACS URL
	Attributes      string
}

// Guides are the setup guides, one per IdP, in the order the portal offers them.
var Guides = []Guide{
	{Provider: "okta", Title: "Okta", EntityField: "Audience URI (SP Entity ID)", ACSField: "Single sign-on URL",
		Attributes: "email → user.email, firstName → user.firstName, lastName → user.lastName; group attribute statement groups",
		Steps: []string{"In the Okta Admin Console: Applications → Create App Integration → SAML 2.0.",
			"Paste the values below into Single sign-on URL and Audience URI; Name ID format: EmailAddress or Persistent.",
			"Add the attribute statements, finish, then copy the Metadata URL from the Sign On tab and paste it here."}},
	{Provider: "entra", Title: "Microsoft Entra ID", EntityField: "Identifier (Entity ID)", ACSField: "Reply URL (Assertion Consumer Service URL)",
		Attributes: "the default claims work (emailaddress, givenname, surname); add a group claim for role mapping",
		Steps: []string{"In the Entra admin center: Enterprise applications → New application → Create your own → Non-gallery.",
			"Single sign-on → SAML → Basic SAML Configuration: paste the values below.",
			"Copy the App Federation Metadata Url (SAML Certificates section) and paste it here. Assign users or groups to the application."}},
	{Provider: "google", Title: "Google Workspace", EntityField: "Entity ID", ACSField: "ACS URL",
		Attributes: "map Primary email → email, First name → firstName, Last name → lastName; Group membership → groups",
		Steps: []string{"In the Google Admin console: Apps → Web and mobile apps → Add app → Add custom SAML app.",
			"Download the IdP metadata (Option 1) and upload it here.",
			"On Service provider details paste the values below; Name ID format EMAIL, Name ID Basic Information > Primary email. Turn the app on for your users."}},
	{Provider: "generic", Title: "Any SAML 2.0 IdP (ADFS, Ping, OneLogin, Keycloak…)", EntityField: "SP entity ID / Audience", ACSField: "ACS / Reply URL",
		Attributes: "send the email address as NameID or in an attribute named email (or map your names below)",
		Steps: []string{"Create a SAML 2.0 relying party / service provider at your IdP and paste the values below (or import the SP metadata URL).",
			"Sign assertions with RSA-SHA256 and a key of at least 2048 bits.",
			"Paste the IdP's metadata XML or its metadata URL here."}},
}

// GuideFor is the guide of provider p (the generic one for an unknown provider).
func GuideFor(p string) Guide {
	for _, g := range Guides {
		if g.Provider == p {
			return g
		}
	}
	return Guides[len(Guides)-1]
}

func PageAdminSSO(rs *kit.Responder, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		list, err := svc.List(r.Context(), t)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.AdminPage(w, r, http.StatusOK, "admin_sso", "Single sign-on", ConnectionsView{Connections: list, Guides: Guides,
			Guide: GuideFor(r.URL.Query().Get("provider")), Deleted: r.URL.Query().Get("deleted") != ""})
	}
}

// formInput reads the connection form; missing checkboxes are false.
func formInput(r *http.Request, create bool) sso.Input {
	str := func(k string) *string {
		if _, ok := r.PostForm[k]; !ok {
			return nil
		}
		v := strings.TrimSpace(r.PostFormValue(k))
		return &v
	}
	flag := func(k string) *bool { v := r.PostFormValue(k) != ""; return &v }
	in := sso.Input{Name: str("name"), Provider: str("provider"), MetadataURL: str("idp_metadata_url"),
		EntityID: str("idp_entity_id"), NameIDFormat: str("name_id_format"), DefaultRedirect: str("default_redirect")}
	if create {
		in.Slug = str("slug")
	}
	if x := r.PostFormValue("idp_metadata_xml"); strings.TrimSpace(x) != "" {
		in.MetadataXML = &x
	}
	if _, ok := r.PostForm["domains"]; ok {
		var ds []string
		for _, d := range strings.FieldsFunc(r.PostFormValue("domains"), func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == '\r' }) {
			ds = append(ds, d)
		}
		in.Domains = &ds
	}
	if _, ok := r.PostForm["settings"]; ok {
		in.JIT, in.Enforce, in.AllowIdPInitiated, in.Enabled = flag("jit"), flag("enforce"), flag("allow_idp_initiated"), flag("enabled")
		m := sso.AttributeMapping{Email: r.PostFormValue("map_email"), FirstName: r.PostFormValue("map_first_name"),
			LastName: r.PostFormValue("map_last_name"), Groups: r.PostFormValue("map_groups")}
		in.AttributeMapping = &m
		roles := map[string]string{}
		for _, line := range strings.Split(r.PostFormValue("role_mapping"), "\n") {
			if g, role, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
				roles[strings.TrimSpace(g)] = strings.TrimSpace(role)
			}
		}
		in.RoleMapping = &roles
	}
	return in
}

// readForm parses a form with an upload field (metadata file) within the body limit.
func readForm(r *http.Request) error {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		if err := r.ParseMultipartForm(sso.MaxMetadataBytes); err != nil {
			return err
		}
		if f, _, err := r.FormFile("idp_metadata_file"); err == nil {
			defer f.Close()
			b, _ := io.ReadAll(io.LimitReader(f, sso.MaxMetadataBytes+1))
			if len(b) > 0 {
				r.PostForm.Set("idp_metadata_xml", string(b))
			}
		}
		return nil
	}
	return r.ParseForm()
}

func PageAdminSSOCreate(rs *kit.Responder, svc *sso.Service, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := kit.PrincipalFrom(r.Context())
		if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionSSOConfigure, "/admin/sso") {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		if err := readForm(r); err != nil {
			rs.Error(w, r, kit.ErrTooLarge)
			return
		}
		c, err := svc.Create(r.Context(), t, formInput(r, true), kit.Who(r))
		if err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				list, _ := svc.List(r.Context(), t)
				rs.AdminPage(w, r, status, "admin_sso", "Single sign-on", ConnectionsView{Connections: list, Guides: Guides,
					Guide: GuideFor(r.PostFormValue("provider")), Error: msg + detailText(err)})
			}
			return
		}
		http.Redirect(w, r, "/admin/sso/"+c.ID.String()+"?created=1", http.StatusSeeOther)
	}
}

func connFromURL(rs *kit.Responder, svc *sso.Service, w http.ResponseWriter, r *http.Request) (sso.Connection, bool) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		rs.Error(w, r, sso.ErrNotFound)
		return sso.Connection{}, false
	}
	t, _ := kit.TenantFrom(r.Context())
	c, err := svc.Get(r.Context(), t, id)
	if err != nil {
		rs.Error(w, r, err)
		return sso.Connection{}, false
	}
	return c, true
}

func renderConn(rs *kit.Responder, svc *sso.Service, w http.ResponseWriter, r *http.Request, c sso.Connection, status int, notice, errMsg string) {
	t, _ := kit.TenantFrom(r.Context())
	attempts, err := svc.Attempts(r.Context(), t, c.ID, 20)
	if err != nil {
		rs.Error(w, r, err)
		return
	}
	var roles []string
	for g, role := range c.RoleMapping {
		roles = append(roles, g+"="+role)
	}
	domains := make([]string, 0, len(c.Domains))
	for _, d := range c.Domains {
		domains = append(domains, d.Domain)
	}
	rs.AdminPage(w, r, status, "admin_sso_conn", c.Name, ConnectionView{C: c, Guide: GuideFor(c.Provider), Attempts: attempts,
		Notice: notice, Error: errMsg, Roles: strings.Join(roles, "\n"), DomainList: strings.Join(domains, ", ")})
}

func PageAdminSSOConn(rs *kit.Responder, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, ok := connFromURL(rs, svc, w, r)
		if !ok {
			return
		}
		notice := ""
		switch {
		case r.URL.Query().Get("created") != "":
			notice = "Connection created. Copy the values below into your IdP, then run a test."
		case r.URL.Query().Get("saved") != "":
			notice = "Saved."
		case r.URL.Query().Get("verified") != "":
			notice = "Domain verified."
		case r.URL.Query().Get("rotated") != "":
			notice = "A new SP key was created. Both keys are in the SP metadata until you finish the rotation."
		}
		renderConn(rs, svc, w, r, c, http.StatusOK, notice, "")
	}
}

func PageAdminSSOUpdate(rs *kit.Responder, svc *sso.Service, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, ok := connFromURL(rs, svc, w, r)
		if !ok {
			return
		}
		p, _ := kit.PrincipalFrom(r.Context())
		if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionSSOConfigure, "/admin/sso/"+c.ID.String()) {
			return
		}
		if err := readForm(r); err != nil {
			rs.Error(w, r, kit.ErrTooLarge)
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		if _, err := svc.Update(r.Context(), t, c.ID, formInput(r, false), kit.Who(r)); err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				renderConn(rs, svc, w, r, c, status, "", msg+detailText(err))
			}
			return
		}
		http.Redirect(w, r, "/admin/sso/"+c.ID.String()+"?saved=1", http.StatusSeeOther)
	}
}

func PageAdminSSOAction(rs *kit.Responder, svc *sso.Service, steps *stepup.Service, action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, ok := connFromURL(rs, svc, w, r)
		if !ok {
			return
		}
		p, _ := kit.PrincipalFrom(r.Context())
		back := "/admin/sso/" + c.ID.String()
		t, _ := kit.TenantFrom(r.Context())
		var err error
		switch action {
		case "verify":
			_, err = svc.VerifyDomain(r.Context(), t, r.PostFormValue("domain"), kit.Who(r))
			back += "?verified=1"
		case "rotate":
			if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionSSOConfigure, back) {
				return
			}
			_, err = svc.RotateKey(r.Context(), t, c.ID, kit.Who(r))
			back += "?rotated=1"
		case "finish-rotation":
			if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionSSOConfigure, back) {
				return
			}
			err = svc.DropPreviousKey(r.Context(), t, c.ID)
			back += "?saved=1"
		case "delete":
			if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionSSOConfigure, back) {
				return
			}
			err = svc.Delete(r.Context(), t, c.ID, kit.Who(r))
			back = "/admin/sso?deleted=1"
		}
		if err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				renderConn(rs, svc, w, r, c, status, "", msg+detailText(err))
			}
			return
		}
		http.Redirect(w, r, back, http.StatusSeeOther)
	}
}

// PageAdminSSOTest runs a real SP-initiated login in test mode: the IdP's answer is
// checked and shown, and no session is created.
func PageAdminSSOTest(rs *kit.Responder, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, ok := connFromURL(rs, svc, w, r)
		if !ok {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		st, err := svc.StartLogin(r.Context(), t, sso.StartInput{Slug: c.Slug, Purpose: sso.PurposeTest,
			ReturnTo: "/admin/sso/" + c.ID.String(), Browser: browserBinding(r)})
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		sendStart(w, r, st)
	}
}

// detailText adds an error's reason detail (metadata problems) to a form message.
func detailText(err error) string {
	if e := apperr.From(err); e.Kind != apperr.Internal {
		if reason, ok := e.Details["reason"].(string); ok && reason != "" {
			return " (" + reason + ")"
		}
		if f, ok := e.Details["field"].(string); ok {
			return " (" + f + ")"
		}
	}
	return ""
}
