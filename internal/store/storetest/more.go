package storetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stretchr/testify/require"
)

// testMore covers the data access that other packages' tests exercise on
// SQLite only: tokens and sessions, rule runs, sources, ticket groups and
// the overview, so that every query runs on every backend.
func testMore(t *testing.T) {
	t.Parallel()

	t.Run("TokensAndSessions", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			ctx := t.Context()
			now := db.Now()
			hash := sha256.Sum256([]byte("token-secret"))
			var tok *steward.Token
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				var err error
				tok, err = tx.CreateToken(ctx, store.NewToken{Name: "ci", Role: steward.RoleReader, Scope: "/subscriptions/S1",
					SecretHash: hash[:], Prefix: "stw_ab"}, "admin")
				return err
			}))
			require.Equal(t, steward.Scope("/subscriptions/s1"), tok.Scope)
			got, err := db.FindTokenByHash(ctx, hash[:])
			require.NoError(t, err)
			require.Equal(t, tok.ID, got.ID)
			n, err := db.CountActiveTokens(ctx)
			require.NoError(t, err)
			require.Equal(t, 1, n)
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error { return tx.TouchToken(ctx, tok.ID, now) }))
			got, err = db.FindTokenByID(ctx, tok.ID)
			require.NoError(t, err)
			require.Equal(t, now.Truncate(time.Microsecond), *got.LastUsedAt)

			shash := sha256.Sum256([]byte("session-secret"))
			s := &store.Session{TokenID: tok.ID, Name: "ci", Role: steward.RoleReader, ExpiresAt: now.Add(time.Hour)}
			require.NoError(t, db.CreateSession(ctx, s, shash[:]))
			found, err := db.FindSessionByHash(ctx, shash[:])
			require.NoError(t, err)
			require.Equal(t, s.ID, found.ID)
			require.Equal(t, tok.ID, found.TokenID)
			require.NoError(t, db.DeleteSession(ctx, s.ID))
			_, err = db.FindSessionByHash(ctx, shash[:])
			RequireCode(t, err, steward.CodeNotFound)

			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				_, err := tx.RevokeToken(ctx, 0, "ci", "admin")
				return err
			}))
			n, err = db.CountActiveTokens(ctx)
			require.NoError(t, err)
			require.Zero(t, n)
		})
	})

	t.Run("RulesAndRuns", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			ctx := t.Context()
			Apply(t, db, t0,
				Observation("r1", "/subscriptions/s1/vm1", steward.StatusUnhealthy),
				Observation("r1", "/subscriptions/s2/vm2", steward.StatusUnhealthy),
				Observation("r2", "/subscriptions/s1/vm1", steward.StatusHealthy))
			rule := func(name string, prio int) *steward.Rule {
				return &steward.Rule{Name: name, Scope: "/subscriptions/s1", Priority: prio, Enabled: true,
					When:  []steward.ConditionSet{{Severity: []steward.Severity{steward.SeverityHigh}}},
					Owner: steward.OwnerSource{Email: "o@example.com"}, DueInDays: 7}
			}
			a, b := rule("A", 1), rule("B", 2)
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				return tx.ApplyRules(ctx, store.RuleChanges{Create: []*steward.Rule{a, b}}, "admin")
			}))
			// Swapping priorities in one step is no clash.
			a.Priority, b.Priority = 2, 1
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				return tx.ApplyRules(ctx, store.RuleChanges{Update: []*steward.Rule{a, b}}, "admin")
			}))
			got, err := db.FindRule(ctx, " a ")
			require.NoError(t, err)
			require.Equal(t, 2, got.Priority)

			total, err := db.CountUnhealthyInScope(ctx, a.Scope)
			require.NoError(t, err)
			require.Equal(t, 1, total)
			targets, err := db.UnhealthyInScope(ctx, "/", 0, 10)
			require.NoError(t, err)
			require.Len(t, targets, 2)
			var unassigned []int64
			require.NoError(t, db.ForEachUnassignedUnhealthy(ctx, "/subscriptions/s2",
				func(a *steward.Assessment, _ *steward.Resource, _ *steward.Recommendation) error {
					unassigned = append(unassigned, a.ID)
					return nil
				}))
			require.Equal(t, []int64{targets[1].AssessmentID}, unassigned)

			run := &store.RuleRun{RuleID: a.ID, RuleName: a.Name, Override: true, RequestedBy: "admin"}
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error { return tx.CreateRuleRun(ctx, run) }))
			run.State, run.Total = store.RuleRunRunning, total
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error { return tx.UpdateRuleRun(ctx, run) }))
			run.State, run.Scanned, run.Skipped = store.RuleRunSucceeded, 1, map[string]int{"no_owner": 1}
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error { return tx.UpdateRuleRun(ctx, run) }))
			stored, err := db.FindRuleRun(ctx, a.ID, run.ID)
			require.NoError(t, err)
			require.True(t, stored.Override)
			require.True(t, stored.Done())
			require.Equal(t, map[string]int{"no_owner": 1}, stored.Skipped)
			require.NotNil(t, stored.StartedAt)
			require.NotNil(t, stored.FinishedAt)
			byID, err := db.FindRuleRunByID(ctx, run.ID)
			require.NoError(t, err)
			require.Equal(t, stored, byID)
			runs, err := db.FindRuleRuns(ctx, a.ID, 5)
			require.NoError(t, err)
			require.Len(t, runs, 1)

			// A failure inside a savepoint is undone; the transaction goes on.
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				err := tx.Savepoint(ctx, func() error {
					if err := tx.CreateRule(ctx, rule("C", 3), "admin"); err != nil {
						return err
					}
					return tx.CreateRule(ctx, rule("c", 4), "admin") // the name is taken
				})
				RequireCode(t, err, steward.CodeConflict)
				return tx.CreateRule(ctx, rule("D", 5), "admin")
			}))
			rules, err := db.FindRules(ctx)
			require.NoError(t, err)
			var names []string
			for _, r := range rules {
				names = append(names, r.Name)
			}
			require.Equal(t, []string{"B", "A", "D"}, names)
		})
	})

	t.Run("Sources", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			ctx := t.Context()
			db.Now = func() time.Time { return t0 }
			src := &store.SourceRecord{Source: steward.Source{Name: "src", Kind: "test", Scope: "/subscriptions/s1", Enabled: true,
				Settings: []byte(`{}`)}, ScheduleEvery: time.Hour}
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error { return tx.CreateSource(ctx, src, nil, "admin") }))
			var due []*store.SourceRecord
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				var err error
				if due, err = tx.DueSources(ctx, t0); err != nil {
					return err
				}
				return tx.SetSourceNextRun(ctx, src.ID, t1)
			}))
			require.Len(t, due, 1)
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				var err error
				due, err = tx.DueSources(ctx, t0)
				return err
			}))
			require.Empty(t, due, "not due before its next run")
			var pulls [2]int64
			for i := range pulls {
				require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
					var err error
					pulls[i], err = tx.NextSourcePull(ctx, src.ID)
					return err
				}))
			}
			require.Equal(t, [2]int64{1, 2}, pulls)

			stale := *src // a second admin's copy, read before the first saves
			src.Name, src.Enabled = "renamed", false
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				return tx.UpdateSource(ctx, src, []string{"name", "enabled"}, nil, "admin")
			}))
			stale.Scope = "/subscriptions/s2"
			err := db.WithTx(ctx, func(tx *store.Tx) error {
				return tx.UpdateSource(ctx, &stale, []string{"scope"}, nil, "admin2")
			})
			RequireCode(t, err, steward.CodeConflict) // not a lost update, even within one clock tick
			require.ErrorContains(t, err, "changed or deleted by someone else meanwhile")
			all, err := db.FindSources(ctx)
			require.NoError(t, err)
			require.Len(t, all, 1)
			require.Equal(t, "renamed", all[0].Name)
			require.Equal(t, steward.Scope("/subscriptions/s1"), all[0].Scope, "the stale copy changed nothing")
			require.False(t, all[0].Enabled)
			require.Nil(t, all[0].NextRunAt)

			run := &steward.SourceRun{SourceID: src.ID, RequestedBy: "admin"}
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error { return tx.CreateSourceRun(ctx, run) }))
			got, err := db.FindSourceRun(ctx, src.ID, run.ID)
			require.NoError(t, err)
			require.Equal(t, steward.SourceRunQueued, got.State)
			_, err = db.FindSourceRun(ctx, src.ID+1, run.ID)
			RequireCode(t, err, steward.CodeNotFound)

			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error { return tx.DeleteSource(ctx, src, "admin") }))
			_, err = db.FindSource(ctx, "renamed")
			RequireCode(t, err, steward.CodeNotFound)
		})
	})

	t.Run("TicketGroups", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			ctx := t.Context()
			in := Integration(t, db, "sn", "/")
			rule := &steward.Rule{Name: "grouped", Scope: "/", Priority: 1, Enabled: true,
				When:  []steward.ConditionSet{{Severity: []steward.Severity{steward.SeverityHigh}}},
				Owner: steward.OwnerSource{Email: "o@example.com"}, DueInDays: 7,
				Ticket: &steward.RuleTicket{Integration: "sn", GroupBy: "recommendation"}}
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error { return tx.CreateRule(ctx, rule, "admin") }))
			var members []int64
			var groupID int64
			for i := range 3 {
				asm := Assessment(t, db, "r1", fmt.Sprintf("/subscriptions/s1/vm%d", i), steward.StatusUnhealthy)
				a := &steward.Assignment{AssessmentID: asm.ID, Type: steward.AssignmentServiceNow, Owner: "o@example.com",
					DueDate: t1, RuleID: rule.ID}
				require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
					if err := tx.CreateAssignment(ctx, a, "rule:grouped", ""); err != nil {
						return err
					}
					id, leader, err := tx.JoinTicketGroup(ctx, a.ID, rule.ID)
					if err != nil {
						return err
					}
					require.Equal(t, i == 0, leader)
					groupID = id
					if leader {
						return tx.CreateTicket(ctx, &steward.Ticket{AssignmentID: a.ID, IntegrationID: in.ID, Type: steward.TicketTypeIncident,
							Table: "incident", CorrelationID: fmt.Sprintf("g-%d", id), ShortDescription: "s", Description: "d", GroupID: id})
					}
					return nil
				}))
				members = append(members, a.ID)
			}
			got, err := db.GroupMembers(ctx, groupID)
			require.NoError(t, err)
			require.Len(t, got, 3)
			require.Equal(t, members[0], got[2].Ticket.AssignmentID, "members read the leader's ticket")
			open, err := db.OpenTicketGroups(ctx)
			require.NoError(t, err)
			require.Equal(t, map[string]map[string]bool{"grouped": {"r1": true}}, open)

			_, err = db.RecordGroupTicketCreated(ctx, members[0], &steward.Ticket{SysID: "sys-g", Number: "INC9"}, members)
			require.NoError(t, err)
			listed, err := db.ListedInGroup(ctx, members[2])
			require.NoError(t, err)
			require.True(t, listed)
			view, err := db.FindTicketView(ctx, members[0])
			require.NoError(t, err)
			require.Equal(t, "INC9", view.Number)
			require.NoError(t, db.TouchTicketsSynced(ctx, members[:1]))

			// The first fix is noted on the open ticket; the last closes
			// the group.
			var fixed []int64
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				if _, err := tx.EndAssignment(ctx, members[1], steward.AssignmentCompleted, "system", "fixed"); err != nil {
					return err
				}
				var err error
				fixed, err = tx.GroupMembersFixed(ctx, members[1:2])
				if err != nil {
					return err
				}
				return tx.CloseEmptyTicketGroups(ctx, members[1:2])
			}))
			require.Equal(t, members[1:2], fixed)
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				for _, id := range []int64{members[0], members[2]} {
					if _, err := tx.EndAssignment(ctx, id, steward.AssignmentCompleted, "system", "fixed"); err != nil {
						return err
					}
				}
				return tx.CloseEmptyTicketGroups(ctx, members)
			}))
			open, err = db.OpenTicketGroups(ctx)
			require.NoError(t, err)
			require.Empty(t, open)
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error { return tx.CloseTicketGroup(ctx, groupID) }))
		})
	})

	t.Run("OverviewAndLookups", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			ctx := t.Context()
			Apply(t, db, t0,
				Observation("r1", "/subscriptions/s1/vm1", steward.StatusUnhealthy),
				WithCloud(Observation("r1", "/subscriptions/s2/vm2", steward.StatusUnhealthy), steward.CloudAWS),
				Observation("r2", "/subscriptions/s1/vm1", steward.StatusHealthy))
			// A resource's cloud that changes marks its recommendations'
			// summaries stale.
			res := Apply(t, db, t1, WithCloud(Observation("r2", "/subscriptions/s2/vm2", steward.StatusHealthy), steward.CloudAzure))
			require.Equal(t, []string{"r1", "r2"}, res.ChangedRecommendations)
			require.NoError(t, db.RecomputeRecommendationSummaries(ctx, nil))

			asms, _, err := db.FindAssessments(ctx, store.AssessmentFilter{RecommendationKey: "r1"})
			require.NoError(t, err)
			require.Len(t, asms, 2)
			Assignment(t, db, asms[0].ID, "o@example.com", t0.Add(-time.Hour))
			active, err := db.ActiveAssignmentsOf(ctx, []int64{asms[0].ID, asms[1].ID})
			require.NoError(t, err)
			require.Len(t, active, 1)

			ov, err := db.FindOverview(ctx, "", t0, 24*time.Hour)
			require.NoError(t, err)
			require.Equal(t, []steward.UnhealthyCount{{Severity: steward.SeverityHigh, Cloud: steward.CloudAzure, Count: 2}}, ov.Unhealthy)
			require.Equal(t, steward.AssignmentCounts{Active: 1, Overdue: 1}, ov.Assignments)
			ov, err = db.FindOverview(ctx, "/subscriptions/s2", t0, 24*time.Hour)
			require.NoError(t, err)
			require.Equal(t, []steward.UnhealthyCount{{Severity: steward.SeverityHigh, Cloud: steward.CloudAzure, Count: 1}}, ov.Unhealthy)
			require.Zero(t, ov.Assignments.Active)

			rec, err := db.FindRecommendationInScope(ctx, "r1", "/subscriptions/s2")
			require.NoError(t, err)
			require.Equal(t, 1, rec.Unhealthy)
			_, err = db.FindRecommendationInScope(ctx, "r2", "/subscriptions/s3")
			RequireCode(t, err, steward.CodeNotFound)
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				r, err := tx.FindResourceByID(ctx, "/SUBSCRIPTIONS/S2/VM2")
				if err == nil {
					require.Equal(t, steward.CloudAzure, r.Cloud)
				}
				_, rerr := tx.FindRecommendationByKey(ctx, "r2")
				return errors.Join(err, rerr)
			}))
		})
	})
}
