package kit

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/internal/web"
)

// StatusOf is the one table from error kind to HTTP status.
var StatusOf = map[apperr.Kind]int{
	apperr.Internal:         http.StatusInternalServerError,
	apperr.Invalid:          http.StatusBadRequest,
	apperr.NotFound:         http.StatusNotFound,
	apperr.Conflict:         http.StatusConflict,
	apperr.Unauthenticated:  http.StatusUnauthorized,
	apperr.Forbidden:        http.StatusForbidden,
	apperr.StepUpRequired:   http.StatusForbidden,
	apperr.RateLimited:      http.StatusTooManyRequests,
	apperr.TooLarge:         http.StatusRequestEntityTooLarge,
	apperr.Unavailable:      http.StatusServiceUnavailable,
	apperr.UnsupportedMedia: http.StatusUnsupportedMediaType,
	apperr.MethodNotAllowed: http.StatusMethodNotAllowed,
}

// Responder writes JSON bodies and errors, or HTML pages and error pages for browsers.
type Responder struct {
	logger *slog.Logger
	pages  *web.Renderer
}

// NewResponder returns the responder of every handler. Both arguments are required.
func NewResponder(logger *slog.Logger, pages *web.Renderer) (*Responder, error) {
	if logger == nil || pages == nil {
		return nil, errors.New("kit: a logger and a page renderer are required")
	}
	return &Responder{logger: logger, pages: pages}, nil
}

// Logger is the responder's logger, for handlers that carry on after an error worth a
// line (such as a single logout request that could not be made).
func (rs *Responder) Logger() *slog.Logger { return rs.logger }

// ErrorView is the view of the shared error page.
type ErrorView struct {
	Heading, Message, Code string
}

type errorBody struct {
	Error errorObject `json:"error"`
}

type errorObject struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

// Error answers err. Only Internal errors are logged with their cause, and they reach the
// client as code "internal" with the request id and nothing else.
func (rs *Responder) Error(w http.ResponseWriter, r *http.Request, err error) {
	e := apperr.From(err)
	status, ok := StatusOf[e.Kind]
	if !ok {
		status = http.StatusInternalServerError
	}
	ri := Info(r.Context())
	details := e.Details
	if secs, ok := ratelimit.RetryAfter(err); ok {
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	if e.Kind == apperr.Internal {
		rs.logger.ErrorContext(r.Context(), "internal error", "err", err, "request_id", ri.ID,
			"method", r.Method, "path", r.URL.Path)
		e = &apperr.Error{Kind: apperr.Internal, Code: "internal", Message: "Internal error."}
		details = map[string]any{"request_id": ri.ID}
	}
	if WantsHTML(r) {
		heading := http.StatusText(status)
		if e.Code == "tenant_not_found" {
			heading = "Not found"
		}
		if rerr := rs.pages.Render(w, status, "error", web.Page{Title: heading, RequestID: ri.ID,
			Data: ErrorView{Heading: heading, Message: e.Message, Code: e.Code}}); rerr == nil {
			return
		}
	}
	rs.JSON(w, status, errorBody{Error: errorObject{Code: e.Code, Message: e.Message, Details: details}})
}

// JSON writes v with status.
func (rs *Responder) JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

// WantsHTML is true for browser navigations outside the JSON API.
func WantsHTML(r *http.Request) bool {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		return false
	}
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "text/html") && !strings.HasPrefix(accept, "application/json")
}

// Errors of request decoding.
var (
	ErrTooLarge     = apperr.New(apperr.TooLarge, "request_too_large", "The request body is too large.")
	errInvalidJSON  = apperr.New(apperr.Invalid, "invalid_json", "The request body is not valid JSON for this endpoint.")
	errContentType  = apperr.New(apperr.UnsupportedMedia, "unsupported_media_type", "Send the body as application/json.")
	errInvalidUTF8  = apperr.New(apperr.Invalid, "invalid_json", "The request body is not valid UTF-8.")
	ErrUnauthorized = apperr.New(apperr.Unauthenticated, "unauthenticated", "Authentication is required.")
)

// DecodeJSON reads exactly one JSON object into dst, refusing unknown fields, trailing data,
// wrong types and bodies over the limit set by the body-limit middleware.
func DecodeJSON(r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return errContentType
		}
	}
	body, err := io.ReadAll(r.Body)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return ErrTooLarge
	}
	if err != nil {
		return errInvalidJSON
	}
	if !utf8.Valid(body) {
		return errInvalidUTF8
	}
	if err := strictJSON(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		e := errInvalidJSON
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			return e.WithDetails(map[string]any{"field": ute.Field})
		}
		return e
	}
	if dec.More() {
		return errInvalidJSON
	}
	return nil
}

var (
	errNotObject    = apperr.New(apperr.Invalid, "invalid_json", "The request body must be a JSON object.")
	errDuplicateKey = apperr.New(apperr.Invalid, "invalid_json", "The request body names a field twice.")
)

// strictJSON refuses what encoding/json would quietly accept: a body that is not an
// object (null would decode into the zero value, as if every field were empty) and an
// object that names a key twice, at any depth (the last would win, and a proxy or
// another parser in front of us might read the first).
func strictJSON(body []byte) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return errNotObject
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	return checkValue(dec, 0)
}

// maxJSONDepth bounds nesting: no body of ours nests deeper than a few levels.
const maxJSONDepth = 32

// checkValue reads one JSON value from dec, refusing duplicate keys in its objects.
func checkValue(dec *json.Decoder, depth int) error {
	if depth > maxJSONDepth {
		return errInvalidJSON
	}
	tok, err := dec.Token()
	if err != nil {
		return errInvalidJSON
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return errInvalidJSON
			}
			key, ok := k.(string)
			if !ok {
				return errInvalidJSON
			}
			if seen[key] {
				return errDuplicateKey.WithDetails(map[string]any{"field": key})
			}
			seen[key] = true
			if err := checkValue(dec, depth+1); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return errInvalidJSON
		}
	case json.Delim('['):
		for dec.More() {
			if err := checkValue(dec, depth+1); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return errInvalidJSON
		}
	}
	return nil
}

// JSONRaw keeps a body raw for a decoder that owns its own strict rules.
type JSONRaw = json.RawMessage

var errUnexpectedBody = apperr.New(apperr.Invalid, "invalid_json", "This endpoint takes no request body.")

// maxEmptyBody bounds what NoBody reads to decide that a body says nothing.
const maxEmptyBody = 1 << 10

// NoBody refuses a request body on endpoints that take none, so a client that sends one
// by mistake learns it instead of having it silently ignored. An empty body, `{}` and
// `null` say nothing and are accepted: SDKs and HTTP clients send them for a POST without
// fields (../shared/API.md, Conventions).
func NoBody(rs *Responder) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(io.LimitReader(r.Body, maxEmptyBody+1))
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				rs.Error(w, r, ErrTooLarge)
				return
			}
			if err != nil || len(body) > maxEmptyBody || !saysNothing(body) {
				rs.Error(w, r, errUnexpectedBody)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// saysNothing reports whether body is empty, null or an empty JSON object.
func saysNothing(body []byte) bool {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || string(body) == "null" {
		return true
	}
	var m map[string]json.RawMessage
	return body[0] == '{' && json.Unmarshal(body, &m) == nil && len(m) == 0
}
