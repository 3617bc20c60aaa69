package assignment_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/assignment"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

var due = time.Date(2030, 3, 8, 23, 59, 59, 0, time.UTC)

type bundle struct {
	db  *store.DB
	svc *assignment.Service
	tk  *fakeTicketing
}

// setup opens a fresh SQLite store and a Service whose queue is bound to
// an insert-only River client on the store's writer, so queued jobs are
// rows in river_job.
func setup(t *testing.T) *bundle {
	t.Helper()
	db := storetest.MustOpen(t)
	client, err := river.NewClient(db.RiverDriver(), &river.Config{Logger: storetest.Logger(t)})
	require.NoError(t, err)
	q := jobs.NewQueue()
	q.Bind(client)
	tk := &fakeTicketing{in: storetest.Integration(t, db, "prod", "/subscriptions/s1")}
	return &bundle{db: db, svc: assignment.New(q, tk), tk: tk}
}

// fakeTicketing routes every ticket to one integration and renders text
// that names the assignment, so tests see it was rendered after the
// assignment was stored.
type fakeTicketing struct {
	in       *steward.Integration
	routeErr error
}

func (f *fakeTicketing) TicketRoute(_ context.Context, _ string, id int64, typ steward.TicketType) (*steward.Integration, string, error) {
	if f.routeErr != nil {
		return nil, "", f.routeErr
	}
	if id != 0 && id != f.in.ID {
		return nil, "", steward.Errorf(steward.CodeNotFound, "integration %d not found or being deleted", id)
	}
	return f.in, "x_" + string(typ), nil
}

func (f *fakeTicketing) TicketText(_ context.Context, _ *store.Tx, _ *steward.Integration, typ steward.TicketType, a *steward.Assignment) (string, string, error) {
	return fmt.Sprintf("%s for assignment %d", typ, a.ID), "Please fix " + a.ResourceID, nil
}

func (b *bundle) create(t *testing.T, req assignment.CreateRequest) (*steward.Assignment, error) {
	t.Helper()
	var a *steward.Assignment
	err := b.db.WithTx(t.Context(), func(tx *store.Tx) error {
		var err error
		a, err = b.svc.Create(t.Context(), tx, req, "alice@example.com")
		return err
	})
	return a, err
}

func (b *bundle) update(t *testing.T, id int64, c assignment.Change) (*steward.Assignment, error) {
	t.Helper()
	var a *steward.Assignment
	err := b.db.WithTx(t.Context(), func(tx *store.Tx) error {
		var err error
		a, err = b.svc.Update(t.Context(), tx, id, c, "alice@example.com", "handover")
		return err
	})
	return a, err
}

// jobs returns the assignment IDs of the queued jobs of kind, in order.
func (b *bundle) jobs(t *testing.T, kind string) []int64 {
	t.Helper()
	rows, err := b.db.Writer().QueryContext(t.Context(), storetest.JobArgsQuery(b.db), kind)
	require.NoError(t, err)
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var raw string
		require.NoError(t, rows.Scan(&raw))
		var args struct {
			AssignmentID int64 `json:"assignment_id"`
		}
		require.NoError(t, json.Unmarshal([]byte(raw), &args))
		out = append(out, args.AssignmentID)
	}
	require.NoError(t, rows.Err())
	return out
}

func (b *bundle) countAssignments(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.Writer().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM assignment`).Scan(&n))
	return n
}

func unhealthy(t *testing.T, db *store.DB, res string) *steward.Assessment {
	t.Helper()
	return storetest.Assessment(t, db, "r1", res, steward.StatusUnhealthy)
}

func TestCreateRefusesBadRequests(t *testing.T) {
	b := setup(t)
	asm := unhealthy(t, b.db, "/subscriptions/s1/vm1")
	eta := due.Add(-time.Hour)
	manual := func(mod func(*assignment.CreateRequest)) assignment.CreateRequest {
		r := assignment.CreateRequest{AssessmentID: asm.ID, Owner: "alice@example.com", RemediationTimeframeDays: 7}
		mod(&r)
		return r
	}
	ticket := func(mod func(*assignment.CreateRequest)) assignment.CreateRequest {
		r := assignment.CreateRequest{AssessmentID: asm.ID, Type: steward.AssignmentServiceNow, Owner: "alice@example.com",
			RemediationTimeframeDays: 7, Ticket: &assignment.TicketRequest{Type: steward.TicketTypeIncident}}
		mod(&r)
		return r
	}
	for _, tc := range []struct {
		name string
		req  assignment.CreateRequest
		want string
	}{
		{"UnknownType", manual(func(r *assignment.CreateRequest) { r.Type = "jira" }), `type "jira" is not manual or servicenow`},
		{"OwnerMissing", manual(func(r *assignment.CreateRequest) { r.Owner = " " }), "owner is missing"},
		{"OwnerNotEmail", manual(func(r *assignment.CreateRequest) { r.Owner = "Alice <alice@example.com>" }),
			`owner "Alice <alice@example.com>" is not a plain e-mail address`},
		{"NoDueDate", manual(func(r *assignment.CreateRequest) { r.RemediationTimeframeDays = 0 }),
			"remediation_timeframe_days or due_date is required (CLI: --days or --due)"},
		{"DaysAndDueDate", manual(func(r *assignment.CreateRequest) { r.DueDate = due }),
			"give remediation_timeframe_days or due_date, not both (CLI: --days or --due)"},
		{"DaysOutOfRange", manual(func(r *assignment.CreateRequest) { r.RemediationTimeframeDays = 3651 }),
			"remediation_timeframe_days 3651 must be between 1 and 3650"},
		{"ETAWithoutJustification", manual(func(r *assignment.CreateRequest) { r.ETA = &eta }),
			"eta_justification is required when an eta is set (CLI: --justification)"},
		{"JustificationTooLong", manual(func(r *assignment.CreateRequest) { r.ETA, r.ETAJustification = &eta, strings.Repeat("x", 2001) }),
			"eta_justification is longer than 2000 characters"},
		{"TicketOnManual", manual(func(r *assignment.CreateRequest) {
			r.Ticket = &assignment.TicketRequest{Type: steward.TicketTypeIncident}
		}),
			"a ticket needs type servicenow"},
		{"ServiceNowWithETA", ticket(func(r *assignment.CreateRequest) { r.ETA, r.ETAJustification = &eta, "vendor" }),
			"eta can be set on a ServiceNow assignment once it exists (PATCH)"},
		{"ServiceNowWithoutTicketType", ticket(func(r *assignment.CreateRequest) { r.Ticket.Type = "" }),
			"ticket_type is required: incident, problem or change_request (CLI: --ticket)"},
		{"UnknownTicketType", ticket(func(r *assignment.CreateRequest) { r.Ticket.Type = "story" }),
			`unknown ticket type "story" (want incident, problem or change_request)`},
		{"AssigneeNotEmail", ticket(func(r *assignment.CreateRequest) { r.Owner = "beth" }), `assigned_to "beth" is not a plain e-mail address`},
		{"CallerNotEmail", ticket(func(r *assignment.CreateRequest) { r.Ticket.Caller = "beth" }), `caller "beth" is not a plain e-mail address`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.create(t, tc.req)
			storetest.RequireCode(t, err, steward.CodeInvalid)
			require.Equal(t, tc.want, steward.ErrorMessage(err))
		})
	}
	require.Zero(t, b.countAssignments(t), "nothing written")
}

func TestCreateManualRecordsRule(t *testing.T) {
	b := setup(t)
	asm := unhealthy(t, b.db, "/subscriptions/s1/vm1")
	before := time.Now()
	a, err := b.create(t, assignment.CreateRequest{AssessmentID: asm.ID, Owner: "alice@example.com", RemediationTimeframeDays: 14,
		Reason: "rule high-to-platform", RuleID: 42, RuleCondition: "severity in [High, Critical]"})
	require.NoError(t, err)
	require.Equal(t, steward.AssignmentManual, a.Type)
	require.Equal(t, steward.DueDate(before, 14), a.DueDate)
	require.Nil(t, a.Ticket)

	stored, err := b.db.FindAssignmentByID(t.Context(), a.ID)
	require.NoError(t, err)
	require.Equal(t, a, stored)
	require.Equal(t, int64(42), stored.RuleID)
	require.Equal(t, "severity in [High, Critical]", stored.RuleCondition)
	events, err := b.db.FindAssignmentEvents(t.Context(), a.ID)
	require.NoError(t, err)
	require.Len(t, events, 1)
	require.Equal(t, steward.ActionCreated, events[0].Action)
	require.Equal(t, "rule high-to-platform", events[0].Reason)
	require.Empty(t, b.jobs(t, jobs.CreateTicketArgs{}.Kind()))

	// A person's assignment names no rule, in storage and in JSON.
	other := unhealthy(t, b.db, "/subscriptions/s1/vm2")
	p, err := b.create(t, assignment.CreateRequest{AssessmentID: other.ID, Owner: "bob@example.com", DueDate: due})
	require.NoError(t, err)
	stored, err = b.db.FindAssignmentByID(t.Context(), p.ID)
	require.NoError(t, err)
	require.Zero(t, stored.RuleID)
	raw, err := json.Marshal(stored)
	require.NoError(t, err)
	require.NotContains(t, string(raw), "rule_")
}

func TestCreateServiceNowQueuesTicket(t *testing.T) {
	b := setup(t)
	asm := unhealthy(t, b.db, "/subscriptions/s1/vm1")
	a, err := b.create(t, assignment.CreateRequest{AssessmentID: asm.ID, Type: steward.AssignmentServiceNow, Owner: "beth@example.com",
		DueDate: due, Reason: "owns it", Ticket: &assignment.TicketRequest{Type: steward.TicketTypeIncident, Caller: "carol@example.com",
			Description: "Given by the caller"}})
	require.NoError(t, err)
	installation, err := b.db.InstallationID(t.Context())
	require.NoError(t, err)

	tk, err := b.db.FindTicketByAssignment(t.Context(), a.ID)
	require.NoError(t, err)
	require.Equal(t, steward.TicketPending, tk.Status)
	require.Equal(t, b.tk.in.ID, tk.IntegrationID)
	require.Equal(t, "x_incident", tk.Table)
	require.Equal(t, fmt.Sprintf("steward-%s-%d", installation, a.ID), tk.CorrelationID)
	require.Equal(t, fmt.Sprintf("incident for assignment %d", a.ID), tk.ShortDescription, "rendered once the assignment is stored")
	require.Equal(t, "Given by the caller", tk.Description, "a given text is kept")
	require.Equal(t, "carol@example.com", tk.CallerEmail)
	require.Equal(t, []int64{a.ID}, b.jobs(t, jobs.CreateTicketArgs{}.Kind()))

	audit, _, err := b.db.FindAuditEvents(t.Context(), store.AuditFilter{AssignmentID: a.ID})
	require.NoError(t, err)
	require.Len(t, audit, 1)
	require.Equal(t, assignment.AuditTicketRequested, audit[0].Action)
	require.Equal(t, "alice@example.com", audit[0].Actor)
	require.Equal(t, tk.CorrelationID, audit[0].Details["correlation_id"])

	// A second assignment on the same assessment is refused, and leaves
	// no ticket, audit or job behind.
	_, err = b.create(t, assignment.CreateRequest{AssessmentID: asm.ID, Type: steward.AssignmentServiceNow, Owner: "beth@example.com",
		DueDate: due, Ticket: &assignment.TicketRequest{Type: steward.TicketTypeIncident}})
	storetest.RequireCode(t, err, steward.CodeConflict)
	require.Equal(t, []int64{a.ID}, b.jobs(t, jobs.CreateTicketArgs{}.Kind()))
}

func TestCreateServiceNowWithoutRoute(t *testing.T) {
	b := setup(t)
	asm := unhealthy(t, b.db, "/subscriptions/s1/vm1")
	req := assignment.CreateRequest{AssessmentID: asm.ID, Type: steward.AssignmentServiceNow, Owner: "beth@example.com",
		DueDate: due, Ticket: &assignment.TicketRequest{Type: steward.TicketTypeIncident}}

	b.tk.routeErr = steward.Errorf(steward.CodeInvalid, "resource is outside the scope of every integration")
	_, err := b.create(t, req)
	require.Equal(t, "resource is outside the scope of every integration", steward.ErrorMessage(err))
	require.Zero(t, b.countAssignments(t))

	// Without a ticket system only manual assignments can be made.
	_, err = assignment.New(jobs.NewQueue(), nil).Create(t.Context(), nil, req, "alice@example.com")
	storetest.RequireCode(t, err, steward.CodeUnavailable)
}

func TestCreateInCallersTransaction(t *testing.T) {
	b := setup(t)
	var ids []int64
	for i := range 3 {
		ids = append(ids, unhealthy(t, b.db, fmt.Sprintf("/subscriptions/s1/vm%d", i)).ID)
	}
	// One transaction for a batch: a failure rolls every one back.
	boom := errors.New("boom")
	err := b.db.WithTx(t.Context(), func(tx *store.Tx) error {
		for _, id := range ids {
			if _, err := b.svc.Create(t.Context(), tx, assignment.CreateRequest{AssessmentID: id, Type: steward.AssignmentServiceNow,
				Owner: "beth@example.com", DueDate: due, Ticket: &assignment.TicketRequest{Type: steward.TicketTypeIncident}}, "rules"); err != nil {
				return err
			}
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.Zero(t, b.countAssignments(t))
	require.Empty(t, b.jobs(t, jobs.CreateTicketArgs{}.Kind()))
}

func TestUpdate(t *testing.T) {
	b := setup(t)
	manual, err := b.create(t, assignment.CreateRequest{AssessmentID: unhealthy(t, b.db, "/subscriptions/s1/vm1").ID,
		Owner: "alice@example.com", DueDate: due})
	require.NoError(t, err)
	snow, err := b.create(t, assignment.CreateRequest{AssessmentID: unhealthy(t, b.db, "/subscriptions/s1/vm2").ID,
		Type: steward.AssignmentServiceNow, Owner: "beth@example.com", DueDate: due, Ticket: &assignment.TicketRequest{Type: steward.TicketTypeIncident}})
	require.NoError(t, err)
	str := func(s string) *string { return &s }
	eta := due.Add(-24 * time.Hour)

	t.Run("Refused", func(t *testing.T) {
		// field is the request field the error names, for a form to show
		// the message at it.
		for _, tc := range []struct {
			name  string
			c     assignment.Change
			want  string
			field string
		}{
			{"OwnerNotEmail", assignment.Change{AssignmentUpdate: store.AssignmentUpdate{Owner: str("bob")}}, `owner "bob" is not a plain e-mail address`, "owner"},
			{"DaysAndDueDate", assignment.Change{AssignmentUpdate: store.AssignmentUpdate{DueDate: &due}, RemediationTimeframeDays: 3},
				"give remediation_timeframe_days or due_date, not both (CLI: --days or --due)", "due_date"},
			{"DaysOutOfRange", assignment.Change{RemediationTimeframeDays: -1},
				"remediation_timeframe_days -1 must be between 1 and 3650", "remediation_timeframe_days"},
			{"DueDateCleared", assignment.Change{AssignmentUpdate: store.AssignmentUpdate{DueDate: &time.Time{}}}, "due_date cannot be cleared", "due_date"},
			{"ETASetAndCleared", assignment.Change{AssignmentUpdate: store.AssignmentUpdate{ETA: &eta, ClearETA: true}},
				"eta cannot be set and cleared at once", ""},
			{"ETAWithoutJustification", assignment.Change{AssignmentUpdate: store.AssignmentUpdate{ETA: &eta}},
				"eta_justification is required when an eta is set (CLI: --justification)", "eta_justification"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := b.update(t, manual.ID, tc.c)
				storetest.RequireCode(t, err, steward.CodeInvalid)
				require.Equal(t, tc.want, steward.ErrorMessage(err))
				require.Equal(t, tc.field, steward.ErrorField(err))
			})
		}
		events, err := b.db.FindAssignmentEvents(t.Context(), manual.ID)
		require.NoError(t, err)
		require.Len(t, events, 1, "only created")
	})

	t.Run("ETAKeepsJustification", func(t *testing.T) {
		_, err := b.update(t, manual.ID, assignment.Change{AssignmentUpdate: store.AssignmentUpdate{ETA: &eta, ETAJustification: str("vendor patch")}})
		require.NoError(t, err)
		later := eta.Add(time.Hour)
		got, err := b.update(t, manual.ID, assignment.Change{AssignmentUpdate: store.AssignmentUpdate{ETA: &later}})
		require.NoError(t, err, "the stored justification covers a new ETA")
		require.Equal(t, later, *got.ETA)
		got, err = b.update(t, manual.ID, assignment.Change{RemediationTimeframeDays: 30})
		require.NoError(t, err)
		require.Equal(t, steward.DueDate(time.Now(), 30), got.DueDate)
	})

	t.Run("OwnerPush", func(t *testing.T) {
		_, err := b.update(t, manual.ID, assignment.Change{AssignmentUpdate: store.AssignmentUpdate{Owner: str("bob@example.com")}})
		require.NoError(t, err)
		require.Empty(t, b.jobs(t, jobs.UpdateOwnerArgs{}.Kind()), "a manual assignment has no ticket")

		_, err = b.update(t, snow.ID, assignment.Change{AssignmentUpdate: store.AssignmentUpdate{Owner: str("BETH@example.com")}})
		require.NoError(t, err)
		require.Empty(t, b.jobs(t, jobs.UpdateOwnerArgs{}.Kind()), "the same owner in another case")

		_, err = b.update(t, snow.ID, assignment.Change{AssignmentUpdate: store.AssignmentUpdate{Owner: str("abel@example.com")}, FromTicket: true})
		require.NoError(t, err)
		require.Empty(t, b.jobs(t, jobs.UpdateOwnerArgs{}.Kind()), "a change that came from the ticket is not pushed back")

		got, err := b.update(t, snow.ID, assignment.Change{AssignmentUpdate: store.AssignmentUpdate{Owner: str("don@example.com")}})
		require.NoError(t, err)
		require.Equal(t, "don@example.com", got.Owner)
		require.Equal(t, []int64{snow.ID}, b.jobs(t, jobs.UpdateOwnerArgs{}.Kind()))
	})
}

func TestEndAndAfterImport(t *testing.T) {
	b := setup(t)
	ctx := t.Context()
	removed, err := b.create(t, assignment.CreateRequest{AssessmentID: unhealthy(t, b.db, "/subscriptions/s1/vm1").ID,
		Type: steward.AssignmentServiceNow, Owner: "beth@example.com", DueDate: due, Ticket: &assignment.TicketRequest{Type: steward.TicketTypeIncident}})
	require.NoError(t, err)
	fixed, err := b.create(t, assignment.CreateRequest{AssessmentID: unhealthy(t, b.db, "/subscriptions/s1/vm2").ID,
		Type: steward.AssignmentServiceNow, Owner: "beth@example.com", DueDate: due, Ticket: &assignment.TicketRequest{Type: steward.TicketTypeIncident}})
	require.NoError(t, err)

	err = b.db.WithTx(ctx, func(tx *store.Tx) error {
		_, err := b.svc.End(ctx, tx, removed.ID, steward.AssignmentRemoved, "alice@example.com", "duplicate")
		return err
	})
	require.NoError(t, err)
	err = b.db.WithTx(ctx, func(tx *store.Tx) error {
		_, err := b.svc.End(ctx, tx, removed.ID, steward.AssignmentCompleted, "alice@example.com", "")
		return err
	})
	storetest.RequireCode(t, err, steward.CodeConflict)

	// An import that fixes both resources completes the active one and
	// queues the resolve of its ticket; the removed one's ticket is left
	// alone.
	err = b.db.WithTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ApplyObservations(ctx, []steward.Observation{
			storetest.Observation("r1", "/subscriptions/s1/vm1", steward.StatusHealthy),
			storetest.Observation("r1", "/subscriptions/s1/vm2", steward.StatusHealthy),
		}, time.Now())
		if err != nil {
			return err
		}
		require.Equal(t, []int64{fixed.ID}, res.CompletedAssignments)
		return b.svc.AfterImport(ctx, tx, res)
	})
	require.NoError(t, err)
	require.Empty(t, b.jobs(t, jobs.UpdateOwnerArgs{}.Kind()))
	require.Equal(t, []int64{fixed.ID}, b.jobs(t, jobs.ResolveTicketArgs{}.Kind()))

	// Without a job client an import queues nothing.
	err = b.db.WithTx(ctx, func(tx *store.Tx) error {
		return assignment.New(nil, nil).AfterImport(ctx, tx, store.ApplyResult{CompletedAssignments: []int64{fixed.ID}})
	})
	require.NoError(t, err)
	require.Equal(t, []int64{fixed.ID}, b.jobs(t, jobs.ResolveTicketArgs{}.Kind()))
}
