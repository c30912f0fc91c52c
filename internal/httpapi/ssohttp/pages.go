package ssohttp

import (
	"io"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/sso"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

func PageAdminSSO(rs *kit.Responder, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		list, err := svc.List(r.Context(), t)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		g := GuideFor(r.URL.Query().Get("provider"))
		if g.OIDC() {
			rs.AdminPage(w, r, http.StatusOK, "admin_sso_add_oidc", "Single sign-on", oidcAddView(svc, t, g, r, FieldError{}))
			return
		}
		rs.AdminPage(w, r, http.StatusOK, "admin_sso", "Single sign-on", ConnectionsView{Connections: list, Guides: Guides,
			Guide: g, Name: g.Title, Deleted: r.URL.Query().Get("deleted") != ""})
	}
}

// formInput reads the connection forms; missing checkboxes are false.
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
	// OpenID Connect (admin_sso_add_oidc, admin_sso_oidc): a blank secret keeps the stored one.
	in.Protocol, in.Issuer, in.ClientID = str("protocol"), str("issuer"), str("client_id")
	in.HostedDomain, in.EntraTenant = str("hosted_domain"), str("entra_tenant_id")
	if sec := strings.TrimSpace(r.PostFormValue("client_secret")); sec != "" {
		in.ClientSecret = &sec
	}
	if _, ok := r.PostForm["scopes"]; ok {
		sc := strings.Fields(strings.ReplaceAll(r.PostFormValue("scopes"), ",", " "))
		if sc == nil {
			sc = []string{}
		}
		in.Scopes = &sc
	}
	if _, ok := r.PostForm["domains"]; ok {
		ds := strings.FieldsFunc(r.PostFormValue("domains"), func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == '\r' })
		if ds == nil {
			ds = []string{}
		}
		in.Domains = &ds
	}
	if r.PostFormValue("enable") != "" {
		in.Enabled = flag("enable")
	}
	if _, ok := r.PostForm["settings"]; ok {
		in.JIT, in.Enforce, in.AllowIdPInitiated, in.Enabled = flag("jit"), flag("enforce"), flag("allow_idp_initiated"), flag("enabled")
		m := sso.AttributeMapping{Email: r.PostFormValue("map_email"), FirstName: r.PostFormValue("map_first_name"),
			LastName: r.PostFormValue("map_last_name"), Groups: r.PostFormValue("map_groups")}
		in.AttributeMapping = &m
		in.RoleMapping = roleLines(r.PostFormValue("role_mapping"))
	}
	return in
}

// roleLines reads "group=role" lines.
func roleLines(text string) *map[string]string {
	roles := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if g, role, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			roles[strings.TrimSpace(g)] = strings.TrimSpace(role)
		}
	}
	return &roles
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

// PageAdminSSOCreate is step 1 of adding a connection: a name (and optionally the URL
// identifier) makes a draft whose SP values the next page shows at once.
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
		in := formInput(r, true)
		if r.PostFormValue("protocol") == sso.ProtocolOIDC {
			off := false
			in.Enabled = &off // tested first (step 3), then turned on, as a SAML draft
		}
		c, err := svc.Create(r.Context(), t, in, kit.Who(r))
		if err != nil && r.PostFormValue("protocol") == sso.ProtocolOIDC {
			if _, status, ok := rs.FormError(w, r, err); ok {
				g := GuideFor("oidc-" + r.PostFormValue("provider"))
				rs.AdminPage(w, r, status, "admin_sso_add_oidc", "Single sign-on", oidcAddView(svc, t, g, r,
					fieldError(err, "name", "slug", "issuer", "client_id", "client_secret", "hosted_domain", "entra_tenant_id", "scopes")))
			}
			return
		}
		if err != nil {
			if _, status, ok := rs.FormError(w, r, err); ok {
				list, _ := svc.List(r.Context(), t)
				rs.AdminPage(w, r, status, "admin_sso", "Single sign-on", ConnectionsView{Connections: list, Guides: Guides,
					Guide: GuideFor(r.PostFormValue("provider")), Err: fieldError(err, "name", "slug"),
					Name: r.PostFormValue("name"), Slug: r.PostFormValue("slug")})
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

// connView is the connection page's view of c; on a form error, what was typed in that
// form stays in it.
func connView(c sso.Connection, r *http.Request, form string) ConnectionView {
	var roles []string
	for g, role := range c.RoleMapping {
		roles = append(roles, g+"="+role)
	}
	domains := make([]string, 0, len(c.Domains))
	for _, d := range c.Domains {
		domains = append(domains, d.DomainUnicode)
	}
	v := ConnectionView{C: c, Guide: GuideOf(c), Steps: StepsFor(GuideOf(c), c), Form: form,
		Roles: strings.Join(roles, "\n"), DomainList: strings.Join(domains, ", ")}
	switch form {
	case "settings":
		f := r.PostFormValue
		v.C.Name, v.C.DefaultRedirect, v.C.NameIDFormat = f("name"), f("default_redirect"), f("name_id_format")
		v.C.Enabled, v.C.JIT, v.C.Enforce, v.C.AllowIdPInitiated = f("enabled") != "", f("jit") != "", f("enforce") != "", f("allow_idp_initiated") != ""
		v.C.AttributeMapping = sso.AttributeMapping{Email: f("map_email"), FirstName: f("map_first_name"), LastName: f("map_last_name"), Groups: f("map_groups")}
		v.Roles, v.DomainList = f("role_mapping"), f("domains")
	case "metadata":
		v.MetadataURL, v.EntityID = r.PostFormValue("idp_metadata_url"), r.PostFormValue("idp_entity_id")
		if x := r.PostFormValue("idp_metadata_xml"); len(x) <= sso.MaxMetadataBytes {
			v.MetadataXML = x
		}
	}
	return v
}

func renderConn(rs *kit.Responder, svc *sso.Service, w http.ResponseWriter, r *http.Request, v ConnectionView, status int) {
	t, _ := kit.TenantFrom(r.Context())
	attempts, err := svc.Attempts(r.Context(), t, v.C.ID, 20)
	if err != nil {
		rs.Error(w, r, err)
		return
	}
	v.Attempts = attempts
	page := "admin_sso_conn"
	if v.C.Protocol == sso.ProtocolOIDC {
		page = "admin_sso_oidc"
	}
	rs.AdminPage(w, r, status, page, v.C.Name, v)
}

// notices are the connection page's messages after a change (?key=1).
var notices = []struct{ key, text string }{
	{"created", "Connection created. Give the values of step 1 to your IdP, then run Test connection."},
	{"metadata", "IdP metadata saved. Run Test connection (step 3), then turn sign-in on."},
	{"enabled", "Sign-in through this connection is on."},
	{"saved", "Saved."},
	{"verified", "Domain verified."},
	{"rotated", "A new SP key was created. Both keys are in the SP metadata until you finish the rotation."},
}

func PageAdminSSOConn(rs *kit.Responder, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, ok := connFromURL(rs, svc, w, r)
		if !ok {
			return
		}
		v := connView(c, r, "")
		for _, n := range notices {
			if r.URL.Query().Get(n.key) != "" {
				v.Notice = n.text
				break
			}
		}
		if v.Notice == notices[0].text && v.Draft() {
			v.Notice = "Draft created. Give the values of step 1 to " + v.Guide.Title + ", then add its metadata in step 2."
		}
		renderConn(rs, svc, w, r, v, http.StatusOK)
	}
}

// settingsFields are the inputs of the settings form (field errors land beside them).
var settingsFields = []string{"name", "domains", "enabled", "default_redirect", "name_id_format", "attribute_mapping", "role_mapping"}

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
		form, fields, done := "settings", settingsFields, "?saved=1"
		switch {
		case r.PostFormValue("step") == "metadata":
			form, fields, done = "metadata", []string{"metadata"}, "?metadata=1"
		case r.PostFormValue("step") == "oidc":
			form, fields, done = "oidc", []string{"issuer", "client_id", "client_secret", "scopes", "hosted_domain", "entra_tenant_id"}, "?saved=1"
		case r.PostFormValue("enable") != "":
			form, fields, done = "", nil, "?enabled=1"
		}
		in := formInput(r, false)
		if c.Protocol == sso.ProtocolOIDC {
			in.AllowIdPInitiated, in.NameIDFormat = nil, nil // SAML-only switches
		}
		if form == "metadata" && in.MetadataXML == nil && (in.MetadataURL == nil || *in.MetadataURL == "") {
			v := connView(c, r, form)
			v.Err = FieldError{Field: "metadata", Message: "Give the IdP's metadata URL, upload its metadata file, or paste the XML."}
			renderConn(rs, svc, w, r, v, http.StatusBadRequest)
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		if _, err := svc.Update(r.Context(), t, c.ID, in, kit.Who(r)); err != nil {
			if _, status, ok := rs.FormError(w, r, err); ok {
				v := connView(c, r, form)
				v.Err = fieldError(err, fields...)
				renderConn(rs, svc, w, r, v, status)
			}
			return
		}
		http.Redirect(w, r, "/admin/sso/"+c.ID.String()+done, http.StatusSeeOther)
	}
}

// PageAdminSSODelete is the confirmation step before a connection is deleted.
func PageAdminSSODelete(rs *kit.Responder, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, ok := connFromURL(rs, svc, w, r)
		if !ok {
			return
		}
		rs.AdminPage(w, r, http.StatusOK, "admin_sso_delete", "Delete "+c.Name, DeleteView{C: c})
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
			if strings.TrimSpace(r.PostFormValue("confirm")) != c.Slug {
				rs.AdminPage(w, r, http.StatusBadRequest, "admin_sso_delete", "Delete "+c.Name, DeleteView{C: c,
					Err: FieldError{Field: "confirm", Message: "Type the identifier " + c.Slug + " exactly to confirm."}})
				return
			}
			if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionSSOConfigure, back+"/delete") {
				return
			}
			err = svc.Delete(r.Context(), t, c.ID, kit.Who(r))
			back = "/admin/sso?deleted=1"
		}
		if err != nil {
			if _, status, ok := rs.FormError(w, r, err); ok {
				v := connView(c, r, "")
				v.Err = fieldError(err)
				renderConn(rs, svc, w, r, v, status)
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

// oidcAddView is the OIDC add page of guide g: its steps with the redirect URI of the
// identifier typed (or the guide's default), and what was typed.
func oidcAddView(svc *sso.Service, t tenant.Tenant, g Guide, r *http.Request, fe FieldError) OIDCAddView {
	f := r.FormValue // the form's POST, or ?slug= of "Show the redirect URI for this identifier"
	v := OIDCAddView{Guides: Guides, Guide: g, Err: fe, Name: f("name"), Slug: f("slug"), Issuer: f("issuer"), ClientID: f("client_id"),
		HostedDomain: f("hosted_domain"), EntraTenant: f("entra_tenant_id"), Scopes: f("scopes")}
	if v.Name == "" {
		v.Name = strings.TrimSuffix(strings.TrimSuffix(g.Title, " (OpenID Connect)"), " (OIDC app)")
	}
	if v.Slug == "" {
		v.Slug = g.DefaultSlug
	}
	if v.Issuer == "" {
		v.Issuer = g.Issuer
	}
	if v.Scopes == "" {
		v.Scopes = "openid email profile"
	}
	preview := sso.Connection{RedirectURI: svc.RedirectURI(t, v.Slug), PostLogoutURI: svc.PostLogoutURI(t)}
	v.RedirectURI, v.PostLogoutURI, v.Steps = preview.RedirectURI, preview.PostLogoutURI, StepsFor(g, preview)
	return v
}

// fieldError places an error beside the input it is about, when that input is one of
// fields, in words for people; otherwise it is the whole form's.
func fieldError(err error, fields ...string) FieldError {
	e := apperr.From(err)
	reason, _ := e.Details["reason"].(string)
	field, _ := e.Details["field"].(string)
	msg := e.Message
	switch e.Code {
	case "oidc_discovery_failed":
		field, msg = "issuer", "The issuer's discovery document could not be fetched or read"
		if reason != "" {
			msg += ": " + reason
		}
		msg += "."
	case "invalid_connection":
		if reason != "" {
			msg = sentence(reason)
		}
		if field == "idp_sso_url" || field == "idp_metadata_xml" {
			field = "metadata"
		}
	case "invalid_metadata", "metadata_fetch_failed":
		field = "metadata"
		if reason != "" {
			msg = strings.TrimSuffix(e.Message, ".") + ": " + strings.TrimSuffix(reason, ".") + "."
		}
	case "weak_idp_key":
		field = "metadata"
	case "slug_taken":
		field = "slug"
	case "idp_metadata_missing":
		field = "enabled"
	}
	for _, f := range fields {
		if f == field {
			return FieldError{Field: field, Message: msg}
		}
	}
	return FieldError{Message: msg}
}

// sentence is a lower-case reason as a sentence.
func sentence(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}
