package steward_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
)

func TestScopeContains(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name  string
		scope string
		id    string
		want  bool
	}{
		{name: "Exact", scope: "/subscriptions/s1", id: "/subscriptions/s1", want: true},
		{name: "Child", scope: "/subscriptions/s1", id: "/subscriptions/s1/resourceGroups/rg1/vm", want: true},
		{name: "IgnoresCase", scope: "/SUBSCRIPTIONS/S1", id: "/subscriptions/s1/resourceGroups/rg1", want: true},
		{name: "WholeSegmentsOnly", scope: "/subscriptions/s1", id: "/subscriptions/s10/resourceGroups/rg1", want: false},
		{name: "TrailingSlash", scope: "/subscriptions/s1/", id: "/subscriptions/s1/rg", want: true},
		{name: "DoubledSlashes", scope: "//subscriptions//s1", id: "/subscriptions/s1/rg", want: true},
		{name: "EmptyScopeIsEverything", scope: "", id: "/aws/accounts/1", want: true},
		{name: "RootIsEverything", scope: "/", id: "/gcp/projects/p", want: true},
		{name: "LongerThanID", scope: "/subscriptions/s1/resourceGroups/rg1", id: "/subscriptions/s1", want: false},
		{name: "OtherCloud", scope: "/aws/accounts/123", id: "/gcp/projects/123", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, steward.Scope(tt.scope).Contains(tt.id))
		})
	}
}

func TestScopeNormalize(t *testing.T) {
	t.Parallel()
	require.Equal(t, steward.Scope("/subscriptions/s1/resourcegroups/rg"), steward.Scope("Subscriptions//S1/resourceGroups/RG/").Normalize())
	require.Equal(t, steward.Scope("/"), steward.Scope("").Normalize())
	require.Error(t, steward.Scope("/a\nb").Validate())
}

func TestParseSeverity(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]steward.Severity{
		"low": steward.SeverityLow, "Informational": steward.SeverityLow, "MEDIUM": steward.SeverityMedium,
		"High": steward.SeverityHigh, "critical": steward.SeverityCritical,
	} {
		got, err := steward.ParseSeverity(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	_, err := steward.ParseSeverity("Severe")
	require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err))
	require.Contains(t, steward.ErrorMessage(err), `"Severe"`)
	require.Less(t, steward.SeverityLow.Rank(), steward.SeverityCritical.Rank())
}

func TestParseStatus(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]steward.AssessmentStatus{
		"PASS": steward.StatusHealthy, "fail": steward.StatusUnhealthy, "Not Applicable": steward.StatusNotApplicable,
		"unhealthy": steward.StatusUnhealthy, "MANUAL": steward.StatusNotApplicable,
	} {
		got, err := steward.ParseStatus(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	_, err := steward.ParseStatus("broken")
	require.Error(t, err)
}

func TestDueDate(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC)
	tests := []struct {
		days int
		want string
	}{
		{7, "2026-12-02T23:59:59Z"},
		{14, "2026-12-09T23:59:59Z"},
		{30, "2026-12-25T23:59:59Z"},
		{90, "2027-02-23T23:59:59Z"},
		{1, "2026-11-26T23:59:59Z"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, steward.DueDate(from, tt.days).Format(time.RFC3339), "%d days", tt.days)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	cause := errors.New("disk on fire at /var/lib/x")
	err := steward.WrapError(steward.CodeUnavailable, cause, "store unavailable")
	require.Equal(t, steward.CodeUnavailable, steward.ErrorCode(err))
	require.Equal(t, "store unavailable", steward.ErrorMessage(err), "users never see the cause")
	require.ErrorIs(t, err, cause)
	require.Equal(t, steward.CodeInternal, steward.ErrorCode(cause))
	require.Equal(t, "internal error", steward.ErrorMessage(cause))

	rec := steward.InvalidRecord(3, 7, steward.Errorf(steward.CodeInvalid, "status %q is bad", "x"))
	require.Equal(t, `record 3 (line 7): status "x" is bad`, steward.ErrorMessage(rec))
	require.Equal(t, steward.CodeInvalid, steward.ErrorCode(rec))
}

func TestValidateEmail(t *testing.T) {
	t.Parallel()
	require.NoError(t, steward.ValidateEmail("owner", "alice@example.com"))
	for _, bad := range []string{"", "alice", "Alice <alice@example.com>", "a@b@c"} {
		require.Error(t, steward.ValidateEmail("owner", bad), bad)
	}
}
