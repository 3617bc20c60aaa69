// Package secret keeps credentials out of logs, errors, JSON and fmt output.
//
// A [String] prints as [redacted] through every path the standard library
// offers (String, GoString, Format with any verb, MarshalJSON, MarshalText,
// slog's LogValue). [String.Reveal] is the only way to read the value, so
// `grep -rn 'Reveal()'` lists every place a credential is used.
//
// [Box] seals secrets for storage at rest with AES-256-GCM.
package secret

import (
	"encoding/json"
	"fmt"
	"log/slog"
)

// Redacted is what a String prints instead of its value.
const Redacted = "[redacted]"

// String is a secret text such as a password or client secret. The zero
// value is the empty secret. It is comparable, so two Strings can be
// compared with ==.
//
// The value lives in an unexported field so a plain conversion cannot read
// it; use Reveal.
type String struct {
	s string
}

// New wraps s.
func New(s string) String { return String{s: s} }

// Reveal returns the secret value. Call it only where the value leaves the
// process for the system it authenticates to.
func (s String) Reveal() string { return s.s }

// IsZero reports whether the secret is empty.
func (s String) IsZero() bool { return s.s == "" }

// String returns [redacted] (or "" for the empty secret, so a missing
// credential is visible in diagnostics without revealing a present one).
func (s String) String() string {
	if s.s == "" {
		return ""
	}
	return Redacted
}

// GoString is used by %#v.
func (s String) GoString() string { return `secret.String("` + s.String() + `")` }

// Format makes every fmt verb (%v, %+v, %s, %q, %x, %d ...) print the
// redacted form.
func (s String) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		fmt.Fprintf(f, "%q", s.String())
	case 'v':
		if f.Flag('#') {
			_, _ = f.Write([]byte(s.GoString()))
			return
		}
		_, _ = f.Write([]byte(s.String()))
	default:
		_, _ = f.Write([]byte(s.String()))
	}
}

// LogValue makes slog print the redacted form.
func (s String) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON encodes the redacted form: a secret never leaves through an
// API response or a JSON log line.
func (s String) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText encodes the redacted form (used by encoding/xml, TOML and
// text-keyed encoders).
func (s String) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalJSON reads a plain JSON string, so configuration and API input
// can carry secrets in.
func (s *String) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("secret: want a JSON string")
	}
	s.s = v
	return nil
}

// UnmarshalText reads the text as the secret value.
func (s *String) UnmarshalText(b []byte) error {
	s.s = string(b)
	return nil
}
