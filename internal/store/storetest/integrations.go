package storetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testIntegrations(t *testing.T) {
	t.Parallel()

	// Distinctive plaintexts, searched for in the database file's bytes.
	const (
		password      = "pw-PLAINTEXT-7f3a9c"
		clientSecret  = "cs-PLAINTEXT-51e0bd"
		webhookSecret = "wh-PLAINTEXT-c2d8e4"
	)
	allSecrets := store.IntegrationSecrets{Password: secret.New(password), ClientSecret: secret.New(clientSecret), WebhookSecret: secret.New(webhookSecret)}
	newIntegration := func(name string) *steward.Integration {
		return &steward.Integration{Name: name, Scope: "/Subscriptions/S1/", InstanceURL: "https://acme.service-now.com",
			Username: "steward", ClientID: "cid"}
	}
	create := func(t *testing.T, db *store.DB, in *steward.Integration, s store.IntegrationSecrets) error {
		return db.WithTx(t.Context(), func(tx *store.Tx) error { return tx.CreateIntegration(t.Context(), in, s, "admin@example.com") })
	}

	t.Run("CreateAndFind", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			ctx := t.Context()
			db.Now = func() time.Time { return t1 }
			db.SetSecretBox(Box(t))
			in := newIntegration(" Prod ")
			in.TicketTypes = map[steward.TicketType]steward.TicketMapping{
				steward.TicketTypeIncident: {Table: "incident", Fields: map[string]string{"assignment_group": "Cloud Ops"}},
			}
			in.Sync.PollInterval = steward.Duration(time.Minute)
			require.NoError(t, create(t, db, in, store.IntegrationSecrets{Password: secret.New(password)}))
			require.NotZero(t, in.ID)
			require.Equal(t, "Prod", in.Name)
			require.Equal(t, steward.Scope("/subscriptions/s1"), in.Scope, "scope stored normalized")
			require.Equal(t, steward.IntegrationServiceNow, in.Type)
			require.Equal(t, steward.AuthOAuthPassword, in.AuthMode)
			require.Equal(t, steward.IntegrationActive, in.State)
			require.True(t, in.HasPassword)
			require.False(t, in.HasClientSecret)
			require.Equal(t, t1, in.CreatedAt)
			require.Equal(t, t1, in.UpdatedAt)
			require.Equal(t, "admin@example.com", in.CreatedBy)
			require.Equal(t, steward.DefaultPriority(), in.Priority)
			require.Equal(t, steward.Duration(time.Minute), in.Sync.PollInterval)
			require.Equal(t, steward.DefaultSyncSettings().ReconcileInterval, in.Sync.ReconcileInterval, "zero sync fields get defaults")

			got, err := db.FindIntegrationByID(ctx, in.ID)
			require.NoError(t, err)
			require.Equal(t, in, got)

			all, err := db.FindIntegrations(ctx)
			require.NoError(t, err)
			require.Equal(t, []*steward.Integration{in}, all)

			_, err = db.FindIntegrationByID(ctx, 999)
			RequireCode(t, err, steward.CodeNotFound)
			_, err = db.FindIntegrationSecrets(ctx, 999)
			RequireCode(t, err, steward.CodeNotFound)

			for _, bad := range []*steward.Integration{
				{Name: " "},
				{Name: "x", AuthMode: "kerberos"},
				{Name: "x", Type: "jira"},
				{Name: "x", RequestsPerSecond: -1},
				{Name: "x", TicketTypes: map[steward.TicketType]steward.TicketMapping{"task": {}}},
				{Name: "x", Priority: map[steward.Severity]steward.ImpactUrgency{"Urgent": {}}},
			} {
				RequireCode(t, create(t, db, bad, store.IntegrationSecrets{}), steward.CodeInvalid)
			}
		})
	})

	t.Run("SecretsSealedAtRest", func(t *testing.T) {
		t.Parallel()
		ForEachBackendURL(t, func(t *testing.T, backend Backend, path string) {
			db := MustOpenURL(t, path)
			ctx := t.Context()
			db.SetSecretBox(Box(t))
			in := newIntegration("Prod")
			require.NoError(t, create(t, db, in, allSecrets))
			require.True(t, in.HasPassword)
			require.True(t, in.HasClientSecret)

			got, err := db.FindIntegrationSecrets(ctx, in.ID)
			require.NoError(t, err)
			require.Equal(t, allSecrets, got)

			// The raw columns hold ciphertext.
			var raw []byte
			require.NoError(t, db.Writer().QueryRowContext(ctx, db.Bind(`SELECT password FROM integration WHERE id = ?`), in.ID).Scan(&raw))
			require.NotEmpty(t, raw)
			require.NotContains(t, string(raw), password)

			// Neither the row, the audit log nor the API shape reveal a secret.
			js, err := json.Marshal(in)
			require.NoError(t, err)
			events, _, err := db.FindAuditEvents(ctx, store.AuditFilter{IntegrationID: in.ID})
			require.NoError(t, err)
			require.Len(t, events, 1)
			require.Equal(t, store.AuditIntegrationCreated, events[0].Action)
			require.Equal(t, map[string]any{"name": "Prod", "scope": "/subscriptions/s1", "instance_url": "https://acme.service-now.com"}, events[0].Details)
			ejs, err := json.Marshal(events)
			require.NoError(t, err)

			// No plaintext anywhere in the database's files (main file and WAL).
			if backend == SQLite {
				requireNotInFiles(t, path, password, clientSecret, webhookSecret)
			}
			for _, s := range []string{password, clientSecret, webhookSecret} {
				require.NotContains(t, string(js), s)
				require.NotContains(t, string(ejs), s)
			}

			// A ciphertext moved to another row or column does not open there.
			other := newIntegration("Other")
			require.NoError(t, create(t, db, other, store.IntegrationSecrets{}))
			_, err = db.Writer().ExecContext(ctx, db.Bind(`UPDATE integration SET password = (SELECT password FROM integration WHERE id = ?) WHERE id = ?`), in.ID, other.ID)
			require.NoError(t, err)
			_, err = db.FindIntegrationSecrets(ctx, other.ID)
			RequireCode(t, err, steward.CodeUnavailable)
			_, err = db.Writer().ExecContext(ctx, db.Bind(`UPDATE integration SET client_secret = password WHERE id = ?`), in.ID)
			require.NoError(t, err)
			_, err = db.FindIntegrationSecrets(ctx, in.ID)
			RequireCode(t, err, steward.CodeUnavailable)
		})
	})

	t.Run("WrongOrMissingKey", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			ctx := t.Context()
			in := newIntegration("Prod")
			err := create(t, db, in, allSecrets)
			RequireCode(t, err, steward.CodeUnavailable)
			require.Contains(t, steward.ErrorMessage(err), "no secret key configured")
			require.NoError(t, create(t, db, in, store.IntegrationSecrets{}), "no credentials need no key")
			got, err := db.FindIntegrationSecrets(ctx, in.ID)
			require.NoError(t, err, "nothing stored, nothing to open")
			require.Equal(t, store.IntegrationSecrets{}, got)
			pw := secret.New(password)
			updatePW := func() error {
				return db.WithTx(ctx, func(tx *store.Tx) error {
					_, err := tx.UpdateIntegration(ctx, in.ID, store.IntegrationUpdate{Password: &pw}, "admin@example.com")
					return err
				})
			}
			RequireCode(t, updatePW(), steward.CodeUnavailable)

			box := Box(t)
			db.SetSecretBox(box)
			require.NoError(t, updatePW())
			db.SetSecretBox(nil)
			_, err = db.FindIntegrationSecrets(ctx, in.ID)
			RequireCode(t, err, steward.CodeUnavailable)
			require.Contains(t, steward.ErrorMessage(err), "no secret key configured")
			require.False(t, db.HasSecretBox())

			db.SetSecretBox(Box(t)) // another key
			_, err = db.FindIntegrationSecrets(ctx, in.ID)
			RequireCode(t, err, steward.CodeUnavailable)
			require.Contains(t, steward.ErrorMessage(err), "secret key is not the one it was stored with")
			require.NotContains(t, err.Error(), password)
		})
	})

	t.Run("RotateSecrets", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			ctx := t.Context()
			oldBox, newBox := Box(t), Box(t)
			db.SetSecretBox(oldBox)
			a, b, c := newIntegration("A"), newIntegration("B"), newIntegration("C")
			require.NoError(t, create(t, db, a, allSecrets))
			require.NoError(t, create(t, db, b, store.IntegrationSecrets{ClientSecret: secret.New("b-secret")}))
			require.NoError(t, create(t, db, c, store.IntegrationSecrets{}))

			// A wrong old key changes nothing.
			_, err := db.RotateSecrets(ctx, Box(t), newBox)
			RequireCode(t, err, steward.CodeUnavailable)
			got, err := db.FindIntegrationSecrets(ctx, a.ID)
			require.NoError(t, err, "still sealed with the old key")
			require.Equal(t, allSecrets, got)

			n, err := db.RotateSecrets(ctx, oldBox, newBox)
			require.NoError(t, err)
			require.Equal(t, 4, n)
			require.True(t, db.HasSecretBox())
			got, err = db.FindIntegrationSecrets(ctx, a.ID)
			require.NoError(t, err, "the store switched to the new key")
			require.Equal(t, allSecrets, got)
			got, err = db.FindIntegrationSecrets(ctx, b.ID)
			require.NoError(t, err)
			require.Equal(t, store.IntegrationSecrets{ClientSecret: secret.New("b-secret")}, got)

			db.SetSecretBox(oldBox)
			_, err = db.FindIntegrationSecrets(ctx, a.ID)
			RequireCode(t, err, steward.CodeUnavailable)

			events, _, err := db.FindAuditEvents(ctx, store.AuditFilter{ActionPrefix: "secrets."})
			require.NoError(t, err)
			require.Len(t, events, 1)
			require.Equal(t, map[string]any{"values": float64(4)}, events[0].Details)
		})
	})

	t.Run("NameConflict", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			ctx := t.Context()
			db.SetSecretBox(Box(t))
			prod, test := newIntegration("Prod"), newIntegration("Test")
			require.NoError(t, create(t, db, prod, store.IntegrationSecrets{}))
			require.NoError(t, create(t, db, test, store.IntegrationSecrets{}))
			err := create(t, db, newIntegration(" PROD"), store.IntegrationSecrets{})
			RequireCode(t, err, steward.CodeConflict)
			require.Contains(t, steward.ErrorMessage(err), `an integration named "PROD" exists`)

			rename := func(id int64, name string) error {
				return db.WithTx(ctx, func(tx *store.Tx) error {
					_, err := tx.UpdateIntegration(ctx, id, store.IntegrationUpdate{Name: &name}, "admin@example.com")
					return err
				})
			}
			RequireCode(t, rename(test.ID, "prod"), steward.CodeConflict)
			require.NoError(t, rename(prod.ID, "PROD"), "a change of letter case only is fine")
			all, err := db.FindIntegrations(ctx)
			require.NoError(t, err)
			require.Equal(t, []string{"PROD", "Test"}, []string{all[0].Name, all[1].Name}, "ordered by name")
		})
	})

	t.Run("UpdateAudit", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			ctx := t.Context()
			db.Now = func() time.Time { return t1 } // a frozen clock: UpdatedAt must still advance
			db.SetSecretBox(Box(t))
			in := newIntegration("Prod")
			require.NoError(t, create(t, db, in, allSecrets))

			update := func(upd store.IntegrationUpdate) (*steward.Integration, error) {
				var out *steward.Integration
				err := db.WithTx(ctx, func(tx *store.Tx) error {
					var err error
					out, err = tx.UpdateIntegration(ctx, in.ID, upd, "bob@example.com")
					return err
				})
				return out, err
			}
			name, url, scope := "Production", "https://acme.service-now.com", steward.Scope("/SUBSCRIPTIONS/s1")
			newPW, noCS := secret.New("new-PLAINTEXT-pw-93b1"), secret.String{}
			prio := map[steward.Severity]steward.ImpactUrgency{steward.SeverityHigh: {Impact: "1", Urgency: "1"}}
			got, err := update(store.IntegrationUpdate{Name: &name, InstanceURL: &url, Scope: &scope, Password: &newPW, ClientSecret: &noCS, Priority: &prio})
			require.NoError(t, err)
			require.Equal(t, "Production", got.Name)
			require.True(t, got.HasPassword)
			require.False(t, got.HasClientSecret, "a zero secret clears it")
			require.Equal(t, prio, got.Priority)
			require.Equal(t, t1.Add(time.Microsecond), got.UpdatedAt, "strictly after CreatedAt even at the same instant")
			stored, err := db.FindIntegrationByID(ctx, in.ID)
			require.NoError(t, err)
			require.Equal(t, got, stored)
			sec, err := db.FindIntegrationSecrets(ctx, in.ID)
			require.NoError(t, err)
			require.Equal(t, store.IntegrationSecrets{Password: newPW, WebhookSecret: secret.New(webhookSecret)}, sec)

			// Nothing changed: nothing written.
			same, err := update(store.IntegrationUpdate{Name: &name, Scope: &scope, Priority: &prio})
			require.NoError(t, err)
			require.Equal(t, got.UpdatedAt, same.UpdatedAt)

			wh := secret.New("wh-new")
			rps := 2.5
			sync := got.Sync
			sync.PollInterval = steward.Duration(time.Minute)
			again, err := update(store.IntegrationUpdate{WebhookSecret: &wh, RequestsPerSecond: &rps, Sync: &sync})
			require.NoError(t, err)
			require.Equal(t, t1.Add(2*time.Microsecond), again.UpdatedAt)

			events, _, err := db.FindAuditEvents(ctx, store.AuditFilter{IntegrationID: in.ID, ActionPrefix: store.AuditIntegrationUpdated})
			require.NoError(t, err)
			require.Len(t, events, 2)
			require.Equal(t, "bob@example.com", events[0].Actor)
			require.Equal(t, []any{"requests_per_second", "sync", "webhook_secret"}, events[0].Details["fields"])
			require.Equal(t, []any{"name", "priority", "password", "client_secret"}, events[1].Details["fields"], "scope and URL did not change")
			js, err := json.Marshal(events)
			require.NoError(t, err)
			for _, s := range []string{password, clientSecret, webhookSecret, newPW.Reveal(), wh.Reveal()} {
				require.NotContains(t, string(js), s)
			}

			bad := steward.AuthMode("ntlm")
			_, err = update(store.IntegrationUpdate{AuthMode: &bad})
			RequireCode(t, err, steward.CodeInvalid)
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				_, err := tx.MarkIntegrationDeleting(ctx, in.ID, "bob@example.com")
				return err
			}))
			_, err = update(store.IntegrationUpdate{Name: &name})
			RequireCode(t, err, steward.CodeConflict)
			RequireCode(t, db.WithTx(ctx, func(tx *store.Tx) error {
				_, err := tx.UpdateIntegration(ctx, 999, store.IntegrationUpdate{Name: &name}, "bob@example.com")
				return err
			}), steward.CodeNotFound)
		})
	})

	t.Run("DeleteLifecycle", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			ctx := t.Context()
			in := Integration(t, db, "Prod", "/subscriptions/s1")
			other := Integration(t, db, "Other", "")
			due := t0.AddDate(0, 0, 7)
			var ours []*steward.Assignment
			for i := range 5 {
				asm := Assessment(t, db, "r1", fmt.Sprintf("/subscriptions/s1/vm%d", i), steward.StatusUnhealthy)
				ours = append(ours, ServiceNowAssignment(t, db, asm.ID, in.ID, "o@example.com", due))
			}
			theirs := ServiceNowAssignment(t, db, Assessment(t, db, "r2", "/subscriptions/s1/vm0", steward.StatusUnhealthy).ID, other.ID, "o@example.com", due)
			manual := Assignment(t, db, Assessment(t, db, "r3", "/subscriptions/s1/vm0", steward.StatusUnhealthy).ID, "o@example.com", due)

			// One ticket resolved in the ITSM, one assignment already ended.
			_, err := db.RecordTicketCreated(ctx, ours[0].ID, &steward.Ticket{SysID: "s0", Number: "INC0", State: steward.TicketResolved})
			require.NoError(t, err)
			_, err = db.RecordTicketCreated(ctx, ours[1].ID, &steward.Ticket{SysID: "s1", Number: "INC1", State: steward.TicketInProgress})
			require.NoError(t, err)
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				_, err := tx.EndAssignment(ctx, ours[4].ID, steward.AssignmentCompleted, "system", "fixed")
				return err
			}))

			p, err := db.IntegrationDeletePreview(ctx, in.ID)
			require.NoError(t, err)
			require.Equal(t, store.DeletePreview{ActiveAssignments: 4, Tickets: 5, OpenTickets: 3}, p)
			js, err := json.Marshal(p)
			require.NoError(t, err)
			require.JSONEq(t, `{"active_assignments": 4, "tickets": 5, "open_tickets": 3}`, string(js))
			_, err = db.IntegrationDeletePreview(ctx, 999)
			RequireCode(t, err, steward.CodeNotFound)

			inTx := func(fn func(tx *store.Tx) error) error { return db.WithTx(ctx, fn) }
			deleteIt := func() error {
				return inTx(func(tx *store.Tx) error { return tx.DeleteIntegration(ctx, in.ID, "alice@example.com") })
			}
			RequireCode(t, deleteIt(), steward.CodeConflict) // not marked
			var marked *steward.Integration
			require.NoError(t, inTx(func(tx *store.Tx) (err error) {
				marked, err = tx.MarkIntegrationDeleting(ctx, in.ID, "alice@example.com")
				return err
			}))
			require.Equal(t, steward.IntegrationDeleting, marked.State)
			require.True(t, marked.UpdatedAt.After(in.UpdatedAt))
			require.NoError(t, inTx(func(tx *store.Tx) error {
				again, err := tx.MarkIntegrationDeleting(ctx, in.ID, "alice@example.com")
				require.Equal(t, marked, again, "marking twice is harmless")
				return err
			}))
			RequireCode(t, deleteIt(), steward.CodeConflict) // assignments left

			var batches []int
			for {
				var n int
				require.NoError(t, inTx(func(tx *store.Tx) (err error) {
					n, err = tx.RemoveIntegrationAssignments(ctx, in.ID, 3, "alice@example.com", "integration Prod deleted")
					return err
				}))
				batches = append(batches, n)
				if n == 0 {
					break
				}
			}
			require.Equal(t, []int{3, 1, 0}, batches)
			require.NoError(t, deleteIt())
			_, err = db.FindIntegrationByID(ctx, in.ID)
			RequireCode(t, err, steward.CodeNotFound)
			RequireCode(t, deleteIt(), steward.CodeNotFound)

			for i, a := range ours {
				got, err := db.FindAssignmentByID(ctx, a.ID)
				require.NoError(t, err)
				require.NotNil(t, got.Ticket, "tickets stay as history")
				require.Equal(t, in.ID, got.Ticket.IntegrationID)
				if i == 4 {
					require.Equal(t, steward.AssignmentCompleted, got.State)
					continue
				}
				require.Equal(t, steward.AssignmentRemoved, got.State)
				require.Equal(t, "integration Prod deleted", got.EndReason)
				events, err := db.FindAssignmentEvents(ctx, a.ID)
				require.NoError(t, err)
				last := events[len(events)-1]
				require.Equal(t, steward.ActionRemoved, last.Action)
				require.Equal(t, "alice@example.com", last.Actor)
			}
			for _, id := range []int64{theirs.ID, manual.ID} {
				got, err := db.FindAssignmentByID(ctx, id)
				require.NoError(t, err)
				require.Equal(t, steward.AssignmentActive, got.State, "other assignments are untouched")
			}

			events, _, err := db.FindAuditEvents(ctx, store.AuditFilter{IntegrationID: in.ID, ActionPrefix: "integration."})
			require.NoError(t, err)
			var actions []string
			for _, e := range events {
				actions = append(actions, e.Action)
			}
			require.Equal(t, []string{store.AuditIntegrationDeleted, store.AuditIntegrationDeleteRequested, store.AuditIntegrationCreated}, actions)

			// The name is free again.
			Integration(t, db, "prod", "")
		})
	})

	t.Run("InstallationIDStable", func(t *testing.T) {
		t.Parallel()
		ForEachBackendURL(t, func(t *testing.T, backend Backend, path string) {
			db, err := store.Open(t.Context(), path, Logger(t))
			require.NoError(t, err)
			id, err := db.InstallationID(t.Context())
			require.NoError(t, err)
			require.Regexp(t, regexp.MustCompile(`^[0-9a-f]{16}$`), id)
			again, err := db.InstallationID(t.Context())
			require.NoError(t, err)
			require.Equal(t, id, again)
			require.NoError(t, db.Close())

			db = MustOpenURL(t, path)
			reopened, err := db.InstallationID(t.Context())
			require.NoError(t, err)
			require.Equal(t, id, reopened)

			fresh, err := MustOpenBackend(t, backend).InstallationID(t.Context())
			require.NoError(t, err)
			require.NotEqual(t, id, fresh)
		})
	})
}

// requireNotInFiles fails if any of needles occurs in the database file or
// its WAL and shared-memory files. As a control, the instance URL stored
// next to the secrets must be found.
func requireNotInFiles(t *testing.T, path string, needles ...string) {
	t.Helper()
	control := false
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue
		}
		require.NoError(t, err)
		control = control || bytes.Contains(b, []byte("https://acme.service-now.com"))
		for _, n := range needles {
			require.False(t, bytes.Contains(b, []byte(n)), "%s holds a plaintext secret", filepath.Base(p))
		}
	}
	require.True(t, control, "the files searched hold the integration's row")
}

func testTickets(t *testing.T) {
	t.Parallel()

	t.Run("CreateRules", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			ctx := t.Context()
			in := Integration(t, db, "Prod", "")
			due := t0.AddDate(0, 0, 7)
			manual := Assignment(t, db, Assessment(t, db, "r1", "/subscriptions/s1/vm1", steward.StatusUnhealthy).ID, "o@example.com", due)
			sn := ServiceNowAssignment(t, db, Assessment(t, db, "r1", "/subscriptions/s1/vm2", steward.StatusUnhealthy).ID, in.ID, "o@example.com", due)
			require.Equal(t, steward.AssignmentServiceNow, sn.Type)
			require.Equal(t, steward.TicketPending, sn.Ticket.Status)

			createTicket := func(tk *steward.Ticket) error {
				return db.WithTx(ctx, func(tx *store.Tx) error { return tx.CreateTicket(ctx, tk) })
			}
			valid := func(assignmentID int64, corr string) *steward.Ticket {
				return &steward.Ticket{AssignmentID: assignmentID, IntegrationID: in.ID, Type: steward.TicketTypeIncident, Table: "incident", CorrelationID: corr}
			}
			RequireCode(t, createTicket(valid(manual.ID, "c-manual")), steward.CodeInvalid)
			RequireCode(t, createTicket(valid(999, "c-none")), steward.CodeNotFound)
			RequireCode(t, createTicket(valid(sn.ID, "c-again")), steward.CodeConflict)

			sn2 := &steward.Assignment{AssessmentID: Assessment(t, db, "r1", "/subscriptions/s1/vm3", steward.StatusUnhealthy).ID,
				Type: steward.AssignmentServiceNow, Owner: "o@example.com", DueDate: due}
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error { return tx.CreateAssignment(ctx, sn2, "a@example.com", "") }))
			RequireCode(t, createTicket(valid(sn2.ID, sn.Ticket.CorrelationID)), steward.CodeConflict)
			bad := valid(sn2.ID, "c2")
			bad.Type = "task"
			RequireCode(t, createTicket(bad), steward.CodeInvalid)

			byCorr, err := db.FindTicketByCorrelationID(ctx, sn.Ticket.CorrelationID)
			require.NoError(t, err)
			require.Equal(t, sn.Ticket, byCorr)
			byAsg, err := db.FindTicketByAssignment(ctx, sn.ID)
			require.NoError(t, err)
			require.Equal(t, sn.Ticket, byAsg)
			_, err = db.FindTicketByAssignment(ctx, manual.ID)
			RequireCode(t, err, steward.CodeNotFound)
			_, err = db.FindTicketByCorrelationID(ctx, "nope")
			RequireCode(t, err, steward.CodeNotFound)
		})
	})

	t.Run("StateMachine", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			ctx := t.Context()
			in := Integration(t, db, "Prod", "")
			a := ServiceNowAssignment(t, db, Assessment(t, db, "r1", "/subscriptions/s1/vm1", steward.StatusUnhealthy).ID, in.ID, "o@example.com", t0)
			ticket := func() *steward.Ticket {
				tk, err := db.FindTicketByAssignment(ctx, a.ID)
				require.NoError(t, err)
				return tk
			}
			audit := func() []string {
				events, _, err := db.FindAuditEvents(ctx, store.AuditFilter{AssignmentID: a.ID})
				require.NoError(t, err)
				var out []string
				for _, e := range events {
					out = append(out, e.Action)
				}
				slices.Reverse(out)
				return out
			}
			retry := func() (*steward.Ticket, error) {
				var tk *steward.Ticket
				err := db.WithTx(ctx, func(tx *store.Tx) (err error) {
					tk, err = tx.ResetTicketForRetry(ctx, a.ID, "alice@example.com")
					return err
				})
				return tk, err
			}

			for want := 1; want <= 2; want++ {
				n, err := db.MarkTicketAttempt(ctx, a.ID)
				require.NoError(t, err)
				require.Equal(t, want, n.Attempts)
			}
			_, err := db.MarkTicketAttempt(ctx, 999)
			RequireCode(t, err, steward.CodeNotFound)

			_, err = retry()
			RequireCode(t, err, steward.CodeConflict)
			require.Contains(t, steward.ErrorMessage(err), "pending")

			require.NoError(t, db.RecordTicketFailure(ctx, a.ID, steward.TicketRetrying, "503 Service Unavailable"))
			require.NoError(t, db.RecordTicketFailure(ctx, a.ID, steward.TicketRetrying, "503 Service Unavailable"))
			require.Equal(t, steward.TicketRetrying, ticket().Status)
			require.Equal(t, "503 Service Unavailable", ticket().Error)
			require.NoError(t, db.RecordTicketFailure(ctx, a.ID, steward.TicketFailed, "400 mandatory field missing"))
			RequireCode(t, db.RecordTicketFailure(ctx, a.ID, steward.TicketPending, "x"), steward.CodeInvalid)
			require.Equal(t, []string{store.AuditTicketRetrying, store.AuditTicketFailed}, audit(), "repeats are not audited")

			tk, err := retry()
			require.NoError(t, err)
			require.Equal(t, steward.TicketPending, tk.Status)
			require.Equal(t, "400 mandatory field missing", tk.Error, "kept until the next try")
			require.Equal(t, 2, tk.Attempts)
			require.Equal(t, tk, ticket())
			_, err = retry()
			RequireCode(t, err, steward.CodeConflict)

			n, err := db.MarkTicketAttempt(ctx, a.ID)
			require.NoError(t, err)
			require.Equal(t, 3, n.Attempts)
			db.Now = func() time.Time { return t2 }
			remoteAt := t1
			remote := &steward.Ticket{SysID: "abc123", Number: "INC0010001", Link: "https://acme/incident.do?sys_id=abc123",
				RawState: "1", StateLabel: "New", State: steward.TicketNew, AssigneeEmail: "o@example.com", RemoteUpdatedAt: &remoteAt, ModCount: 1}
			created, err := db.RecordTicketCreated(ctx, a.ID, remote)
			require.NoError(t, err)
			require.Equal(t, steward.TicketCreated, created.Status)
			require.Empty(t, created.Error)
			require.Equal(t, "INC0010001", created.Number)
			require.Equal(t, "abc123", created.SysID)
			require.Equal(t, steward.TicketNew, created.State)
			require.Equal(t, &t2, created.LastSyncedAt)
			require.Equal(t, &remoteAt, created.RemoteUpdatedAt)
			require.Equal(t, 3, created.Attempts)
			require.Equal(t, created, ticket())

			again, err := db.RecordTicketCreated(ctx, a.ID, remote)
			require.NoError(t, err, "idempotent")
			require.Equal(t, created, again)
			_, err = db.RecordTicketCreated(ctx, a.ID, &steward.Ticket{SysID: "other"})
			RequireCode(t, err, steward.CodeConflict)
			_, err = db.RecordTicketCreated(ctx, a.ID, &steward.Ticket{})
			RequireCode(t, err, steward.CodeInvalid)
			RequireCode(t, db.RecordTicketFailure(ctx, a.ID, steward.TicketRetrying, "late"), steward.CodeConflict)

			require.Equal(t, []string{store.AuditTicketRetrying, store.AuditTicketFailed, store.AuditTicketRetryRequested, store.AuditTicketCreated}, audit())
			events, _, err := db.FindAuditEvents(ctx, store.AuditFilter{AssignmentID: a.ID, ActionPrefix: store.AuditTicketCreated})
			require.NoError(t, err)
			require.Len(t, events, 1)
			require.Equal(t, store.ActorSystem, events[0].Actor)
			require.Equal(t, in.ID, events[0].IntegrationID)
			require.Equal(t, map[string]any{"number": "INC0010001", "table": "incident", "sys_id": "abc123"}, events[0].Details)

			asg, err := db.FindAssignmentByID(ctx, a.ID)
			require.NoError(t, err)
			require.Equal(t, created, asg.Ticket)
		})
	})

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			ctx := t.Context()
			in := Integration(t, db, "Prod", "")
			a := ServiceNowAssignment(t, db, Assessment(t, db, "r1", "/subscriptions/s1/vm1", steward.StatusUnhealthy).ID, in.ID, "o@example.com", t0)
			const n = 8
			counts := make(chan int, n)
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					c, err := db.MarkTicketAttempt(ctx, a.ID)
					assert.NoError(t, err)
					counts <- c.Attempts
					_, err = db.RecordTicketCreated(ctx, a.ID, &steward.Ticket{SysID: "abc", Number: "INC1"})
					assert.NoError(t, err)
				})
			}
			wg.Wait()
			close(counts)
			var got []int
			for c := range counts {
				got = append(got, c)
			}
			slices.Sort(got)
			require.Equal(t, []int{1, 2, 3, 4, 5, 6, 7, 8}, got, "every attempt counted once")
			events, _, err := db.FindAuditEvents(ctx, store.AuditFilter{AssignmentID: a.ID, ActionPrefix: store.AuditTicketCreated})
			require.NoError(t, err)
			require.Len(t, events, 1, "recorded once")
		})
	})

	t.Run("RemoteOrdering", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			ctx := t.Context()
			in := Integration(t, db, "Prod", "")
			a := ServiceNowAssignment(t, db, Assessment(t, db, "r1", "/subscriptions/s1/vm1", steward.StatusUnhealthy).ID, in.ID, "o@example.com", t0)
			at := func(d time.Duration) *time.Time { v := t0.Add(d); return &v }
			_, err := db.RecordTicketCreated(ctx, a.ID, &steward.Ticket{SysID: "abc", Number: "INC1", State: steward.TicketNew, RawState: "1",
				ModCount: 2, RemoteUpdatedAt: at(time.Minute)})
			require.NoError(t, err)

			apply := func(mod int, upd *time.Time, state steward.TicketState, assignee string) bool {
				changed, err := db.UpdateTicketRemote(ctx, a.ID, &steward.Ticket{SysID: "abc", ModCount: mod, RemoteUpdatedAt: upd,
					State: state, RawState: string(state), AssigneeEmail: assignee})
				require.NoError(t, err)
				return changed
			}
			require.False(t, apply(1, at(time.Hour), steward.TicketClosed, ""), "lower mod count is stale")
			require.False(t, apply(2, at(0), steward.TicketClosed, ""), "same mod count, older update is stale")
			db.Now = func() time.Time { return t2 }
			require.False(t, apply(2, at(time.Minute), steward.TicketNew, ""), "same version")
			tk, err := db.FindTicketByAssignment(ctx, a.ID)
			require.NoError(t, err)
			require.Equal(t, steward.TicketNew, tk.State)
			require.Equal(t, &t2, tk.LastSyncedAt, "the same version confirms the sync")

			require.True(t, apply(2, at(2*time.Minute), steward.TicketInProgress, "x@example.com"), "same mod count, later update")
			require.True(t, apply(5, at(time.Second), steward.TicketResolved, "y@example.com"), "higher mod count wins over time")
			require.False(t, apply(4, at(time.Hour), steward.TicketNew, ""))
			tk, err = db.FindTicketByAssignment(ctx, a.ID)
			require.NoError(t, err)
			require.Equal(t, steward.TicketResolved, tk.State)
			require.Equal(t, "y@example.com", tk.AssigneeEmail)
			require.Equal(t, 5, tk.ModCount)
			require.Equal(t, at(time.Second), tk.RemoteUpdatedAt)
			require.Equal(t, "INC1", tk.Number, "kept when the view has none")

			_, err = db.UpdateTicketRemote(ctx, a.ID, &steward.Ticket{SysID: "zzz", ModCount: 9})
			RequireCode(t, err, steward.CodeConflict)
			_, err = db.UpdateTicketRemote(ctx, 999, &steward.Ticket{ModCount: 9})
			RequireCode(t, err, steward.CodeNotFound)
			bySys, err := db.FindTicketBySysID(ctx, in.ID, "abc")
			require.NoError(t, err)
			require.Equal(t, tk, bySys)
		})
	})

	t.Run("ListingAndFilters", func(t *testing.T) {
		t.Parallel()
		ForEachBackend(t, func(t *testing.T, db *store.DB) {
			ctx := t.Context()
			prod := Integration(t, db, "Prod", "")
			test := Integration(t, db, "Test", "")
			due := t0.AddDate(0, 0, 7)
			var ids []int64
			for i := range 9 {
				in, owner, rec := prod, "alice@example.com", "r1"
				if i%3 == 0 {
					in, owner, rec = test, "bob@example.com", "r2"
				}
				asm := Assessment(t, db, rec, fmt.Sprintf("/subscriptions/s1/vm%d", i), steward.StatusUnhealthy)
				a := ServiceNowAssignment(t, db, asm.ID, in.ID, owner, due)
				ids = append(ids, a.ID)
			}
			manual := Assignment(t, db, Assessment(t, db, "r3", "/subscriptions/s1/vm1", steward.StatusUnhealthy).ID, "alice@example.com", due)
			_, err := db.RecordTicketCreated(ctx, ids[1], &steward.Ticket{SysID: "s1", Number: "INC1", State: steward.TicketInProgress})
			require.NoError(t, err)
			_, err = db.RecordTicketCreated(ctx, ids[2], &steward.Ticket{SysID: "s2", Number: "INC2", State: steward.TicketResolved})
			require.NoError(t, err)
			require.NoError(t, db.RecordTicketFailure(ctx, ids[4], steward.TicketFailed, "refused"))
			require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
				_, err := tx.EndAssignment(ctx, ids[2], steward.AssignmentCompleted, "system", "ticket resolved")
				return err
			}))

			find := func(f store.TicketFilter) []int64 {
				views, _, err := db.FindTickets(ctx, f)
				require.NoError(t, err)
				var out []int64
				for _, v := range views {
					out = append(out, v.AssignmentID)
				}
				return out
			}
			require.Equal(t, ids, find(store.TicketFilter{}))
			require.Equal(t, []int64{ids[0], ids[3], ids[6]}, find(store.TicketFilter{IntegrationID: test.ID}))
			require.Equal(t, []int64{ids[0], ids[3], ids[6]}, find(store.TicketFilter{Owner: "BOB@example.com"}))
			require.Equal(t, []int64{ids[0], ids[3], ids[6]}, find(store.TicketFilter{RecommendationKey: "r2"}))
			require.Equal(t, []int64{ids[1], ids[2]}, find(store.TicketFilter{Status: steward.TicketCreated}))
			require.Equal(t, []int64{ids[4]}, find(store.TicketFilter{Status: steward.TicketFailed, IntegrationID: prod.ID}))
			require.Equal(t, []int64{ids[2]}, find(store.TicketFilter{State: steward.TicketResolved}))
			require.Equal(t, []int64{ids[2]}, find(store.TicketFilter{AssignmentStates: []steward.AssignmentState{steward.AssignmentCompleted, steward.AssignmentRemoved}}))
			require.Len(t, find(store.TicketFilter{AssignmentStates: []steward.AssignmentState{steward.AssignmentActive}, Type: steward.TicketTypeIncident}), 8)
			require.Empty(t, find(store.TicketFilter{Type: steward.TicketTypeProblem}))

			views, _, err := db.FindTickets(ctx, store.TicketFilter{Status: steward.TicketCreated, Limit: 1})
			require.NoError(t, err)
			v := views[0]
			require.Equal(t, "alice@example.com", v.Owner)
			require.Equal(t, "/subscriptions/s1/vm1", v.ResourceID)
			require.Equal(t, "r1", v.RecommendationKey)
			require.Equal(t, steward.SeverityHigh, v.Severity)
			require.Equal(t, steward.AssignmentActive, v.AssignmentState)
			require.Equal(t, "INC1", v.Number)
			js, err := json.Marshal(v)
			require.NoError(t, err)
			var m map[string]any
			require.NoError(t, json.Unmarshal(js, &m))
			for _, k := range []string{"assignment_id", "number", "status", "owner", "resource_id", "recommendation_key", "severity", "assignment_state"} {
				require.Contains(t, m, k)
			}

			all := walk(t, 2, func(c string) ([]*store.TicketView, string, error) {
				return db.FindTickets(ctx, store.TicketFilter{Cursor: c, Limit: 2})
			})
			require.Len(t, all, 9)
			for i, v := range all {
				require.Equal(t, ids[i], v.AssignmentID)
			}
			aliceActive := walk(t, 2, func(c string) ([]*store.TicketView, string, error) {
				return db.FindTickets(ctx, store.TicketFilter{Owner: "alice@example.com", AssignmentStates: []steward.AssignmentState{steward.AssignmentActive}, Cursor: c, Limit: 2})
			})
			require.Len(t, aliceActive, 5)

			for _, f := range []store.TicketFilter{
				{Cursor: "garbage"}, {Status: "done"}, {State: "Open"}, {Type: "task"},
				{AssignmentStates: []steward.AssignmentState{"gone"}}, {Limit: -1},
			} {
				_, _, err := db.FindTickets(ctx, f)
				RequireCode(t, err, steward.CodeInvalid)
			}
			_, next, err := db.FindAssignments(ctx, store.AssignmentFilter{Limit: 1})
			require.NoError(t, err)
			_, _, err = db.FindTickets(ctx, store.TicketFilter{Cursor: next})
			RequireCode(t, err, steward.CodeInvalid) // another listing's cursor

			// Assignment listings carry the ticket.
			asgs, _, err := db.FindAssignments(ctx, store.AssignmentFilter{Owner: "alice@example.com"})
			require.NoError(t, err)
			require.Len(t, asgs, 6)
			for _, a := range asgs {
				if a.ID == manual.ID {
					require.Nil(t, a.Ticket)
					continue
				}
				require.NotNil(t, a.Ticket)
				require.Equal(t, a.ID, a.Ticket.AssignmentID)
				require.Equal(t, prod.ID, a.Ticket.IntegrationID)
			}
			byIntegration, _, err := db.FindAssignments(ctx, store.AssignmentFilter{IntegrationID: test.ID})
			require.NoError(t, err)
			require.Len(t, byIntegration, 3)
			for _, a := range byIntegration {
				require.Equal(t, "bob@example.com", a.Owner)
			}
			findAsg := func(f store.AssignmentFilter) []int64 {
				asgs, _, err := db.FindAssignments(ctx, f)
				require.NoError(t, err)
				var out []int64
				for _, a := range asgs {
					out = append(out, a.ID)
				}
				return out
			}
			require.Equal(t, []int64{ids[1]}, findAsg(store.AssignmentFilter{TicketState: steward.TicketInProgress}))
			require.Equal(t, []int64{ids[2]}, findAsg(store.AssignmentFilter{TicketState: steward.TicketResolved, States: []steward.AssignmentState{steward.AssignmentCompleted}}))
			require.Equal(t, []int64{ids[4]}, findAsg(store.AssignmentFilter{TicketStatus: steward.TicketFailed}))
			require.Len(t, findAsg(store.AssignmentFilter{TicketStatus: steward.TicketPending}), 6, "the manual assignment has no ticket")
			for _, f := range []store.AssignmentFilter{{TicketState: "Open"}, {TicketStatus: "done"}} {
				_, _, err := db.FindAssignments(ctx, f)
				RequireCode(t, err, steward.CodeInvalid)
			}
			m1, err := db.FindAssignmentByID(ctx, manual.ID)
			require.NoError(t, err)
			require.Nil(t, m1.Ticket)
		})
	})
}

func testAudit(t *testing.T) {
	t.Parallel()
	ForEachBackend(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		db.Now = func() time.Time { return t1 }
		RequireCode(t, db.WithTx(ctx, func(tx *store.Tx) error {
			return tx.InsertAudit(ctx, &steward.AuditEvent{Actor: "a@example.com"})
		}), steward.CodeInvalid)

		require.NoError(t, db.WithTx(ctx, func(tx *store.Tx) error {
			for i := range 7 {
				e := &steward.AuditEvent{Actor: "a@example.com", Action: "ticket.requested", IntegrationID: int64(1 + i%2), AssignmentID: int64(i + 1),
					Details: map[string]any{"i": i}}
				if i == 6 {
					e.Action, e.At = "integrations.other", t2
				}
				if err := tx.InsertAudit(ctx, e); err != nil {
					return err
				}
				if i < 6 {
					require.Equal(t, t1, e.At)
				}
			}
			return nil
		}))
		all := walk(t, 3, func(c string) ([]*steward.AuditEvent, string, error) {
			return db.FindAuditEvents(ctx, store.AuditFilter{Cursor: c, Limit: 3})
		})
		require.Len(t, all, 7)
		require.True(t, slices.IsSortedFunc(all, func(a, b *steward.AuditEvent) int { return int(b.ID - a.ID) }), "newest first")
		require.Equal(t, t2, all[0].At)
		require.Equal(t, map[string]any{"i": float64(6)}, all[0].Details)

		count := func(f store.AuditFilter) int {
			events, _, err := db.FindAuditEvents(ctx, f)
			require.NoError(t, err)
			return len(events)
		}
		require.Equal(t, 4, count(store.AuditFilter{IntegrationID: 1}))
		require.Equal(t, 1, count(store.AuditFilter{AssignmentID: 3}))
		require.Equal(t, 6, count(store.AuditFilter{ActionPrefix: "ticket."}))
		require.Equal(t, 0, count(store.AuditFilter{ActionPrefix: "TICKET."}), "prefixes are case-sensitive")
		require.Equal(t, 0, count(store.AuditFilter{ActionPrefix: "integration."}), "no wildcard matching")
		require.Equal(t, 1, count(store.AuditFilter{ActionPrefix: "integrations"}))
		_, _, err := db.FindAuditEvents(ctx, store.AuditFilter{Cursor: "x"})
		RequireCode(t, err, steward.CodeInvalid)
	})
}
