package itsm_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/itsm/itsmtest"
)

func TestError_Code(t *testing.T) {
	t.Parallel()

	tests := []struct {
		kind itsm.ErrorKind
		want steward.Code
	}{
		{itsm.KindAuth, steward.CodeInvalid},
		{itsm.KindForbidden, steward.CodeInvalid},
		{itsm.KindNotFound, steward.CodeNotFound},
		{itsm.KindAmbiguous, steward.CodeConflict},
		{itsm.KindDataPolicy, steward.CodeInvalid},
		{itsm.KindTransitionRefused, steward.CodeInvalid},
		{itsm.KindInvalid, steward.CodeInvalid},
		{itsm.KindInvalidTable, steward.CodeInvalid},
		{itsm.KindRateLimited, steward.CodeUnavailable},
		{itsm.KindUnavailable, steward.CodeUnavailable},
		{itsm.KindNetwork, steward.CodeUnavailable},
		{itsm.KindBadResponse, steward.CodeUnavailable},
		{itsm.KindCanceled, steward.CodeInternal},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			t.Parallel()

			cause := errors.New("cause")
			err := fmt.Errorf("sync: %w", &itsm.Error{Op: "get", Table: "incident", Kind: tt.kind, Message: "it broke", Err: cause})
			require.Equal(t, tt.want, steward.ErrorCode(err))
			require.Equal(t, "it broke", steward.ErrorMessage(err))
			require.ErrorIs(t, err, cause)
			require.True(t, itsm.IsKind(err, tt.kind))
		})
	}
}

func TestError_Error(t *testing.T) {
	t.Parallel()

	err := &itsm.Error{Op: "update", Table: "incident", Status: 403, Kind: itsm.KindDataPolicy,
		Message: "ServiceNow's data policy rejected the write", Detail: "Data Policy Exception: mandatory: Close notes",
		TransactionID: "a1b2c3d4e5f6"}
	require.Equal(t, "update incident: ServiceNow's data policy rejected the write: Data Policy Exception: mandatory: Close notes (HTTP 403, transaction a1b2c3d4e5f6)", err.Error())
	require.Equal(t, "ServiceNow's data policy rejected the write: Data Policy Exception: mandatory: Close notes", steward.ErrorMessage(err))
	require.False(t, itsm.IsRetryable(err))
	require.True(t, itsm.IsRetryable(&itsm.Error{Retryable: true}))
	require.False(t, itsm.IsRetryable(errors.New("plain")))
}

func TestRetryableStatus(t *testing.T) {
	t.Parallel()

	itsmtest.RetryTable(t, []int{202, 429, 500, 502, 503, 504}, func(_ testing.TB, status int) bool {
		return itsm.RetryableStatus(status)
	})
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()

	now := time.Date(2024, 3, 5, 14, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want time.Duration
	}{
		{"Seconds", "3", 3 * time.Second},
		{"SecondsSpaces", " 10 ", 10 * time.Second},
		{"Zero", "0", 0},
		{"Negative", "-1", 0},
		{"Empty", "", 0},
		{"Garbage", "soon", 0},
		{"HTTPDate", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"HTTPDatePast", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"CappedAtADay", "99999999", 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, itsm.ParseRetryAfter(tt.in, now))
		})
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()

	tests := []struct{ name, in, want string }{
		{"Plain", "https://dev1.service-now.com/api/now/table/incident", "https://dev1.service-now.com/api/now/table/incident"},
		{"Query", "https://dev1.service-now.com/api/now/table/incident?x-sn-apikey=SECRET&sysparm_limit=1", "https://dev1.service-now.com/api/now/table/incident?[redacted]"},
		{"UserInfo", "https://admin:SECRET@dev1.service-now.com/oauth_token.do", "https://[redacted]@dev1.service-now.com/oauth_token.do"},
		{"Fragment", "https://dev1.service-now.com/x#SECRET", "https://dev1.service-now.com/x"},
		{"Unparsable", "https://dev1.service-now.com/%zzSECRET", "[redacted URL]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, itsm.RedactURL(tt.in))
		})
	}
}

func TestRedactError(t *testing.T) {
	t.Parallel()

	orig := &url.Error{Op: "Get", URL: "https://u:SECRET@x.example/a?token=SECRET", Err: errors.New("connection refused")}
	red := itsm.RedactError(fmt.Errorf("wrapped: %w", orig))
	itsmtest.AssertNoSecretLeak(t, red, "SECRET")
	require.Contains(t, red.Error(), "connection refused")
	require.Contains(t, orig.URL, "SECRET", "the original is not modified")

	plain := errors.New("no url")
	require.Same(t, plain, itsm.RedactError(plain))
}

// TestError_CodeWinsOverCause: a cause that is itself a steward.Error (or
// an itsm.Error) does not change what the outer error says.
func TestError_CodeWinsOverCause(t *testing.T) {
	t.Parallel()

	inner := &itsm.Error{Op: "validate", Kind: itsm.KindForbidden, Message: "inner"}
	err := &itsm.Error{Op: "validate", Kind: itsm.KindNotFound, Message: "outer", Err: errors.Join(inner, steward.Errorf(steward.CodeInternal, "x"))}
	require.Equal(t, steward.CodeNotFound, steward.ErrorCode(err))
	require.Equal(t, "outer", steward.ErrorMessage(err))
	require.ErrorIs(t, err, inner)
}
