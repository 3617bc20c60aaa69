package storetest

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stretchr/testify/require"
)

var (
	t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Hour)
	t2 = t0.Add(2 * time.Hour)
)

// Run is the behaviour suite every backend must pass.
func Run(t *testing.T) {
	t.Run("Open", testOpen)
	t.Run("Ingest", testIngest)
	t.Run("Scope", testScope)
	t.Run("Pagination", testPagination)
	t.Run("Recommendations", testRecommendations)
	t.Run("Assignments", testAssignments)
	t.Run("Imports", testImports)
	t.Run("Integrations", testIntegrations)
	t.Run("Tickets", testTickets)
	t.Run("Audit", testAudit)
	t.Run("Sync", testSync)
	t.Run("Races", testRaces)
	t.Run("More", testMore)
	t.Run("Notifications", testNotifications)
	t.Run("GovernanceHistory", testGovernanceHistory)
	t.Run("GovernanceTables", testGovernanceTables)
}

func testOpen(t *testing.T) {
	t.Parallel()

	t.Run("MigrationsIdempotentOnReopen", func(t *testing.T) {
		t.Parallel()
		ForEachBackendURL(t, func(t *testing.T, backend Backend, url string) {
			reopen := url
			if backend == SQLite {
				reopen = filepath.Join(t.TempDir(), "nested", "dir", "steward.db") // parent created
				url = "sqlite:" + reopen
			}
			db, err := store.Open(t.Context(), url, Logger(t))
			require.NoError(t, err)
			require.NoError(t, db.Ready(t.Context()))
			Apply(t, db, t0, Observation("r1", "/subscriptions/s1/vm1", steward.StatusUnhealthy))
			require.NoError(t, db.Close())

			for range 2 {
				db, err = store.Open(t.Context(), reopen, Logger(t))
				require.NoError(t, err)
				require.NoError(t, db.Ready(t.Context()))
				var n int
				require.NoError(t, db.Writer().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM assessment`).Scan(&n))
				require.Equal(t, 1, n, "data survives reopening")
				require.NoError(t, db.Close())
			}
		})
	})

	t.Run("FileURI", func(t *testing.T) {
		t.Parallel()
		MustOpenURL(t, "file:"+filepath.Join(t.TempDir(), "steward.db")+"?cache=private")
	})

	t.Run("RiverTablesExist", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			for _, table := range []string{"river_job", "river_queue", "river_leader", "river_migration"} {
				var n int
				require.NoError(t, db.Writer().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM `+table).Scan(&n), table)
			}
			require.NoError(t, db.Ready(t.Context()))
			leader, err := db.IsJobLeader(t.Context(), "nobody")
			require.NoError(t, err)
			require.False(t, leader)
			n, err := db.RescueOrphanedJobs(t.Context(), "nobody")
			require.NoError(t, err)
			require.Zero(t, n, "no job is running")
		})
	})

	t.Run("BadURLs", func(t *testing.T) {
		t.Parallel()
		for _, url := range []string{":memory:", "", "postgres://u@127.0.0.1:1/db?pool_max_conns=x", "postgres://u@127.0.0.1:%zz/db"} {
			_, err := store.Open(t.Context(), url, Logger(t))
			RequireCode(t, err, steward.CodeInvalid)
		}
	})

	t.Run("PostgresUnreachable", func(t *testing.T) {
		t.Parallel()
		// Port 1 on loopback: refused at once, never off this machine.
		_, err := store.Open(t.Context(), "postgres://steward:hunter2@127.0.0.1:1/steward?connect_timeout=2", Logger(t))
		RequireCode(t, err, steward.CodeUnavailable)
		require.NotContains(t, err.Error(), "hunter2", "the password stays out of errors")
	})

	t.Run("InjectedClock", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			db.Now = func() time.Time { return t2 }
			asm := Assessment(t, db, "r1", "/subscriptions/s1/vm1", steward.StatusUnhealthy)
			require.Equal(t, t2, asm.FirstSeen, "zero at and ObservedAt fall back to db.Now")
			a := Assignment(t, db, asm.ID, "o@example.com", t2.Add(24*time.Hour))
			require.Equal(t, t2, a.CreatedAt)
		})
	})
}

func testIngest(t *testing.T) {
	t.Parallel()

	obs := func() []steward.Observation {
		return []steward.Observation{
			Observation("r1", "/subscriptions/s1/vm1", steward.StatusUnhealthy),
			Observation("r1", "/subscriptions/s1/vm2", steward.StatusHealthy),
			Observation("r2", "/subscriptions/s1/vm1", steward.StatusNotApplicable),
		}
	}

	t.Run("CreatedOnFirstSight", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			res := Apply(t, db, t0, obs()...)
			require.Equal(t, store.ApplyResult{
				Observations: 3, AssessmentsCreated: 3, ResourcesCreated: 2, RecommendationsCreated: 2,
				ChangedRecommendations: []string{"r1", "r2"},
			}, res)

			r, err := db.FindResourceByID(t.Context(), "/SUBSCRIPTIONS/S1/VM1/")
			require.NoError(t, err)
			require.Equal(t, "/subscriptions/s1/vm1", r.ID)
			require.Equal(t, "vm1", r.Name)
			require.Equal(t, steward.CloudAzure, r.Cloud)
			require.Equal(t, t0, r.FirstSeen)

			rec, err := db.FindRecommendationByKey(t.Context(), "r1")
			require.NoError(t, err)
			require.Equal(t, "Recommendation r1", rec.DisplayName)
			require.Equal(t, steward.SeverityHigh, rec.Severity)

			got, _, err := db.FindAssessments(t.Context(), store.AssessmentFilter{RecommendationKey: "r1"})
			require.NoError(t, err)
			require.Len(t, got, 2)
			a := got[0]
			require.Equal(t, "/subscriptions/s1/vm1", a.ResourceID)
			require.Equal(t, steward.StatusUnhealthy, a.Status)
			require.Equal(t, steward.SeverityHigh, a.Severity)
			require.Equal(t, steward.CloudAzure, a.Cloud)
			require.Equal(t, "vm1", a.ResourceName)
			require.Equal(t, "microsoft.compute/virtualmachines", a.ResourceType)
			require.Equal(t, t0, a.FirstSeen)
			require.Equal(t, t0, a.LastSeen)
			require.Equal(t, t0, a.StatusChangedAt)

			_, err = db.FindResourceByID(t.Context(), "/subscriptions/nope")
			RequireCode(t, err, steward.CodeNotFound)
			_, err = db.FindRecommendationByKey(t.Context(), "nope")
			RequireCode(t, err, steward.CodeNotFound)
			_, err = db.FindAssessmentByID(t.Context(), 9999)
			RequireCode(t, err, steward.CodeNotFound)
		})
	})

	t.Run("ReapplyIdenticalChangesNothing", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			Apply(t, db, t0, obs()...)
			before, _, err := db.FindAssessments(t.Context(), store.AssessmentFilter{})
			require.NoError(t, err)

			res := Apply(t, db, t0, obs()...)
			require.Equal(t, store.ApplyResult{Observations: 3, Unchanged: 3}, res)

			after, _, err := db.FindAssessments(t.Context(), store.AssessmentFilter{})
			require.NoError(t, err)
			require.Equal(t, before, after)
			for _, a := range after {
				changes, err := db.FindStatusChanges(t.Context(), a.ID)
				require.NoError(t, err)
				require.Empty(t, changes)
			}
			rs, _, err := db.FindResources(t.Context(), store.ResourceFilter{})
			require.NoError(t, err)
			require.Len(t, rs, 2)
		})
	})

	t.Run("StatusChangeRecorded", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			Apply(t, db, t0, obs()...)
			res := Apply(t, db, t1, Observation("r1", "/subscriptions/s1/vm1", steward.StatusHealthy))
			require.Equal(t, store.ApplyResult{Observations: 1, StatusChanged: 1, ChangedRecommendations: []string{"r1"}}, res)

			got, _, err := db.FindAssessments(t.Context(), store.AssessmentFilter{ResourceID: "/subscriptions/s1/vm1", RecommendationKey: "r1"})
			require.NoError(t, err)
			require.Len(t, got, 1)
			require.Equal(t, steward.StatusHealthy, got[0].Status)
			require.Equal(t, t1, got[0].StatusChangedAt)
			require.Equal(t, t1, got[0].LastSeen)
			require.Equal(t, t0, got[0].FirstSeen)

			changes, err := db.FindStatusChanges(t.Context(), got[0].ID)
			require.NoError(t, err)
			require.Equal(t, []store.StatusChange{{From: steward.StatusUnhealthy, To: steward.StatusHealthy, At: t1}}, changes)

			// An observation older than what is stored does not turn it back.
			res = Apply(t, db, t0, Observation("r1", "/subscriptions/s1/vm1", steward.StatusUnhealthy))
			require.Equal(t, store.ApplyResult{Observations: 1, Unchanged: 1}, res)

			// ObservedAt wins over the call's time; a newer sighting only moves last_seen.
			o := Observation("r1", "/subscriptions/s1/vm1", steward.StatusHealthy)
			o.ObservedAt = t2
			res = Apply(t, db, t0, o)
			require.Equal(t, store.ApplyResult{Observations: 1, Unchanged: 1}, res)
			a, err := db.FindAssessmentByID(t.Context(), got[0].ID)
			require.NoError(t, err)
			require.Equal(t, t2, a.LastSeen)
			require.Equal(t, t1, a.StatusChangedAt)
			_, err = db.FindStatusChanges(t.Context(), 9999)
			RequireCode(t, err, steward.CodeNotFound)
		})
	})

	t.Run("DuplicatesInChunkLastWins", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			res := Apply(t, db, t0,
				Observation("r1", "/subscriptions/s1/vm1", steward.StatusUnhealthy),
				Observation("r1", "/SUBSCRIPTIONS/S1/VM1", steward.StatusHealthy),
			)
			require.Equal(t, 2, res.Observations)
			require.Equal(t, 1, res.AssessmentsCreated)
			require.Equal(t, 1, res.Unchanged)
			require.Equal(t, 1, res.ResourcesCreated)
			got, _, err := db.FindAssessments(t.Context(), store.AssessmentFilter{})
			require.NoError(t, err)
			require.Len(t, got, 1)
			require.Equal(t, steward.StatusHealthy, got[0].Status)
		})
	})

	t.Run("FieldsUpdatedWhenTheyChange", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			Apply(t, db, t0, Observation("r1", "/subscriptions/s1/vm1", steward.StatusUnhealthy))
			o := WithCloud(WithSeverity(Observation("r1", "/subscriptions/s1/vm1", steward.StatusUnhealthy), steward.SeverityCritical), steward.CloudAzure)
			o.Recommendation.DisplayName = "Renamed"
			o.Resource.Tags = map[string]string{"owner": "a@example.com"}
			o.Resource.Name = ""
			res := Apply(t, db, t0, o)
			require.Equal(t, 1, res.Unchanged)
			rec, err := db.FindRecommendationByKey(t.Context(), "r1")
			require.NoError(t, err)
			require.Equal(t, "Renamed", rec.DisplayName)
			require.Equal(t, steward.SeverityCritical, rec.Severity)
			r, err := db.FindResourceByID(t.Context(), "/subscriptions/s1/vm1")
			require.NoError(t, err)
			require.Equal(t, "vm1", r.Name, "an empty field does not erase a known one")
			require.Equal(t, map[string]string{"owner": "a@example.com"}, r.Tags)
			got, _, err := db.FindAssessments(t.Context(), store.AssessmentFilter{Severities: []steward.Severity{steward.SeverityCritical}})
			require.NoError(t, err)
			require.Len(t, got, 1, "severity copy on assessments follows the recommendation")
		})
	})

	t.Run("FailedTxLeavesStoreUnchanged", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			Apply(t, db, t0, Observation("r1", "/subscriptions/s1/vm1", steward.StatusUnhealthy))
			boom := errors.New("boom")
			err := db.WithTx(t.Context(), func(tx *store.Tx) error {
				_, err := tx.ApplyObservations(t.Context(), []steward.Observation{
					Observation("r1", "/subscriptions/s1/vm1", steward.StatusHealthy),
					Observation("r2", "/subscriptions/s1/vm2", steward.StatusUnhealthy),
				}, t1)
				require.NoError(t, err)
				return boom
			})
			require.ErrorIs(t, err, boom)

			require.Panics(t, func() {
				_ = db.WithTx(t.Context(), func(tx *store.Tx) error {
					_, err := tx.ApplyObservations(t.Context(), []steward.Observation{Observation("r3", "/subscriptions/s1/vm3", steward.StatusUnhealthy)}, t1)
					require.NoError(t, err)
					panic("boom")
				})
			})

			bad := Observation("r4", "/subscriptions/s1/vm4", steward.StatusUnhealthy)
			bad.Status = "Broken"
			err = db.WithTx(t.Context(), func(tx *store.Tx) error {
				_, err := tx.ApplyObservations(t.Context(), []steward.Observation{Observation("r4", "/subscriptions/s1/vm5", steward.StatusUnhealthy), bad}, t1)
				return err
			})
			RequireCode(t, err, steward.CodeInvalid)
			require.Contains(t, steward.ErrorMessage(err), "record 2")

			got, _, err := db.FindAssessments(t.Context(), store.AssessmentFilter{})
			require.NoError(t, err)
			require.Len(t, got, 1)
			require.Equal(t, steward.StatusUnhealthy, got[0].Status)
			rs, _, err := db.FindResources(t.Context(), store.ResourceFilter{})
			require.NoError(t, err)
			require.Len(t, rs, 1)
			recs, _, err := db.FindRecommendations(t.Context(), store.RecommendationFilter{})
			require.NoError(t, err)
			require.Len(t, recs, 1)
		})
	})
}

func testScope(t *testing.T) {
	t.Parallel()
	ForEachBackend(t, func(t *testing.T, db *store.DB) {
		ids := []string{
			"/subscriptions/s1",
			"/subscriptions/s1/resourceGroups/rg1/vm1",
			"/SUBSCRIPTIONS/S1/resourceGroups/RG2/vm2",
			"/subscriptions/s10/resourceGroups/rg1/vm3",
			"/subscriptions/s1-x/vm4",
			"/subscriptions/s2/vm5",
		}
		var obs []steward.Observation
		for _, id := range ids {
			obs = append(obs, Observation("r1", id, steward.StatusUnhealthy))
		}
		obs = append(obs, Observation("r2", "/subscriptions/s10/resourceGroups/rg1/vm3", steward.StatusUnhealthy))
		Apply(t, db, t0, obs...)

		want := func(idx ...int) []string {
			var out []string
			for _, i := range idx {
				out = append(out, steward.NormalizeResourceID(ids[i]))
			}
			slices.Sort(out)
			return out
		}
		tests := []struct {
			scope steward.Scope
			want  []string
		}{
			{"/subscriptions/s1", want(0, 1, 2)},
			{"/Subscriptions/S1/", want(0, 1, 2)},
			{"/subscriptions/s1/resourcegroups/rg1", want(1)},
			{"/subscriptions/s10", want(3)},
			{"/subscriptions/s", nil},
			{"", want(0, 1, 2, 3, 4, 5)},
			{"/", want(0, 1, 2, 3, 4, 5)},
		}
		for _, tt := range tests {
			asms, _, err := db.FindAssessments(t.Context(), store.AssessmentFilter{Scope: tt.scope, RecommendationKey: "r1"})
			require.NoError(t, err)
			var got []string
			for _, a := range asms {
				require.True(t, tt.scope.Contains(a.ResourceID), "%s in %s", a.ResourceID, tt.scope)
				got = append(got, steward.NormalizeResourceID(a.ResourceID))
			}
			slices.Sort(got)
			require.Equal(t, tt.want, got, "assessments in scope %q", tt.scope)

			rs, _, err := db.FindResources(t.Context(), store.ResourceFilter{Scope: tt.scope})
			require.NoError(t, err)
			got = nil
			for _, r := range rs {
				got = append(got, steward.NormalizeResourceID(r.ID))
			}
			require.Equal(t, tt.want, got, "resources in scope %q", tt.scope)
		}

		// Scoped listings are as fresh as the last recompute.
		require.NoError(t, db.RecomputeRecommendationSummaries(t.Context(), nil))
		recs, _, err := db.FindRecommendations(t.Context(), store.RecommendationFilter{Scope: "/subscriptions/S1"})
		require.NoError(t, err)
		require.Len(t, recs, 1, "r2 has nothing in s1")
		require.Equal(t, "r1", recs[0].Key)
		require.Equal(t, 3, recs[0].Unhealthy)

		recs, _, err = db.FindRecommendations(t.Context(), store.RecommendationFilter{Scope: "/subscriptions/s10"})
		require.NoError(t, err)
		require.Len(t, recs, 2)
	})
}

// walk collects every page of a listing, checking that each page but the
// last is full and that the cursor ends.
func walk[T any](t *testing.T, limit int, page func(cursor string) ([]T, string, error)) []T {
	t.Helper()
	var all []T
	cursor := ""
	for i := 0; ; i++ {
		require.Less(t, i, 1000, "pagination does not end")
		got, next, err := page(cursor)
		require.NoError(t, err)
		all = append(all, got...)
		if next == "" {
			require.LessOrEqual(t, len(got), limit)
			return all
		}
		require.Len(t, got, limit)
		cursor = next
	}
}

func testPagination(t *testing.T) {
	t.Parallel()
	ForEachBackend(t, func(t *testing.T, db *store.DB) {
		var obs []steward.Observation
		sevs := []steward.Severity{steward.SeverityLow, steward.SeverityHigh, steward.SeverityCritical, steward.SeverityMedium}
		for r := range 9 {
			for i := range 11 {
				status := steward.StatusUnhealthy
				if (r+i)%3 == 0 {
					status = steward.StatusHealthy
				}
				sub := "s1"
				if i%2 == 0 {
					sub = "s2"
				}
				o := WithSeverity(Observation(fmt.Sprintf("rec-%02d", r), fmt.Sprintf("/subscriptions/%s/vm%02d", sub, i), status), sevs[r%4])
				obs = append(obs, o)
			}
		}
		Apply(t, db, t0, obs...)
		require.NoError(t, db.RecomputeRecommendationSummaries(t.Context(), nil))

		// Assessments, filtered.
		all, _, err := db.FindAssessments(t.Context(), store.AssessmentFilter{Limit: 500})
		require.NoError(t, err)
		require.Len(t, all, 99)
		var want []int64
		for _, a := range all {
			if a.Status == steward.StatusUnhealthy && steward.Scope("/subscriptions/s1").Contains(a.ResourceID) {
				want = append(want, a.ID)
			}
		}
		got := walk(t, 4, func(c string) ([]*steward.Assessment, string, error) {
			return db.FindAssessments(t.Context(), store.AssessmentFilter{Statuses: []steward.AssessmentStatus{steward.StatusUnhealthy},
				Scope: "/subscriptions/s1", Cursor: c, Limit: 4})
		})
		var gotIDs []int64
		for _, a := range got {
			gotIDs = append(gotIDs, a.ID)
		}
		require.Equal(t, want, gotIDs)

		// One recommendation's assessments of a status, paged (in resource
		// order): each exactly once; a cursor of the unfiltered listing is
		// refused here.
		var wantRec []int64
		for _, a := range all {
			if a.RecommendationKey == "rec-03" && a.Status == steward.StatusHealthy {
				wantRec = append(wantRec, a.ID)
			}
		}
		require.NotEmpty(t, wantRec)
		gotRec := walk(t, 2, func(c string) ([]*steward.Assessment, string, error) {
			return db.FindAssessments(t.Context(), store.AssessmentFilter{RecommendationKey: "rec-03",
				Statuses: []steward.AssessmentStatus{steward.StatusHealthy}, Cursor: c, Limit: 2})
		})
		var gotRecIDs []int64
		for _, a := range gotRec {
			require.Equal(t, "rec-03", a.RecommendationKey)
			gotRecIDs = append(gotRecIDs, a.ID)
		}
		require.ElementsMatch(t, wantRec, gotRecIDs)
		_, idCursor, err := db.FindAssessments(t.Context(), store.AssessmentFilter{Limit: 1})
		require.NoError(t, err)
		_, _, err = db.FindAssessments(t.Context(), store.AssessmentFilter{RecommendationKey: "rec-03", Cursor: idCursor})
		RequireCode(t, err, steward.CodeInvalid)

		// Resources.
		rs := walk(t, 3, func(c string) ([]*steward.Resource, string, error) {
			return db.FindResources(t.Context(), store.ResourceFilter{Cloud: steward.CloudAzure, Cursor: c, Limit: 3})
		})
		require.Len(t, rs, 11)

		// Recommendations: summary path and scoped path, same order.
		keysOf := func(recs []*store.RecommendationSummary) []string {
			var out []string
			for _, r := range recs {
				out = append(out, r.Key)
			}
			return out
		}
		full, _, err := db.FindRecommendations(t.Context(), store.RecommendationFilter{})
		require.NoError(t, err)
		require.Len(t, full, 9)
		require.True(t, slices.IsSortedFunc(full, func(a, b *store.RecommendationSummary) int {
			if a.Severity.Rank() != b.Severity.Rank() {
				return b.Severity.Rank() - a.Severity.Rank()
			}
			return compareStrings(a.Key, b.Key)
		}), "severity desc, key asc: %v", keysOf(full))
		for _, f := range []store.RecommendationFilter{
			{},
			{Scope: "/subscriptions"},
			{Status: steward.StatusHealthy},
			{Scope: "/subscriptions/s2", Status: steward.StatusHealthy},
			{Cloud: steward.CloudAzure},
			{Severities: []steward.Severity{steward.SeverityHigh, steward.SeverityLow}},
		} {
			pages := walk(t, 2, func(c string) ([]*store.RecommendationSummary, string, error) {
				f := f
				f.Cursor, f.Limit = c, 2
				return db.FindRecommendations(t.Context(), f)
			})
			f.Limit = 500
			one, next, err := db.FindRecommendations(t.Context(), f)
			require.NoError(t, err)
			require.Empty(t, next)
			require.Equal(t, keysOf(one), keysOf(pages), "filter %+v", f)
			require.NotEmpty(t, one)
		}

		// Imports.
		for i := range 5 {
			require.NoError(t, db.WithTx(t.Context(), func(tx *store.Tx) error {
				return tx.CreateImport(t.Context(), &store.Import{Format: "sarif", Filename: fmt.Sprintf("f%d", i)})
			}))
		}
		imps := walk(t, 2, func(c string) ([]*store.Import, string, error) { return db.FindImports(t.Context(), c, 2) })
		require.Len(t, imps, 5)
		require.Equal(t, "f4", imps[0].Filename, "newest first")
	})
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func testRecommendations(t *testing.T) {
	t.Parallel()

	t.Run("BadCursorAndLimit", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			ctx := t.Context()
			var obs []steward.Observation
			for i := range 3 {
				obs = append(obs, Observation(fmt.Sprintf("r%d", i), fmt.Sprintf("/subscriptions/s1/vm%d", i), steward.StatusUnhealthy))
			}
			Apply(t, db, t0, obs...)
			_, assessmentCursor, err := db.FindAssessments(ctx, store.AssessmentFilter{Limit: 1})
			require.NoError(t, err)
			require.NotEmpty(t, assessmentCursor)

			for _, c := range []string{"garbage!", "eyJrIjoicmVjIn0", assessmentCursor, assessmentCursor + "x"} {
				_, _, err := db.FindRecommendations(ctx, store.RecommendationFilter{Cursor: c})
				RequireCode(t, err, steward.CodeInvalid)
				require.Equal(t, "invalid cursor", steward.ErrorMessage(err))
				_, _, err = db.FindRecommendations(ctx, store.RecommendationFilter{Cursor: c, Scope: "/subscriptions/s1"})
				RequireCode(t, err, steward.CodeInvalid)
				_, _, err = db.FindResources(ctx, store.ResourceFilter{Cursor: c})
				RequireCode(t, err, steward.CodeInvalid)
				_, _, err = db.FindAssignments(ctx, store.AssignmentFilter{Cursor: c})
				RequireCode(t, err, steward.CodeInvalid)
				_, _, err = db.FindImports(ctx, c, 0)
				RequireCode(t, err, steward.CodeInvalid)
			}
			_, _, err = db.FindAssessments(ctx, store.AssessmentFilter{Cursor: "x" + assessmentCursor})
			RequireCode(t, err, steward.CodeInvalid)

			_, _, err = db.FindAssessments(ctx, store.AssessmentFilter{Limit: 501})
			RequireCode(t, err, steward.CodeInvalid)
			_, _, err = db.FindRecommendations(ctx, store.RecommendationFilter{Limit: -1})
			RequireCode(t, err, steward.CodeInvalid)
			_, _, err = db.FindAssessments(ctx, store.AssessmentFilter{Statuses: []steward.AssessmentStatus{"Bogus"}})
			RequireCode(t, err, steward.CodeInvalid)
			page, _, err := db.FindAssessments(ctx, store.AssessmentFilter{Limit: 500})
			require.NoError(t, err)
			require.Len(t, page, 3)
		})
	})

	t.Run("SummariesAfterRecompute", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			ctx := t.Context()
			Apply(t, db, t0,
				Observation("r1", "/subscriptions/s1/vm1", steward.StatusUnhealthy),
				Observation("r1", "/subscriptions/s1/vm2", steward.StatusUnhealthy),
				Observation("r1", "/subscriptions/s1/vm3", steward.StatusHealthy),
				WithCloud(Observation("r1", "/aws/accounts/1/i-1", steward.StatusNotApplicable), steward.CloudAWS),
				WithSeverity(Observation("r2", "/subscriptions/s1/vm1", steward.StatusHealthy), steward.SeverityLow),
			)
			// Before any recompute, the listing still shows every recommendation.
			recs, _, err := db.FindRecommendations(ctx, store.RecommendationFilter{})
			require.NoError(t, err)
			require.Len(t, recs, 2)

			require.NoError(t, db.RecomputeRecommendationSummaries(ctx, nil))
			counts := func(f store.RecommendationFilter) map[string][3]int {
				recs, _, err := db.FindRecommendations(ctx, f)
				require.NoError(t, err)
				out := map[string][3]int{}
				for _, r := range recs {
					out[r.Key] = [3]int{r.Unhealthy, r.Healthy, r.NotApplicable}
				}
				return out
			}
			require.Equal(t, map[string][3]int{"r1": {2, 1, 1}, "r2": {0, 1, 0}}, counts(store.RecommendationFilter{}))
			require.Equal(t, map[string][3]int{"r1": {0, 0, 1}}, counts(store.RecommendationFilter{Cloud: steward.CloudAWS}))
			require.Equal(t, map[string][3]int{"r1": {2, 1, 0}}, counts(store.RecommendationFilter{Status: steward.StatusUnhealthy, Cloud: steward.CloudAzure}))
			require.Equal(t, map[string][3]int{"r1": {2, 1, 0}, "r2": {0, 1, 0}}, counts(store.RecommendationFilter{Scope: "/subscriptions/s1"}))
			require.Equal(t, map[string][3]int{"r2": {0, 1, 0}}, counts(store.RecommendationFilter{Severities: []steward.Severity{steward.SeverityLow}}))
			require.Equal(t, map[string][3]int{"r1": {2, 1, 1}}, counts(store.RecommendationFilter{Source: "test", Status: steward.StatusNotApplicable}))

			res := Apply(t, db, t1, Observation("r1", "/subscriptions/s1/vm1", steward.StatusHealthy))
			require.Equal(t, []string{"r1"}, res.ChangedRecommendations)
			require.NoError(t, db.RecomputeRecommendationSummaries(ctx, res.ChangedRecommendations))
			require.Equal(t, map[string][3]int{"r1": {1, 2, 1}, "r2": {0, 1, 0}}, counts(store.RecommendationFilter{}))
			one, err := db.FindRecommendationByKey(ctx, "r1")
			require.NoError(t, err)
			require.Equal(t, [3]int{1, 2, 1}, [3]int{one.Unhealthy, one.Healthy, one.NotApplicable})
			require.NoError(t, db.RecomputeRecommendationSummaries(ctx, []string{"unknown"}))
		})
	})
}

func testAssignments(t *testing.T) {
	t.Parallel()
	due := time.Date(2025, 3, 8, 23, 59, 59, 0, time.UTC)

	t.Run("Lifecycle", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			ctx := t.Context()
			db.Now = func() time.Time { return t1 }
			asm := Assessment(t, db, "r1", "/subscriptions/s1/vm1", steward.StatusUnhealthy)
			healthy := Assessment(t, db, "r1", "/subscriptions/s1/vm2", steward.StatusHealthy)

			a := &steward.Assignment{AssessmentID: asm.ID, Owner: "Owner@Example.com", DueDate: due}
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error { return tx.CreateAssignment(ctx, a, "alice@example.com", "triage") }))
			require.NotZero(t, a.ID)
			require.Equal(t, steward.AssignmentActive, a.State)
			require.Equal(t, steward.AssignmentManual, a.Type)
			require.Equal(t, "r1", a.RecommendationKey)
			require.Equal(t, "/subscriptions/s1/vm1", a.ResourceID)
			require.Equal(t, steward.SeverityHigh, a.Severity)
			require.Equal(t, t1, a.CreatedAt)
			require.Equal(t, "alice@example.com", a.CreatedBy)

			stored, err := db.FindAssignmentByID(ctx, a.ID)
			require.NoError(t, err)
			require.Equal(t, a, stored)
			got, err := db.FindAssessmentByID(ctx, asm.ID)
			require.NoError(t, err)
			require.Equal(t, a.ID, got.AssignmentID)

			create := func(id int64) error {
				return db.WithTx(ctx, func(tx *store.Tx) error {
					return tx.CreateAssignment(ctx, &steward.Assignment{AssessmentID: id, Owner: "o@example.com", DueDate: due}, "bob@example.com", "")
				})
			}
			err = create(asm.ID)
			RequireCode(t, err, steward.CodeConflict)
			require.Contains(t, steward.ErrorMessage(err), fmt.Sprint(a.ID))
			err = create(healthy.ID)
			RequireCode(t, err, steward.CodeInvalid)
			require.Equal(t, fmt.Sprintf("assessment %d is Healthy; only unhealthy assessments can be assigned", healthy.ID), steward.ErrorMessage(err))
			RequireCode(t, create(9999), steward.CodeNotFound)

			// Update: only real changes are recorded; a no-op writes no event.
			db.Now = func() time.Time { return t2 }
			owner, eta, just, optOut := "new@example.com", due.Add(-time.Hour), "waiting on vendor", false
			var updated *steward.Assignment
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				var err error
				updated, err = tx.UpdateAssignment(ctx, a.ID, store.AssignmentUpdate{Owner: &owner, ETA: &eta, ETAJustification: &just,
					OwnerEmailOptOut: &optOut}, "alice@example.com", "handover")
				return err
			}))
			require.Equal(t, owner, updated.Owner)
			require.Equal(t, eta, *updated.ETA)
			require.Equal(t, t2, updated.UpdatedAt)
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				_, err := tx.UpdateAssignment(ctx, a.ID, store.AssignmentUpdate{Owner: &owner}, "alice@example.com", "again")
				return err
			}))
			stored, err = db.FindAssignmentByID(ctx, a.ID)
			require.NoError(t, err)
			require.Equal(t, updated, stored)

			mine, _, err := db.FindAssignments(ctx, store.AssignmentFilter{Owner: "NEW@example.COM"})
			require.NoError(t, err)
			require.Len(t, mine, 1)
			overdue, _, err := db.FindAssignments(ctx, store.AssignmentFilter{OverdueAt: due.Add(time.Second)})
			require.NoError(t, err)
			require.Len(t, overdue, 1)
			overdue, _, err = db.FindAssignments(ctx, store.AssignmentFilter{OverdueAt: due})
			require.NoError(t, err)
			require.Empty(t, overdue)
			scoped, _, err := db.FindAssignments(ctx, store.AssignmentFilter{Scope: "/subscriptions/S1", RecommendationKey: "r1", ResourceID: "/subscriptions/s1/VM1"})
			require.NoError(t, err)
			require.Len(t, scoped, 1)
			scoped, _, err = db.FindAssignments(ctx, store.AssignmentFilter{Scope: "/subscriptions/s10"})
			require.NoError(t, err)
			require.Empty(t, scoped)

			// End.
			var ended *steward.Assignment
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				var err error
				ended, err = tx.EndAssignment(ctx, a.ID, steward.AssignmentRemoved, "alice@example.com", "duplicate")
				return err
			}))
			require.Equal(t, steward.AssignmentRemoved, ended.State)
			require.Equal(t, t2, *ended.EndedAt)
			require.Equal(t, "duplicate", ended.EndReason)
			err = db.WithTx(ctx, func(tx *store.Tx) error {
				_, err := tx.EndAssignment(ctx, a.ID, steward.AssignmentCompleted, "alice@example.com", "")
				return err
			})
			RequireCode(t, err, steward.CodeConflict)
			err = db.WithTx(ctx, func(tx *store.Tx) error {
				_, err := tx.UpdateAssignment(ctx, a.ID, store.AssignmentUpdate{Owner: &owner}, "alice@example.com", "")
				return err
			})
			RequireCode(t, err, steward.CodeConflict)
			active, _, err := db.FindAssignments(ctx, store.AssignmentFilter{})
			require.NoError(t, err)
			require.Empty(t, active)
			removed, _, err := db.FindAssignments(ctx, store.AssignmentFilter{States: []steward.AssignmentState{steward.AssignmentRemoved}})
			require.NoError(t, err)
			require.Len(t, removed, 1)

			events, err := db.FindAssignmentEvents(ctx, a.ID)
			require.NoError(t, err)
			require.Len(t, events, 3)
			require.Equal(t, steward.ActionCreated, events[0].Action)
			require.Equal(t, "triage", events[0].Reason)
			require.Equal(t, t1, events[0].At)
			require.Equal(t, steward.ActionUpdated, events[1].Action)
			require.Equal(t, "handover", events[1].Reason)
			require.Equal(t, map[string]steward.Change{
				"owner":             {From: "Owner@Example.com", To: "new@example.com"},
				"eta":               {From: nil, To: eta.Format(time.RFC3339Nano)},
				"eta_justification": {From: "", To: "waiting on vendor"},
			}, events[1].Changes)
			require.Equal(t, steward.ActionRemoved, events[2].Action)
			require.Equal(t, "alice@example.com", events[2].Actor)

			// A new assignment is allowed once the old one ended.
			require.NoError(t, create(asm.ID))
			_, err = db.FindAssignmentEvents(ctx, 9999)
			RequireCode(t, err, steward.CodeNotFound)
		})
	})

	t.Run("CompletedWhenAssessmentTurnsHealthy", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			ctx := t.Context()
			db.Now = func() time.Time { return t0 }
			asm := Assessment(t, db, "r1", "/subscriptions/s1/vm1", steward.StatusUnhealthy)
			other := Assessment(t, db, "r1", "/subscriptions/s1/vm2", steward.StatusUnhealthy)
			a := Assignment(t, db, asm.ID, "o@example.com", due)
			b := Assignment(t, db, other.ID, "o@example.com", due)

			res := Apply(t, db, t2, Observation("r1", "/subscriptions/s1/vm1", steward.StatusHealthy),
				Observation("r1", "/subscriptions/s1/vm2", steward.StatusNotApplicable))
			require.Equal(t, []int64{a.ID}, res.CompletedAssignments)

			got, err := db.FindAssignmentByID(ctx, a.ID)
			require.NoError(t, err)
			require.Equal(t, steward.AssignmentCompleted, got.State)
			require.Equal(t, "assessment turned Healthy at "+t2.Format(time.RFC3339), got.EndReason)
			events, err := db.FindAssignmentEvents(ctx, a.ID)
			require.NoError(t, err)
			require.Len(t, events, 2)
			require.Equal(t, steward.ActionCompleted, events[1].Action)
			require.Equal(t, "system", events[1].Actor)

			still, err := db.FindAssignmentByID(ctx, b.ID)
			require.NoError(t, err)
			require.Equal(t, steward.AssignmentActive, still.State, "only Healthy completes")
			asmNow, err := db.FindAssessmentByID(ctx, asm.ID)
			require.NoError(t, err)
			require.Zero(t, asmNow.AssignmentID)
		})
	})

	t.Run("Pagination", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			var obs []steward.Observation
			for i := range 13 {
				obs = append(obs, Observation("r1", fmt.Sprintf("/subscriptions/s1/vm%02d", i), steward.StatusUnhealthy))
			}
			Apply(t, db, t0, obs...)
			asms, _, err := db.FindAssessments(t.Context(), store.AssessmentFilter{})
			require.NoError(t, err)
			for i, a := range asms {
				Assignment(t, db, a.ID, "o@example.com", due.AddDate(0, 0, -(i%3))) // ties on due date
			}
			all := walk(t, 4, func(c string) ([]*steward.Assignment, string, error) {
				return db.FindAssignments(t.Context(), store.AssignmentFilter{Owner: "O@example.com", Cursor: c, Limit: 4})
			})
			require.Len(t, all, 13)
			require.True(t, slices.IsSortedFunc(all, func(a, b *steward.Assignment) int {
				if c := a.DueDate.Compare(b.DueDate); c != 0 {
					return c
				}
				return int(a.ID - b.ID)
			}))
		})
	})
}

func testImports(t *testing.T) {
	t.Parallel()
	ForEachBackend(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		db.Now = func() time.Time { return t0 }
		imp := &store.Import{Format: "sarif", Filename: "scan.sarif", SpoolPath: "/tmp/x", Size: 42, CreatedBy: "alice@example.com"}
		require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error { return tx.CreateImport(ctx, imp) }))
		require.NotZero(t, imp.ID)
		require.Equal(t, store.ImportQueued, imp.State)

		db.Now = func() time.Time { return t1 }
		require.NoError(t, db.UpdateImport(ctx, imp.ID, store.ImportRunning, "", nil))
		db.Now = func() time.Time { return t2 }
		res := store.ApplyResult{Observations: 3, AssessmentsCreated: 3, ChangedRecommendations: []string{"r1"}}
		require.NoError(t, db.UpdateImport(ctx, imp.ID, store.ImportSucceeded, "", &res))

		got, err := db.FindImportByID(ctx, imp.ID)
		require.NoError(t, err)
		require.Equal(t, store.ImportSucceeded, got.State)
		require.Equal(t, res, got.Result)
		require.Equal(t, t0, got.CreatedAt)
		require.Equal(t, t1, *got.StartedAt)
		require.Equal(t, t2, *got.FinishedAt)
		require.Equal(t, "/tmp/x", got.SpoolPath)

		RequireCode(t, db.UpdateImport(ctx, 9999, store.ImportFailed, "x", nil), steward.CodeNotFound)
		RequireCode(t, db.UpdateImport(ctx, imp.ID, "bogus", "", nil), steward.CodeInvalid)
		_, err = db.FindImportByID(ctx, 9999)
		RequireCode(t, err, steward.CodeNotFound)
	})
}
