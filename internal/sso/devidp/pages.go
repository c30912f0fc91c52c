package devidp

import (
	"html/template"
	"net/http"
	"strings"
)

// The dev IdP's own pages: a front page saying what it is and who can sign in, a login
// form that says the same (and keeps itself, with the reason, after a wrong entry), and an
// error page with the way back instead of a bare "Bad Request".

const pageStyle = `<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#1b1f24}` +
	`h1{font-size:1.4rem}label{display:block;font-weight:600;margin-top:.75rem}input[type=text],input[type=password]{font:inherit;width:100%;padding:.5rem;box-sizing:border-box}` +
	`button,input[type=submit]{font:inherit;font-weight:600;margin-top:1rem;padding:.55rem 1rem}.error{background:#fdecec;color:#8a1c1c;padding:.5rem .75rem;border-radius:6px}` +
	`table{border-collapse:collapse}td,th{text-align:left;padding:.2rem .8rem .2rem 0}.hint{color:#5b6470;font-size:.9rem}code{background:#eef0f3;padding:0 .25rem}</style>`

const usersTable = `<table><tr><th>Username</th><th>Email</th><th>Groups</th></tr>` +
	`{{range .Employees}}<tr><td><code>{{.Name}}</code></td><td>{{.Email}}</td><td>{{join .Groups ", "}}</td></tr>{{end}}</table>` +
	`<p class="hint">Password for all: <code>{{.Password}}</code>. "Admins" maps to the Gatehouse admin role.</p>`

var funcs = template.FuncMap{"join": strings.Join}

// loginFormTemplate is the login form samlidp shows (with .Toast, .URL, .SAMLRequest and
// .RelayState), the demo employees written in.
func loginFormTemplate() (*template.Template, error) {
	users, err := renderUsers()
	if err != nil {
		return nil, err
	}
	return template.New("login").Funcs(template.FuncMap{"users": func() template.HTML { return users }}).Parse(
		`<!doctype html><html lang="en"><head><meta charset="utf-8">` +
			`<title>Sign in · Gatehouse dev IdP</title>` + pageStyle + `</head><body>` +
			`<h1>Gatehouse dev IdP</h1><p>The demo identity provider of <code>gatehouse dev</code> (never for production). Sign in as one of its employees.</p>` +
			`{{with .Toast}}<p class="error" role="alert" id="idp-error">{{.}}. Use a username or email address from the table below and the password under it.</p>{{end}}` +
			`<form method="post" action="{{.URL}}">` +
			`<label for="user">Username or email</label><input type="text" id="user" name="user" autocomplete="username" autofocus required>` +
			`<label for="password">Password</label><input type="password" id="password" name="password" autocomplete="current-password" required>` +
			`<input type="hidden" name="SAMLRequest" value="{{.SAMLRequest}}"><input type="hidden" name="RelayState" value="{{.RelayState}}">` +
			`<input type="submit" value="Sign in"></form>{{users}}</body></html>`)
}

var usersTemplate = template.Must(template.New("users").Funcs(funcs).Parse(usersTable))

func renderUsers() (template.HTML, error) {
	var b strings.Builder
	if err := usersTemplate.Execute(&b, struct {
		Employees []Employee
		Password  string
	}{Employees, Password}); err != nil {
		return "", err
	}
	return template.HTML(b.String()), nil //nolint:gosec // rendered by html/template above
}

var frontPage = template.Must(template.New("front").Funcs(funcs).Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8">` +
	`<title>Gatehouse dev IdP</title>` + pageStyle + `</head><body>` +
	`<h1>Gatehouse dev IdP</h1><p>The demo SAML identity provider of <code>gatehouse dev</code> (never for production).</p>` +
	`<p>You do not sign in here directly: start at Gatehouse, type one of these email addresses and press <em>Sign in with single sign-on</em>; ` +
	`Gatehouse sends you here to sign in, then back.</p>` +
	`{{with .Start}}<p><a href="{{.}}" id="start">Sign in at Gatehouse</a></p>{{end}}` + usersTable +
	`<p class="hint">SAML metadata: <a href="{{.Metadata}}">{{.Metadata}}</a></p></body></html>`))

var errorPage = template.Must(template.New("error").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8">` +
	`<title>Sign-in request not accepted · Gatehouse dev IdP</title>` + pageStyle + `</head><body>` +
	`<h1>This sign-in request cannot be used</h1>` +
	`<p role="alert" id="idp-error">The request from Gatehouse has expired (it is valid for 90 seconds) or is not valid. Nothing is wrong with your account: start again at Gatehouse.</p>` +
	`{{with .Start}}<p><a href="{{.}}" id="start">Start again at Gatehouse</a></p>{{else}}<p>Go back to the Gatehouse sign-in page and press <em>Sign in with single sign-on</em> again.</p>{{end}}` +
	`</body></html>`))

// front serves the front page.
func (i *IdP) front(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = frontPage.Execute(w, struct {
		Start, Metadata, Password string
		Employees                 []Employee
	}{Start: i.startURL(), Metadata: i.MetadataURL(), Password: Password, Employees: Employees})
}

// onError answers a request the IdP cannot take (such as an expired AuthnRequest posted
// again from the login form) with a page that leads back.
func (i *IdP) onError(w http.ResponseWriter, _ *http.Request, status int, _ error) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = errorPage.Execute(w, struct{ Start string }{Start: i.startURL()})
}

// usernameFor maps what was typed into the login form's user field to an employee's
// username: the username itself, or the employee's email address (any case, spaces
// around it ignored).
func usernameFor(typed string) string {
	typed = strings.TrimSpace(typed)
	for _, e := range Employees {
		if strings.EqualFold(typed, e.Email) || strings.EqualFold(typed, e.Name) {
			return e.Name
		}
	}
	return typed
}
