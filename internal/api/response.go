package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/stewardhq/steward"
)

// statusByCode is the one table mapping error codes to HTTP statuses.
var statusByCode = map[steward.Code]int{
	steward.CodeInvalid:              http.StatusBadRequest,
	steward.CodeUnauthorized:         http.StatusUnauthorized,
	steward.CodeForbidden:            http.StatusForbidden,
	steward.CodeRateLimited:          http.StatusTooManyRequests,
	steward.CodeNotFound:             http.StatusNotFound,
	steward.CodeConflict:             http.StatusConflict,
	steward.CodeTooLarge:             http.StatusRequestEntityTooLarge,
	steward.CodeUnsupportedMediaType: http.StatusUnsupportedMediaType,
	steward.CodeTimeout:              http.StatusRequestTimeout,
	steward.CodeUnavailable:          http.StatusServiceUnavailable,
	steward.CodeInternal:             http.StatusInternalServerError,
}

// codeMethodNotAllowed is only produced by routing, never by domain code.
const codeMethodNotAllowed steward.Code = "method_not_allowed"

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    steward.Code `json:"code"`
	Message string       `json:"message"`
	// Field names the request field the error is about, when one is.
	Field string `json:"field,omitempty"`
}

// writeError answers with the one JSON error shape. Users see the error's
// safe message; internal errors are logged with their cause and shown as a
// generic message so nothing internal (paths, SQL, secrets) leaks.
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	code := steward.ErrorCode(err)
	status, ok := statusByCode[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if status >= 500 {
		logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: steward.ErrorMessage(err), Field: steward.ErrorField(err)}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away; nothing useful to do
}

// decodeJSON reads exactly one JSON value from the body into v: at most
// limit bytes, unknown fields rejected, nothing after the value.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if err := requireContentType(r, "application/json"); err != nil {
		return err
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return steward.Errorf(steward.CodeInvalid, "request body has data after the JSON value")
	}
	return nil
}

// requireContentType checks that the request's Content-Type is one of
// types (parameters allowed; a charset, when given, must be UTF-8).
// Requiring it is what keeps a web page from posting to Steward: browsers
// send the types a form can produce (text/plain, form encodings) or none
// without a CORS preflight, and Steward answers no preflight.
func requireContentType(r *http.Request, types ...string) error {
	want := strings.Join(types, " or ")
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return steward.Errorf(steward.CodeUnsupportedMediaType, "Content-Type is missing; send %s", want)
	}
	mediaType, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return steward.Errorf(steward.CodeUnsupportedMediaType, "Content-Type %q is malformed; send %s", ct, want)
	}
	if !slices.Contains(types, mediaType) {
		return steward.Errorf(steward.CodeUnsupportedMediaType, "Content-Type %s is not accepted here; send %s", mediaType, want)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return steward.Errorf(steward.CodeUnsupportedMediaType, "Content-Type charset %s is not accepted; send %s in UTF-8", cs, want)
	}
	return nil
}

// bodyError turns a JSON decoding error into a message a user can act on.
func bodyError(err error) error {
	var (
		maxErr    *http.MaxBytesError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &maxErr):
		return steward.Errorf(steward.CodeTooLarge, "request body is larger than %d bytes", maxErr.Limit)
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The server's read timeout ran out while the body trickled in.
		return steward.WrapError(steward.CodeTimeout, err, "request body was not received in time; send it at once")
	case errors.As(err, &syntaxErr):
		return steward.Errorf(steward.CodeInvalid, "malformed JSON at byte %d: %s", syntaxErr.Offset, syntaxErr.Error())
	case errors.As(err, &typeErr):
		return steward.Errorf(steward.CodeInvalid, "field %q: cannot use a JSON %s as %s", typeErr.Field, typeErr.Value, typeErr.Type)
	case errors.Is(err, io.EOF):
		return steward.Errorf(steward.CodeInvalid, "request body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return steward.Errorf(steward.CodeInvalid, "request body ends in the middle of a JSON value")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return steward.Errorf(steward.CodeInvalid, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return steward.WrapError(steward.CodeInvalid, err, "invalid request body: %s", err.Error())
}

// list is the envelope of every paginated answer.
type list[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

func newList[T any](items []T, next string) list[T] {
	if items == nil {
		items = []T{}
	}
	return list[T]{Items: items, NextCursor: next}
}

func notFound(format string, args ...any) error {
	return steward.Errorf(steward.CodeNotFound, format, args...)
}

func invalid(format string, args ...any) error {
	return steward.Errorf(steward.CodeInvalid, format, args...)
}

func itoa(n int64) string { return fmt.Sprint(n) }
