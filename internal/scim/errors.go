package scim

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
)

// ErrorSchema is the SCIM error message's schema (RFC 7644 §3.12).
const ErrorSchema = "urn:ietf:params:scim:api:messages:2.0:Error"

// Error is a SCIM error: an HTTP status, a scimType where RFC 7644 defines one, and a
// sentence for the IdP's provisioning log.
type Error struct {
	Status   int
	SCIMType string
	Detail   string
}

func (e *Error) Error() string { return fmt.Sprintf("scim %d %s: %s", e.Status, e.SCIMType, e.Detail) }

// Body is the error in the SCIM error schema.
func (e *Error) Body() map[string]any {
	b := map[string]any{"schemas": []string{ErrorSchema}, "status": fmt.Sprint(e.Status), "detail": e.Detail}
	if e.SCIMType != "" {
		b["scimType"] = e.SCIMType
	}
	return b
}

func scimErr(status int, typ, format string, args ...any) *Error {
	return &Error{Status: status, SCIMType: typ, Detail: fmt.Sprintf(format, args...)}
}

func invalidValue(format string, args ...any) *Error {
	return scimErr(http.StatusBadRequest, "invalidValue", format, args...)
}

func invalidSyntax(format string, args ...any) *Error {
	return scimErr(http.StatusBadRequest, "invalidSyntax", format, args...)
}

func invalidFilter(format string, args ...any) *Error {
	return scimErr(http.StatusBadRequest, "invalidFilter", format, args...)
}

func invalidPath(format string, args ...any) *Error {
	return scimErr(http.StatusBadRequest, "invalidPath", format, args...)
}

func noTarget(format string, args ...any) *Error {
	return scimErr(http.StatusBadRequest, "noTarget", format, args...)
}

func mutability(format string, args ...any) *Error {
	return scimErr(http.StatusBadRequest, "mutability", format, args...)
}

func uniqueness(format string, args ...any) *Error {
	return scimErr(http.StatusConflict, "uniqueness", format, args...)
}

var (
	errNotFound       = &Error{Status: http.StatusNotFound, Detail: "Resource not found."}
	errPrecondition   = &Error{Status: http.StatusPreconditionFailed, Detail: "The resource changed: its version does not match If-Match."}
	errUnauthorized   = &Error{Status: http.StatusUnauthorized, Detail: "A valid directory bearer token is required."}
	errTooLarge       = &Error{Status: http.StatusRequestEntityTooLarge, Detail: "The request body is larger than 1 MiB."}
	errRateLimited    = &Error{Status: http.StatusTooManyRequests, Detail: "Too many requests for this directory; retry later."}
	errNotImplemented = &Error{Status: http.StatusNotImplemented, Detail: "Not supported."}
)

// AsError turns any error into a SCIM error: domain errors keep their meaning (a conflict
// is a 409, a refusal a 400/403), anything unexpected is a 500 without detail.
func AsError(err error) *Error {
	var se *Error
	if errors.As(err, &se) {
		return se
	}
	var ae *apperr.Error
	if errors.As(err, &ae) {
		switch ae.Kind {
		case apperr.Invalid:
			return invalidValue("%s", ae.Message)
		case apperr.NotFound:
			return errNotFound
		case apperr.Conflict:
			return &Error{Status: http.StatusConflict, Detail: ae.Message}
		case apperr.Forbidden:
			return &Error{Status: http.StatusForbidden, Detail: ae.Message}
		case apperr.RateLimited:
			return errRateLimited
		}
	}
	return &Error{Status: http.StatusInternalServerError, Detail: "Internal error."}
}

// Errors the HTTP layer answers before a domain method runs.
var (
	ErrUnauthorized error = errUnauthorized
	ErrNotFound     error = errNotFound
)

// SyntaxError is a 400 invalidSyntax.
func SyntaxError(detail string) error { return invalidSyntax("%s", detail) }
