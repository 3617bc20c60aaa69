package itsmtest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/itsm"
)

// Conformance describes an ITSM for RunConformance.
type Conformance struct {
	// New returns a Provider for a fresh, empty instance.
	New func(t *testing.T) itsm.Provider
	// Assignee and OtherAssignee are e-mail addresses of two active users;
	// UnknownEmail belongs to no user.
	Assignee, OtherAssignee, UnknownEmail string
	// IncidentCloseCode is a close code the instance accepts for
	// incidents (default "Solution provided").
	IncidentCloseCode string
	// CountCorrelation, when set, returns how many records of table carry
	// correlation ID id, read from the ITSM's side.
	CountCorrelation func(table, id string) int
}

// RunConformance checks the contract of itsm.Provider that every
// implementation must keep: idempotent creation, read-back, updates,
// batch reads, change listing and typed errors.
func RunConformance(t *testing.T, c Conformance) {
	if c.IncidentCloseCode == "" {
		c.IncidentCloseCode = "Solution provided"
	}
	req := func(typ steward.TicketType, corr string) itsm.CreateRequest {
		return itsm.CreateRequest{Type: typ, CorrelationID: corr, CorrelationDisplay: "steward",
			ShortDescription: "conformance " + corr, Description: "created by itsmtest.RunConformance",
			AssignedToEmail: c.Assignee, Impact: "2", Urgency: "2", FirstAttempt: true}
	}
	requireKind := func(t *testing.T, err error, kind itsm.ErrorKind) {
		t.Helper()
		e, ok := errors.AsType[*itsm.Error](err)
		require.True(t, ok, "want *itsm.Error, got %T %v", err, err)
		require.Equal(t, kind, e.Kind, "%v", err)
	}

	t.Run("CreateEachTypeIdempotently", func(t *testing.T) {
		t.Parallel()
		p := c.New(t)
		for _, typ := range steward.TicketTypes {
			corr := "conf-create-" + string(typ)
			tk, err := p.CreateTicket(t.Context(), req(typ, corr))
			require.NoError(t, err, typ)
			table := itsm.DefaultTable(typ)
			require.Equal(t, table, tk.Table)
			require.NotEmpty(t, tk.SysID)
			require.NotEmpty(t, tk.Number)
			require.NotEmpty(t, tk.Link)
			require.Equal(t, corr, tk.CorrelationID)
			require.Equal(t, steward.TicketNew, tk.State, "%s raw %q", typ, tk.RawState)
			require.True(t, strings.EqualFold(c.Assignee, tk.AssignedToEmail), "assignee %q", tk.AssignedToEmail)

			again := req(typ, corr)
			again.FirstAttempt = false
			dup, err := p.CreateTicket(t.Context(), again)
			require.NoError(t, err)
			require.Equal(t, tk.SysID, dup.SysID, "a second create with the same correlation ID returns the first record")
			if c.CountCorrelation != nil {
				require.Equal(t, 1, c.CountCorrelation(table, corr))
			}

			read, err := p.Ticket(t.Context(), tk.Ref())
			require.NoError(t, err)
			require.Equal(t, tk.Number, read.Number)
			require.Equal(t, tk.State, read.State)
		}
	})

	t.Run("UpdateAndResolve", func(t *testing.T) {
		t.Parallel()
		p := c.New(t)
		tk, err := p.CreateTicket(t.Context(), req(steward.TicketTypeIncident, "conf-update"))
		require.NoError(t, err)

		other := c.OtherAssignee
		got, err := p.UpdateTicket(t.Context(), tk.Ref(), itsm.TicketUpdate{AssignedToEmail: &other})
		require.NoError(t, err)
		require.True(t, strings.EqualFold(other, got.AssignedToEmail), "assignee %q", got.AssignedToEmail)
		require.Greater(t, got.ModCount, tk.ModCount)

		st, notes := steward.TicketResolved, "resolved by itsmtest"
		got, err = p.UpdateTicket(t.Context(), tk.Ref(), itsm.TicketUpdate{State: &st, CloseCode: &c.IncidentCloseCode, CloseNotes: &notes})
		require.NoError(t, err)
		require.Equal(t, steward.TicketResolved, got.State)
		require.True(t, got.State.Ended())
	})

	t.Run("BatchReadsAndChanges", func(t *testing.T) {
		t.Parallel()
		p := c.New(t)
		since := time.Now().Add(-time.Minute)
		var ids []string
		for i := range 3 {
			tk, err := p.CreateTicket(t.Context(), req(steward.TicketTypeIncident, fmt.Sprintf("conf-batch-%d", i)))
			require.NoError(t, err)
			ids = append(ids, tk.SysID)
		}
		got, err := p.Tickets(t.Context(), "incident", ids)
		require.NoError(t, err)
		require.Len(t, got, 3)
		got, err = p.FindByCorrelationIDs(t.Context(), "incident", []string{"conf-batch-0", "conf-batch-2", "conf-missing"})
		require.NoError(t, err)
		require.Len(t, got, 2)

		seen := map[string]bool{}
		for tk, err := range p.ChangedSince(t.Context(), "incident", since, "conf-batch-") {
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(tk.CorrelationID, "conf-batch-"))
			seen[tk.SysID] = true
		}
		for _, id := range ids {
			require.True(t, seen[id], "ChangedSince missed %s", id)
		}
	})

	t.Run("TypedErrors", func(t *testing.T) {
		t.Parallel()
		p := c.New(t)
		_, err := p.LookupUser(t.Context(), c.UnknownEmail)
		requireKind(t, err, itsm.KindNotFound)
		require.Equal(t, steward.CodeNotFound, steward.ErrorCode(err))

		_, err = p.Ticket(t.Context(), itsm.Ref{Table: "incident", SysID: "00000000000000000000000000000000"})
		requireKind(t, err, itsm.KindNotFound)
		require.Equal(t, steward.CodeNotFound, steward.ErrorCode(err))

		_, err = p.CreateTicket(t.Context(), itsm.CreateRequest{Type: steward.TicketTypeIncident, ShortDescription: "no correlation"})
		requireKind(t, err, itsm.KindInvalid)
		require.False(t, itsm.IsRetryable(err))

		u, err := p.LookupUser(t.Context(), c.Assignee)
		require.NoError(t, err)
		require.True(t, u.Active)
		byID, err := p.LookupUser(t.Context(), u.SysID)
		require.NoError(t, err)
		require.Equal(t, u.Email, byID.Email)
	})
}
