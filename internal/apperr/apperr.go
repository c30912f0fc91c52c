// Package apperr is Gatehouse's one error type: a Kind that decides the HTTP status, a stable
// snake_case Code that clients rely on, a human message and optional details. Errors of kind
// Internal carry the cause for the log and never show it to the client.
package apperr

import (
	"errors"
	"fmt"
)

// Kind classifies an error. The list is append-only: clients and the status table rely on it.
type Kind int

const (
	Internal Kind = iota
	Invalid
	NotFound
	Conflict
	Unauthenticated
	Forbidden
	StepUpRequired
	RateLimited
	TooLarge
	Unavailable
	UnsupportedMedia
	MethodNotAllowed
)

var kindNames = [...]string{"internal", "invalid", "not_found", "conflict", "unauthenticated",
	"forbidden", "step_up_required", "rate_limited", "too_large", "unavailable", "unsupported_media", "method_not_allowed"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is an application error with a stable code.
type Error struct {
	Kind    Kind
	Code    string         // stable, snake_case, listed in docs/openapi.yaml
	Message string         // a sentence for people
	Details map[string]any // optional, safe to show
	Err     error          // cause, logged for Internal, never shown
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error of the given kind and code.
func New(kind Kind, code, message string) *Error {
	return &Error{Kind: kind, Code: code, Message: message}
}

// WithDetails returns a copy of e carrying details.
func (e *Error) WithDetails(d map[string]any) *Error {
	c := *e
	c.Details = d
	return &c
}

// Wrap returns an Internal error around err with context for the log.
func Wrap(err error, context string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", context, err)
}

// From extracts the *Error in err's chain, or an Internal error wrapping err.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: Internal, Code: "internal", Message: "Internal error.", Err: err}
}

// Is reports whether err carries an *Error with the given code.
func Is(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// IsKind reports whether err carries an *Error of the given kind.
func IsKind(err error, kind Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == kind
}
