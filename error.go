package steward

import (
	"errors"
	"fmt"
)

// Code classifies an error for callers: the API maps it to an HTTP status,
// workers to retry-or-stop. Add a code only when some caller branches on it.
type Code string

// The error codes. The API's JSON error shape carries them verbatim, so they
// are part of the public contract: never rename one.
const (
	CodeConflict     Code = "conflict"
	CodeInternal     Code = "internal"
	CodeInvalid      Code = "invalid"
	CodeNotFound     Code = "not_found"
	CodeUnavailable  Code = "unavailable" // an ITSM or cloud API is down
	CodeTooLarge     Code = "too_large"
	CodeUnauthorized Code = "unauthorized"
	// CodeForbidden: the caller is authenticated, but its role or scope
	// does not allow the request.
	CodeForbidden Code = "forbidden"
	// CodeRateLimited: the caller must wait before trying again.
	CodeRateLimited Code = "rate_limited"
	// CodeUnsupportedMediaType: the request body's Content-Type is missing
	// or not one the route reads. Requiring it keeps browsers from sending
	// cross-site "simple" requests, which skip the CORS preflight.
	CodeUnsupportedMediaType Code = "unsupported_media_type"
	// CodeTimeout: the client sent its request body too slowly.
	CodeTimeout Code = "timeout"
)

// Error is an error a user may see. Message is safe to display; Err is the
// cause, kept for logs and errors.Is, and never rendered to users.
type Error struct {
	Code    Code
	Message string
	// Field, when set, names the request field the error is about (e.g.
	// "instance_url", "password"), so a form can show it there.
	Field string
	Err   error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WrapError returns an *Error with code and message that keeps err as its cause.
func WrapError(code Code, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// ErrorCode reports the code of the first *Error in err's chain, else
// CodeInternal. A nil error has no code.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage reports the user-safe message of the first *Error in err's
// chain; any other error gets a generic message so internals never leak.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Message
	}
	return "internal error"
}

// ErrorField reports the field named by the first *Error in err's chain,
// if any.
func ErrorField(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Field
	}
	return ""
}

// AtField returns a copy of err naming field as the one it is about.
func AtField(field string, err *Error) *Error {
	c := *err
	c.Field = field
	return &c
}

// InvalidAt returns a CodeInvalid error about one request field, so a form
// can show it at that field.
func InvalidAt(field, format string, args ...any) *Error {
	e := Errorf(CodeInvalid, format, args...)
	e.Field = field
	return e
}
