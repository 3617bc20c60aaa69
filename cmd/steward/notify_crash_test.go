package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/notify/smtptest"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// TestDigestKilledAwaitingTheAnswer kills a real steward serve process
// with SIGKILL after the SMTP server has received a whole digest (the
// final "." included) but before it answered, lets the server accept the
// message anyway (delivered, and its sender never heard), and starts
// another process on the same database. The digest is not sent again: its
// sent-log row turns unknown. The other owner's digest, refused for now
// when the process died, is sent by the new one; every owner has exactly
// one message.
func TestDigestKilledAwaitingTheAnswer(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts and kills real server processes")
	}
	for _, b := range storetest.Backends {
		t.Run(string(b), func(t *testing.T) {
			t.Parallel()
			digestKilledAwaitingTheAnswer(t, b)
		})
	}
}

func digestKilledAwaitingTheAnswer(t *testing.T, b storetest.Backend) {
	ctx := t.Context()
	mail := smtptest.Start(t)
	dir := t.TempDir()
	db := newDatabase(t, b, dir)

	// Two owners with open work, on a database where e-mail was turned on
	// weeks ago: the process plans this week's digests when it starts.
	st, err := store.Open(ctx, db.url, nil)
	require.NoError(t, err)
	for i, owner := range []string{"ann@example.org", "bob@example.org"} {
		rec, res := fmt.Sprintf("rec-%d", i), fmt.Sprintf("/subscriptions/s1/vm%d", i)
		storetest.Apply(t, st, time.Time{}, storetest.Observation(rec, res, steward.StatusUnhealthy))
		found, _, err := st.FindAssessments(ctx, store.AssessmentFilter{RecommendationKey: rec})
		require.NoError(t, err)
		storetest.Assignment(t, st, found[0].ID, owner, time.Now().Add(48*time.Hour))
	}
	_, err = st.NotificationsSince(ctx, time.Now().Add(-30*24*time.Hour))
	require.NoError(t, err)
	require.NoError(t, st.Close())

	db.env = append(db.env, "STEWARD_SMTP_HOST=127.0.0.1", fmt.Sprintf("STEWARD_SMTP_PORT=%d", mail.Port()),
		"STEWARD_SMTP_TLS=none", "STEWARD_SMTP_FROM=Steward <steward@example.com>")
	addr := freeAddr(t)
	logs := &syncBuffer{}
	// The two digests are sent side by side. One is held at the last
	// step; the other is refused for now (451 at MAIL), so that when the
	// process dies it is waiting for its retry, not half-way through a
	// send of its own.
	held := mail.HoldData()
	mail.RefuseNext(1, "mail", 451, "4.3.2", "try again later")
	server := startServe(t, db, addr, "info", logs)

	got := held.Wait(t) // the whole message, and no answer yet
	require.NoError(t, server.Process.Kill())
	_, _ = server.Process.Wait()
	held.Answer() // the server delivers what the dead process sent
	heldTo := got.To[0]

	startServe(t, db, addr, "info", logs)
	var out, errOut bytes.Buffer
	tokens := newRootCommand(&out, &errOut)
	tokens.SetArgs([]string{"tokens", "create", "--db", db.url, "--name", "mail-crash", "--role", "security-admin", "-o", "json"})
	require.NoError(t, tokens.ExecuteContext(ctx), errOut.String())
	var issued steward.IssuedToken
	require.NoError(t, json.Unmarshal(out.Bytes(), &issued))
	c, err := apiclient.New("http://"+addr, issued.Secret)
	require.NoError(t, err)

	states := func() map[string]steward.NotificationState {
		page, err := c.ListNotifications(ctx, apiclient.NotificationFilter{})
		require.NoError(t, err)
		out := map[string]steward.NotificationState{}
		for _, n := range page.Items {
			out[n.Recipient] = n.State
		}
		return out
	}
	other := "ann@example.org"
	if heldTo == other {
		other = "bob@example.org"
	}
	// SQLite: the new process retries the dead one's running jobs at once;
	// PostgreSQL: after the dead process's heartbeat is 30 s stale. The
	// refused digest is retried after its backoff (30 s).
	var last map[string]steward.NotificationState
	require.Eventually(t, func() bool {
		last = states()
		return last[heldTo] == steward.NotificationUnknown && last[other] == steward.NotificationSent
	}, 3*time.Minute, 200*time.Millisecond, "the held digest unknown, the refused one sent after its retry")
	t.Logf("states %v", last)
	time.Sleep(time.Second)
	count := map[string]int{}
	for _, m := range mail.Messages() {
		count[strings.ToLower(m.To[0])]++
	}
	require.Equal(t, map[string]int{"ann@example.org": 1, "bob@example.org": 1}, count, "exactly one digest each")

	page, err := c.ListNotifications(ctx, apiclient.NotificationFilter{Recipient: heldTo})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	require.Contains(t, page.Items[0].LastError, "did not learn its answer")
	status, err := c.NotificationStatus(ctx)
	require.NoError(t, err)
	require.Len(t, status.Attention, 1, "the unknown digest needs a person")
}
