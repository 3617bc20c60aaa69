package snowemu_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/snowemu"
)

// get fetches path without credentials, as a browser following a ticket
// link does.
func (b *testBundle) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := b.srv.Client().Get(b.srv.URL + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNotFound {
		require.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	}
	return resp.StatusCode, string(body)
}

// TestRecordPage opens a ticket the way Steward links it
// (/nav_to.do?uri=incident.do?sys_id=..., unencoded and encoded) and the
// way the list page links it (/incident.do?sys_id=...): number, state label,
// assignee, work notes and history are shown, escaped.
func TestRecordPage(t *testing.T) {
	t.Parallel()
	b := setup(t, snowemu.Options{})
	rec, err := b.emu.Create("incident", snowemu.Record{
		"short_description": "Storage <b>public</b>", "assigned_to": b.user(t, "beth.anglin"),
		"correlation_id": "steward-test-1",
	}, "svc.steward")
	require.NoError(t, err)
	id, number := rec["sys_id"], rec["number"]
	_, err = b.emu.AddWorkNote("incident", number, "Checked the bucket <script>x</script>", "beth.anglin")
	require.NoError(t, err)
	_, err = b.emu.Reassign("incident", number, "david.loo", "fred.luddy")
	require.NoError(t, err)
	_, err = b.emu.SetState("incident", number, snowemu.StateChange{State: "Resolved", User: "david.loo"})
	require.NoError(t, err)

	for _, path := range []string{
		"/nav_to.do?uri=incident.do?sys_id=" + id,
		"/nav_to.do?uri=" + url.QueryEscape("incident.do?sys_id="+id),
		"/incident.do?sys_id=" + id,
	} {
		status, page := b.get(t, path)
		require.Equal(t, http.StatusOK, status, path)
		require.Contains(t, page, number, path)
		require.Contains(t, page, "Resolved", "state label")
		require.Contains(t, page, "David Loo", "assignee")
		require.Contains(t, page, "Checked the bucket &lt;script&gt;x&lt;/script&gt;", "work note, escaped")
		require.Contains(t, page, "Storage &lt;b&gt;public&lt;/b&gt;")
		require.NotContains(t, page, "<script>")
		require.Regexp(t, `fred\.luddy</td><td>Assigned to</td><td>Beth Anglin</td><td>David Loo`, page, "history names who reassigned, from and to")
		require.Contains(t, page, "steward-test-1")
	}

	// The list page links each number to its record page.
	status, list := b.get(t, "/")
	require.Equal(t, http.StatusOK, status)
	m := regexp.MustCompile(`<a href="([^"]+)">` + number + `</a>`).FindStringSubmatch(list)
	require.NotNil(t, m, "the list links %s", number)
	status, page := b.get(t, m[1])
	require.Equal(t, http.StatusOK, status, m[1])
	require.Contains(t, page, number)
}

func TestRecordPageNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t, snowemu.Options{})
	for _, path := range []string{
		"/nav_to.do?uri=incident.do?sys_id=0123456789abcdef0123456789abcdef",
		"/incident.do?sys_id=0123456789abcdef0123456789abcdef",
		"/problem.do",
		"/nav_to.do?uri=sys_user.do?sys_id=x",
		"/nav_to.do",
	} {
		status, page := b.get(t, path)
		require.Equal(t, http.StatusNotFound, status, path)
		require.Contains(t, page, "Record not found", path)
	}
}
