// Package scimhttp is the HTTP side of SCIM 2.0 provisioning: the /scim/v2 protocol on
// every tenant host (authenticated by a directory token, never a session) and the admin
// API for directories. The domain is internal/scim.
package scimhttp

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/scim"
)

// MaxBody is the largest SCIM request body (a group push of thousands of members).
const MaxBody = 1 << 20

// ContentType is what SCIM answers with.
const ContentType = "application/scim+json"

// result is what a handled request answers.
type result struct {
	status   int
	body     any
	etag     string
	location string
	userID   uuid.UUID
	resource string
	err      error // the cause of a 500, logged (never sent)
}

// Protocol serves /scim/v2/* for the request's tenant.
func Protocol(svc *scim.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		t, _ := kit.TenantFrom(r.Context())
		bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="scim"`)
			writeError(w, scim.AsError(scim.ErrUnauthorized))
			return
		}
		c, err := svc.Authenticate(r.Context(), t, bearer, kit.Who(r))
		if e := scim.AsError(err); err != nil && e.Status >= 500 {
			svc.ReportInternal(r.Context(), err, r.Method, r.URL.Path)
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="scim", error="invalid_token"`)
			writeError(w, scim.AsError(err))
			return
		}
		res := handle(svc, c, w, r)
		if res.err != nil {
			svc.ReportInternal(r.Context(), res.err, r.Method, r.URL.Path)
		}
		if res.status >= 400 {
			e, _ := res.body.(*scim.Error)
			if e == nil {
				e = &scim.Error{Status: res.status}
			}
			writeError(w, e)
		} else {
			writeJSON(w, res)
		}
		typ := ""
		if e, ok := res.body.(*scim.Error); ok {
			typ = e.SCIMType
		}
		svc.Log(r.Context(), c, scim.Logged{Method: r.Method, Path: r.URL.Path, Resource: res.resource, Status: res.status,
			SCIMType: typ, Latency: time.Since(start), UserID: res.userID})
	}
}

func fail(err error, resource string) result {
	e := scim.AsError(err)
	res := result{status: e.Status, body: e, resource: resource}
	if e.Status >= 500 {
		res.err = err
	}
	return res
}

func handle(svc *scim.Service, c scim.Caller, w http.ResponseWriter, r *http.Request) result {
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, scim.BasePath), "/")
	parts := strings.Split(rest, "/")
	resource := parts[0]
	if len(parts) > 2 || resource == "" {
		return fail(scim.ErrNotFound, "other")
	}
	if retry, err := svc.Allow(r.Context(), c); err != nil {
		if retry > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds())+1))
		}
		return fail(err, resource)
	}
	var body []byte
	if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || (mt != ContentType && mt != "application/json") {
				return result{status: http.StatusUnsupportedMediaType, resource: resource,
					body: &scim.Error{Status: http.StatusUnsupportedMediaType, Detail: "Send application/scim+json."}}
			}
		}
		b, err := io.ReadAll(r.Body)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return result{status: http.StatusRequestEntityTooLarge, resource: resource,
				body: &scim.Error{Status: http.StatusRequestEntityTooLarge, Detail: "The request body is larger than 1 MiB."}}
		}
		if err != nil {
			return fail(scim.SyntaxError("The body could not be read."), resource)
		}
		body = b
	}
	ctx := r.Context()
	ifMatch := r.Header.Get("If-Match")
	var id uuid.UUID
	if len(parts) == 2 {
		var err error
		if id, err = uuid.Parse(parts[1]); err != nil && (resource == "Users" || resource == "Groups") {
			return fail(scim.ErrNotFound, resource)
		}
	}
	one := func(v scim.Resource, err error, status int) result {
		if err != nil {
			return fail(err, resource)
		}
		res := result{status: status, body: v, resource: resource, etag: version(v)}
		if resource == "Users" {
			if s, ok := v["id"].(string); ok {
				res.userID, _ = uuid.Parse(s)
			}
		}
		if status == http.StatusCreated {
			res.location = location(v)
		}
		return res
	}
	switch {
	case resource == "ServiceProviderConfig" && len(parts) == 1 && r.Method == http.MethodGet:
		return result{status: 200, body: svc.ServiceProviderConfig(c), resource: resource}
	case resource == "ResourceTypes" && r.Method == http.MethodGet:
		return listOrOne(svc.ResourceTypes(c), parts, resource)
	case resource == "Schemas" && r.Method == http.MethodGet:
		return listOrOne(svc.Schemas(c), parts, resource)
	case resource == "Users" && len(parts) == 1:
		switch r.Method {
		case http.MethodGet:
			lq, err := scim.ParseListQuery(r.URL.Query())
			if err != nil {
				return fail(err, resource)
			}
			lr, err := svc.ListUsers(ctx, c, lq)
			if err != nil {
				return fail(err, resource)
			}
			return result{status: 200, body: lr, resource: resource}
		case http.MethodPost:
			v, err := svc.CreateUser(ctx, c, body)
			return one(v, err, http.StatusCreated)
		}
	case resource == "Users":
		switch r.Method {
		case http.MethodGet:
			v, err := svc.GetUser(ctx, c, id)
			if err == nil && notModified(r, v) {
				return result{status: http.StatusNotModified, resource: resource, etag: version(v), userID: id}
			}
			if err == nil {
				q := r.URL.Query()
				v = scim.Project(v, split(q.Get("attributes")), split(q.Get("excludedAttributes")))
			}
			return one(v, err, 200)
		case http.MethodPut:
			v, err := svc.ReplaceUser(ctx, c, id, body, ifMatch)
			return withUser(one(v, err, 200), id)
		case http.MethodPatch:
			ops, err := scim.DecodePatch(body)
			if err != nil {
				return withUser(fail(err, resource), id)
			}
			v, err := svc.PatchUser(ctx, c, id, ops, ifMatch)
			return withUser(one(v, err, 200), id)
		case http.MethodDelete:
			if err := svc.DeleteUser(ctx, c, id, ifMatch); err != nil {
				return withUser(fail(err, resource), id)
			}
			return result{status: http.StatusNoContent, resource: resource, userID: id}
		}
	case resource == "Groups" && len(parts) == 1:
		switch r.Method {
		case http.MethodGet:
			lq, err := scim.ParseListQuery(r.URL.Query())
			if err != nil {
				return fail(err, resource)
			}
			lr, err := svc.ListGroups(ctx, c, lq)
			if err != nil {
				return fail(err, resource)
			}
			return result{status: 200, body: lr, resource: resource}
		case http.MethodPost:
			v, err := svc.CreateGroup(ctx, c, body)
			return one(v, err, http.StatusCreated)
		}
	case resource == "Groups":
		switch r.Method {
		case http.MethodGet:
			q := r.URL.Query()
			attrs, excl := split(q.Get("attributes")), split(q.Get("excludedAttributes"))
			v, err := svc.GetGroup(ctx, c, id, scim.WantsMembers(attrs, excl))
			if err == nil && notModified(r, v) {
				return result{status: http.StatusNotModified, resource: resource, etag: version(v)}
			}
			if err == nil {
				v = scim.Project(v, attrs, excl)
			}
			return one(v, err, 200)
		case http.MethodPut:
			v, err := svc.ReplaceGroup(ctx, c, id, body, ifMatch)
			return one(v, err, 200)
		case http.MethodPatch:
			ops, err := scim.DecodePatch(body)
			if err != nil {
				return fail(err, resource)
			}
			v, err := svc.PatchGroup(ctx, c, id, ops, ifMatch)
			return one(v, err, 200)
		case http.MethodDelete:
			if err := svc.DeleteGroup(ctx, c, id, ifMatch); err != nil {
				return fail(err, resource)
			}
			return result{status: http.StatusNoContent, resource: resource}
		}
	case resource == "Bulk" || resource == "Me" || resource == ".search":
		return result{status: http.StatusNotImplemented, resource: resource,
			body: &scim.Error{Status: http.StatusNotImplemented, Detail: "Not supported by this server."}}
	default:
		return fail(scim.ErrNotFound, "other")
	}
	return result{status: http.StatusMethodNotAllowed, resource: resource,
		body: &scim.Error{Status: http.StatusMethodNotAllowed, Detail: "Method not allowed here."}}
}

func withUser(res result, id uuid.UUID) result {
	res.userID = id
	return res
}

func split(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

func listOrOne(items []scim.Resource, parts []string, resource string) result {
	if len(parts) == 2 {
		for _, it := range items {
			if id, _ := it["id"].(string); id == parts[1] {
				return result{status: 200, body: it, resource: resource}
			}
		}
		return fail(scim.ErrNotFound, resource)
	}
	return result{status: 200, resource: resource, body: scim.ListResponse{Schemas: []string{scim.ListSchema}, TotalResults: len(items),
		StartIndex: 1, ItemsPerPage: len(items), Resources: items}}
}

func meta(v scim.Resource) map[string]any {
	m, _ := v["meta"].(map[string]any)
	return m
}

func version(v scim.Resource) string {
	s, _ := meta(v)["version"].(string)
	return s
}

func location(v scim.Resource) string {
	s, _ := meta(v)["location"].(string)
	return s
}

func notModified(r *http.Request, v scim.Resource) bool {
	inm := r.Header.Get("If-None-Match")
	return inm != "" && version(v) != "" && strings.TrimPrefix(inm, "W/") == strings.TrimPrefix(version(v), "W/")
}

func writeJSON(w http.ResponseWriter, res result) {
	if res.etag != "" {
		w.Header().Set("ETag", res.etag)
	}
	if res.location != "" {
		w.Header().Set("Location", res.location)
	}
	if res.body == nil || res.status == http.StatusNoContent || res.status == http.StatusNotModified {
		w.WriteHeader(res.status)
		return
	}
	w.Header().Set("Content-Type", ContentType)
	w.WriteHeader(res.status)
	_ = json.NewEncoder(w).Encode(res.body)
}

func writeError(w http.ResponseWriter, e *scim.Error) {
	w.Header().Set("Content-Type", ContentType)
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(e.Body())
}
