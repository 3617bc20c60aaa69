// Package itsmtest is the test kit every itsm.Provider implementation
// shares: the every-status retry table, the secret-leak check, and a
// hand-written Fake provider for callers' tests.
package itsmtest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FirstStatus and LastStatus bound the HTTP statuses RetryTable checks.
const (
	FirstStatus = 100
	LastStatus  = 599
)

// RetryTable asserts a retry decision for every HTTP status from 100 to
// 599: decide must return true exactly for the statuses in retryable. It
// reports every mismatch at once. decide may use t to fail on setup
// errors; it receives each status once.
func RetryTable(t testing.TB, retryable []int, decide func(t testing.TB, status int) bool) {
	t.Helper()
	RetryTableRange(t, FirstStatus, LastStatus, retryable, decide)
}

// RetryTableRange is RetryTable over [from, to]. Tests that drive a real
// HTTP server use 200–599: a server cannot send a final 1xx answer.
func RetryTableRange(t testing.TB, from, to int, retryable []int, decide func(t testing.TB, status int) bool) {
	t.Helper()
	var wrong []string
	for status := from; status <= to; status++ {
		want := slices.Contains(retryable, status)
		if got := decide(t, status); got != want {
			wrong = append(wrong, fmt.Sprintf("%d: retry=%v, want %v", status, got, want))
		}
	}
	require.Empty(t, wrong, "retry decisions that differ from the table")
}

// AssertNoSecretLeak fails the test when output shows any of secrets, as
// is or in the encodings a leak would most likely take (URL query
// escaping, standard and URL-safe base64). To catch a leaked Basic
// Authorization header, pass "user:password" as one more secret. output
// may be an error (its message, %+v and %#v forms and those of every
// wrapped error are checked), a string, []byte, *bytes.Buffer or
// fmt.Stringer; anything else is checked in its %+v and %#v forms. Empty
// secrets are ignored.
func AssertNoSecretLeak(t testing.TB, output any, secrets ...string) {
	t.Helper()
	texts := renderings(output)
	for _, s := range secrets {
		if s == "" {
			continue
		}
		forms := []string{s, url.QueryEscape(s), base64.StdEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s))}
		for _, text := range texts {
			for _, f := range forms {
				if strings.Contains(text, f) {
					require.Failf(t, "secret leaked", "output contains a secret (form %q) in:\n%s", mask(f), mask(strings.ReplaceAll(text, f, "<SECRET>")))
				}
			}
		}
	}
}

// mask keeps failure messages themselves from printing the secret in CI
// logs.
func mask(s string) string {
	if len(s) <= 4 {
		return "****"
	}
	return s[:2] + strings.Repeat("*", len(s)-2)
}

func renderings(output any) []string {
	switch v := output.(type) {
	case nil:
		return nil
	case error:
		out := []string{v.Error(), fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v)}
		for _, w := range unwrapAll(v) {
			out = append(out, w.Error(), fmt.Sprintf("%+v", w), fmt.Sprintf("%#v", w))
		}
		return out
	case string:
		return []string{v}
	case []byte:
		return []string{string(v)}
	case *bytes.Buffer:
		return []string{v.String()}
	case fmt.Stringer:
		return []string{v.String()}
	}
	return []string{fmt.Sprintf("%+v", output), fmt.Sprintf("%#v", output)}
}

func unwrapAll(err error) []error {
	var out []error
	var walk func(error)
	walk = func(e error) {
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			if w := u.Unwrap(); w != nil {
				out = append(out, w)
				walk(w)
			}
		case interface{ Unwrap() []error }:
			for _, w := range u.Unwrap() {
				if w != nil {
					out = append(out, w)
					walk(w)
				}
			}
		}
	}
	walk(err)
	return out
}
