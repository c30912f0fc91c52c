package httpapi

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
	"github.com/gatehouse-id/gatehouse/internal/web"
)

// statusOf is the one table from error kind to HTTP status.
var statusOf = map[apperr.Kind]int{
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

// responder writes JSON bodies and errors, or HTML error pages for browsers.
type responder struct {
	logger *slog.Logger
	pages  *web.Renderer
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
func (rs *responder) Error(w http.ResponseWriter, r *http.Request, err error) {
	e := apperr.From(err)
	status, ok := statusOf[e.Kind]
	if !ok {
		status = http.StatusInternalServerError
	}
	ri := Info(r.Context())
	details := e.Details
	if secs, ok := e.Details["retry_after_seconds"].(int); ok && e.Kind == apperr.RateLimited {
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	if e.Kind == apperr.Internal {
		rs.logger.ErrorContext(r.Context(), "internal error", "err", err, "request_id", ri.ID,
			"method", r.Method, "path", r.URL.Path)
		e = &apperr.Error{Kind: apperr.Internal, Code: "internal", Message: "Internal error."}
		details = map[string]any{"request_id": ri.ID}
	}
	if wantsHTML(r) {
		heading := http.StatusText(status)
		if e.Code == "tenant_not_found" {
			heading = "Not found"
		}
		if rerr := rs.pages.Render(w, status, "error", web.Page{Title: heading, RequestID: ri.ID,
			Data: map[string]string{"Heading": heading, "Message": e.Message, "Code": e.Code}}); rerr == nil {
			return
		}
	}
	rs.JSON(w, status, errorBody{Error: errorObject{Code: e.Code, Message: e.Message, Details: details}})
}

// JSON writes v with status.
func (rs *responder) JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

// wantsHTML is true for browser navigations outside the JSON API.
func wantsHTML(r *http.Request) bool {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		return false
	}
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "text/html") && !strings.HasPrefix(accept, "application/json")
}

// Errors of request decoding.
var (
	errTooLarge     = apperr.New(apperr.TooLarge, "request_too_large", "The request body is too large.")
	errInvalidJSON  = apperr.New(apperr.Invalid, "invalid_json", "The request body is not valid JSON for this endpoint.")
	errContentType  = apperr.New(apperr.UnsupportedMedia, "unsupported_media_type", "Send the body as application/json.")
	errInvalidUTF8  = apperr.New(apperr.Invalid, "invalid_json", "The request body is not valid UTF-8.")
	errUnauthorized = apperr.New(apperr.Unauthenticated, "unauthenticated", "Authentication is required.")
)

// decodeJSON reads exactly one JSON object into dst, refusing unknown fields, trailing data,
// wrong types and bodies over the limit set by the body-limit middleware.
func decodeJSON(r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return errContentType
		}
	}
	body, err := io.ReadAll(r.Body)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errTooLarge
	}
	if err != nil {
		return errInvalidJSON
	}
	if !utf8.Valid(body) {
		return errInvalidUTF8
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

// jsonRaw keeps a body raw for a decoder that owns its own strict rules.
type jsonRaw = json.RawMessage

var errUnexpectedBody = apperr.New(apperr.Invalid, "invalid_json", "This endpoint takes no request body.")

// noBody refuses a request body on endpoints that take none, so a client that sends one
// by mistake learns it instead of having it silently ignored.
func noBody(rs *responder) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var b [1]byte
			n, err := r.Body.Read(b[:])
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				rs.Error(w, r, errTooLarge)
				return
			}
			if n > 0 || r.ContentLength > 0 {
				rs.Error(w, r, errUnexpectedBody)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
