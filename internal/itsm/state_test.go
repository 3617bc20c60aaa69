package itsm_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/itsm"
)

func TestNormalizeState(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name  string
		table string
		raw   string
		want  steward.TicketState
		label string
	}{
		{name: "IncidentNew", table: "incident", raw: "1", want: steward.TicketNew, label: "New"},
		{name: "IncidentInProgress", table: "incident", raw: "2", want: steward.TicketInProgress, label: "In Progress"},
		{name: "IncidentOnHold", table: "incident", raw: "3", want: steward.TicketOnHold, label: "On Hold"},
		{name: "IncidentResolved", table: "incident", raw: "6", want: steward.TicketResolved, label: "Resolved"},
		{name: "IncidentClosed", table: "incident", raw: "7", want: steward.TicketClosed, label: "Closed"},
		{name: "IncidentCanceled", table: "incident", raw: "8", want: steward.TicketCanceled, label: "Canceled"},
		{name: "ProblemNew", table: "problem", raw: "101", want: steward.TicketNew, label: "New"},
		{name: "ProblemAssess", table: "problem", raw: "102", want: steward.TicketInProgress, label: "Assess"},
		{name: "ProblemRootCauseAnalysis", table: "problem", raw: "103", want: steward.TicketInProgress, label: "Root Cause Analysis"},
		{name: "ProblemFixInProgress", table: "problem", raw: "104", want: steward.TicketInProgress, label: "Fix in Progress"},
		{name: "ProblemResolved", table: "problem", raw: "106", want: steward.TicketResolved, label: "Resolved"},
		{name: "ProblemClosed", table: "problem", raw: "107", want: steward.TicketClosed, label: "Closed"},
		{name: "ChangeNew", table: "change_request", raw: "-5", want: steward.TicketNew, label: "New"},
		{name: "ChangeNewAsJSONNumber", table: "change_request", raw: "-5.0", want: steward.TicketNew, label: "New"},
		{name: "ChangeAssess", table: "change_request", raw: "-4", want: steward.TicketInProgress, label: "Assess"},
		{name: "ChangeAuthorize", table: "change_request", raw: "-3", want: steward.TicketInProgress, label: "Authorize"},
		{name: "ChangeScheduled", table: "change_request", raw: "-2", want: steward.TicketInProgress, label: "Scheduled"},
		{name: "ChangeImplement", table: "change_request", raw: "-1", want: steward.TicketInProgress, label: "Implement"},
		{name: "ChangeReviewCountsAsResolved", table: "change_request", raw: "0", want: steward.TicketResolved, label: "Review"},
		{name: "ChangeClosed", table: "change_request", raw: "3", want: steward.TicketClosed, label: "Closed"},
		{name: "ChangeCanceled", table: "change_request", raw: "4", want: steward.TicketCanceled, label: "Canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			got, err := itsm.NormalizeState(tt.table, tt.raw)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.label, itsm.StateLabel(tt.table, tt.raw))
		})
	}
}

func TestNormalizeState_Unknown(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name, table, raw string
	}{
		{name: "IncidentHasNo4", table: "incident", raw: "4"},
		{name: "IncidentHasNo5", table: "incident", raw: "5"},
		{name: "ProblemHasNo105", table: "problem", raw: "105"},
		{name: "ProblemLegacyValue", table: "problem", raw: "1"},
		{name: "ChangeValueOfIncident", table: "change_request", raw: "6"},
		{name: "Label", table: "incident", raw: "Resolved"},
		{name: "Empty", table: "incident", raw: ""},
		{name: "Fraction", table: "incident", raw: "1.5"},
		{name: "UnknownTable", table: "ticket", raw: "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			_, err := itsm.NormalizeState(tt.table, tt.raw)
			require.Error(t, err)
			require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err))
			require.Empty(t, itsm.StateLabel(tt.table, tt.raw))
		})
	}
}

func TestRawState(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name  string
		table string
		state steward.TicketState
		want  string // "" means an error
	}{
		{name: "IncidentNew", table: "incident", state: steward.TicketNew, want: "1"},
		{name: "IncidentInProgress", table: "incident", state: steward.TicketInProgress, want: "2"},
		{name: "IncidentOnHold", table: "incident", state: steward.TicketOnHold, want: "3"},
		{name: "IncidentResolved", table: "incident", state: steward.TicketResolved, want: "6"},
		{name: "IncidentClosed", table: "incident", state: steward.TicketClosed, want: "7"},
		{name: "IncidentCanceled", table: "incident", state: steward.TicketCanceled, want: "8"},
		{name: "ProblemNew", table: "problem", state: steward.TicketNew, want: "101"},
		{name: "ProblemInProgressIsAssess", table: "problem", state: steward.TicketInProgress, want: "102"},
		{name: "ProblemResolved", table: "problem", state: steward.TicketResolved, want: "106"},
		{name: "ProblemClosed", table: "problem", state: steward.TicketClosed, want: "107"},
		{name: "ProblemCanceledIsClosed", table: "problem", state: steward.TicketCanceled, want: "107"},
		{name: "ProblemHasNoOnHold", table: "problem", state: steward.TicketOnHold},
		{name: "ChangeNew", table: "change_request", state: steward.TicketNew, want: "-5"},
		{name: "ChangeInProgressIsAssess", table: "change_request", state: steward.TicketInProgress, want: "-4"},
		{name: "ChangeResolvedIsReview", table: "change_request", state: steward.TicketResolved, want: "0"},
		{name: "ChangeClosed", table: "change_request", state: steward.TicketClosed, want: "3"},
		{name: "ChangeCanceled", table: "change_request", state: steward.TicketCanceled, want: "4"},
		{name: "ChangeHasNoOnHold", table: "change_request", state: steward.TicketOnHold},
		{name: "UnknownState", table: "incident", state: "Bogus"},
		{name: "UnknownTable", table: "ticket", state: steward.TicketNew},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			got, err := itsm.RawState(tt.table, tt.state)
			if tt.want == "" {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// TestRawState_RoundTrip checks that every normalized state a table can
// store maps back onto itself.
func TestRawState_RoundTrip(t *testing.T) {
	t.Parallel()

	for _, table := range []string{"incident", "problem", "change_request"} {
		for _, st := range []steward.TicketState{steward.TicketNew, steward.TicketInProgress, steward.TicketOnHold,
			steward.TicketResolved, steward.TicketClosed, steward.TicketCanceled} {
			raw, err := itsm.RawState(table, st)
			if err != nil {
				continue
			}
			back, err := itsm.NormalizeState(table, raw)
			require.NoError(t, err)
			if table == "problem" && st == steward.TicketCanceled {
				require.Equal(t, steward.TicketClosed, back) // canceled problems are Closed + resolution code
				continue
			}
			require.Equal(t, st, back, "%s %s", table, st)
		}
	}
}

func TestCanonicalNumber(t *testing.T) {
	t.Parallel()

	tests := []struct{ name, in, want string }{
		{"Integer", "6", "6"},
		{"Negative", "-5", "-5"},
		{"FloatZeroFraction", "-5.0", "-5"},
		{"FloatTwoZeros", "3.00", "3"},
		{"NegativeZero", "-0.0", "0"},
		{"RealFraction", "1.5", "1.5"},
		{"Label", "New", "New"},
		{"Empty", "", ""},
		{"DotOnly", ".0", ".0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, itsm.CanonicalNumber(tt.in))
		})
	}
}

func TestDefaultTable(t *testing.T) {
	t.Parallel()

	require.Equal(t, "incident", itsm.DefaultTable(steward.TicketTypeIncident))
	require.Equal(t, "problem", itsm.DefaultTable(steward.TicketTypeProblem))
	require.Equal(t, "change_request", itsm.DefaultTable(steward.TicketTypeChangeRequest))
	require.Empty(t, itsm.DefaultTable("task"))
	for _, tt := range steward.TicketTypes {
		require.Equal(t, itsm.DefaultTable(tt), itsm.BaseTable(itsm.DefaultTable(tt)))
	}
	require.Empty(t, itsm.BaseTable("u_security_incident"))
}

func TestParseTicketType(t *testing.T) {
	t.Parallel()

	tests := []struct {
		in   string
		want steward.TicketType
	}{
		{"incident", steward.TicketTypeIncident},
		{" Incident ", steward.TicketTypeIncident},
		{"PROBLEM", steward.TicketTypeProblem},
		{"change_request", steward.TicketTypeChangeRequest},
		{"Change Request", steward.TicketTypeChangeRequest},
		{"change-request", steward.TicketTypeChangeRequest},
		{"change", steward.TicketTypeChangeRequest},
		{"task", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, err := steward.ParseTicketType(tt.in)
		if tt.want == "" {
			require.Error(t, err, tt.in)
			require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err))
			continue
		}
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.want, got)
	}
}
