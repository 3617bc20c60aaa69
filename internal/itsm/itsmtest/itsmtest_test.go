package itsmtest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/itsm/itsmtest"
)

// recorder is a testing.TB that records failures instead of stopping the
// test, so the kit's own failures can be asserted.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Errorf(string, ...any) { r.failed = true }
func (r *recorder) FailNow()              { r.failed = true; panic(r) }
func (r *recorder) Helper()               {}

func run(tb testing.TB, f func(tb testing.TB)) (failed bool) {
	r := &recorder{TB: tb}
	defer func() {
		if p := recover(); p != nil && p != any(r) {
			panic(p)
		}
		failed = r.failed
	}()
	f(r)
	return r.failed
}

func TestAssertNoSecretLeak(t *testing.T) {
	t.Parallel()

	const s = "pa ss/word"
	tests := []struct {
		name   string
		output any
		leaks  bool
	}{
		{name: "CleanError", output: errors.New("auth failed"), leaks: false},
		{name: "ErrorMessage", output: errors.New("auth failed for " + s), leaks: true},
		{name: "WrappedCause", output: &itsm.Error{Op: "token", Message: "x", Err: errors.New(s)}, leaks: true},
		{name: "QueryEscaped", output: "password=pa+ss%2Fword", leaks: true},
		{name: "Base64", output: []byte(base64.StdEncoding.EncodeToString([]byte(s))), leaks: true},
		{name: "Buffer", output: bytes.NewBufferString("level=INFO msg=ok"), leaks: false},
		{name: "Struct", output: struct{ P string }{s}, leaks: true},
		{name: "Nil", output: nil, leaks: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.leaks, run(t, func(tb testing.TB) { itsmtest.AssertNoSecretLeak(tb, tt.output, s, "") }))
		})
	}
}

func TestRetryTable(t *testing.T) {
	t.Parallel()

	seen := 0
	require.False(t, run(t, func(tb testing.TB) {
		itsmtest.RetryTable(tb, []int{503}, func(_ testing.TB, status int) bool { seen++; return status == 503 })
	}))
	require.Equal(t, 500, seen, "every status 100-599 is asked once")
	require.True(t, run(t, func(tb testing.TB) {
		itsmtest.RetryTable(tb, []int{503}, func(_ testing.TB, status int) bool { return status >= 500 })
	}))
}

func TestFake(t *testing.T) {
	t.Parallel()

	var p itsm.Provider = &itsmtest.Fake{
		TicketFunc: func(_ context.Context, ref itsm.Ref) (*itsm.Ticket, error) {
			return &itsm.Ticket{Table: ref.Table, SysID: ref.SysID}, nil
		},
	}
	tk, err := p.Ticket(t.Context(), itsm.Ref{Table: "incident", SysID: "1"})
	require.NoError(t, err)
	require.Equal(t, "1", tk.SysID)
	_, err = p.CreateTicket(t.Context(), itsm.CreateRequest{})
	require.True(t, itsm.IsKind(err, itsm.KindInvalid), fmt.Sprint(err))
	require.NoError(t, p.Validate(t.Context()))
	for _, err := range p.ChangedSince(t.Context(), "incident", time.Time{}, "") {
		require.Error(t, err)
	}
}
