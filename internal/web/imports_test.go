package web_test

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/auth/authtest"
	"github.com/stewardhq/steward/internal/config"
)

// importUpload picks path in the upload form and sends it, landing on the
// import's page; it returns the import's ID from the URL.
func importUpload(t *testing.T, ctx context.Context, b *uiBundle, path, format string) int64 {
	t.Helper()
	var loc string
	run(t, ctx,
		chromedp.Navigate(b.url+"/imports"),
		chromedp.WaitVisible(`#file`, chromedp.ByID),
		chromedp.SetValue(`#format`, format, chromedp.ByID),
		chromedp.SetUploadFiles(`#file`, []string{path}, chromedp.ByID),
		chromedp.Click(`form.upload button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#import-state`, chromedp.ByID),
		chromedp.Location(&loc),
	)
	prefix := b.url + "/imports/"
	require.True(t, strings.HasPrefix(loc, prefix), "the upload leads to the import's page, got %s", loc)
	id, err := strconv.ParseInt(strings.TrimPrefix(loc, prefix), 10, 64)
	require.NoError(t, err)
	return id
}

// importWriteFindings writes n good Steward JSON Lines records.
func importWriteFindings(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	w := bufio.NewWriter(f)
	for i := range n {
		fmt.Fprintf(w, `{"resource":{"id":"/aws/accounts/123456789012/regions/eu-west-1/bucket-%d","name":"bucket-%d","type":"AWS::S3::Bucket","cloud":"aws","region":"eu-west-1"},`+
			`"recommendation":{"key":"test:s3-%d","display_name":"S3 bucket %d should block public access","severity":"High","source":"test"},"status":"Unhealthy","status_reason":"public"}`+"\n", i, i, i%50, i%50)
	}
	require.NoError(t, w.Flush())
	require.NoError(t, f.Close())
}

// TestImportsUploadInBrowser: a contributor uploads a real Prowler OCSF
// file through the form and sees it done with its counts; a large file
// shows its progress (phase and records) while it runs; a malformed file
// shows the record the API refused and why.
func TestImportsUploadInBrowser(t *testing.T) {
	b := startUI(t)
	ctx := newBrowser(t)
	signIn(t, ctx, b, b.tokenFor(t, "uploader@example.com", steward.RoleContributor))

	run(t, ctx, chromedp.Navigate(b.url+"/imports"), chromedp.WaitVisible(`#file`, chromedp.ByID))
	checkA11y(t, ctx, "imports")

	// A real Prowler OCSF file, its format detected.
	prowler, err := filepath.Abs(filepath.Join("..", "..", "testdata", "findings", "prowler_example_output_aws.ocsf.json"))
	require.NoError(t, err)
	id := importUpload(t, ctx, b, prowler, "")
	waitText(t, ctx, `#import-state`, "succeeded", 20*time.Second)
	imp, err := b.client.GetImport(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, "ocsf", imp.Format)
	require.Positive(t, imp.Result.Observations)
	require.Contains(t, textOf(t, ctx, `#import-done`), fmt.Sprintf("Imported %d records", imp.Result.Observations))
	require.Contains(t, textOf(t, ctx, `#import-counts`), fmt.Sprintf("Assessments created\t%d", imp.Result.AssessmentsCreated))
	require.Equal(t, "uploader@example.com", imp.CreatedBy)
	checkA11y(t, ctx, "import")

	// A file large enough to watch: the page follows its progress by
	// itself (data-live) until it is done. (Under the race detector
	// SQLite runs some 40 times slower: 20,000 records take long enough
	// to watch, and the summaries recompute that follows holds the writer
	// for seconds rather than minutes.)
	const n = 20000
	big := filepath.Join(t.TempDir(), "big.jsonl")
	importWriteFindings(t, big, n)
	id = importUpload(t, ctx, b, big, "steward")
	// Watch the page (refreshed by data-live) until the import is done.
	var seen []string
	deadline := time.Now().Add(5 * time.Minute) // a bound for a loaded machine, not a speed check
	for time.Now().Before(deadline) {
		var status string
		_ = chromedp.Run(ctx, chromedp.Text(`#import-status`, &status, chromedp.ByQuery, chromedp.AtLeast(0)))
		if len(seen) == 0 || seen[len(seen)-1] != status {
			seen = append(seen, status)
		}
		if strings.Contains(status, "succeeded") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	all := strings.Join(seen, "\n")
	require.Contains(t, all, "succeeded", "the import finished: %s", all)
	require.Regexp(t, `running[\s\S]*Applying \(kept only if every record is good\): \d+ records applied, \d+ of \d+ bytes read`, all, "the page showed the import applying")
	require.Contains(t, textOf(t, ctx, `#import-done`), fmt.Sprintf("Imported %d records", n))
	var live bool
	run(t, ctx, chromedp.Evaluate(`document.querySelector("#import-status[data-live]") !== null`, &live))
	require.False(t, live, "a finished import stops refreshing")
	st, err := os.Stat(big)
	require.NoError(t, err)
	imp, err = b.client.GetImport(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, st.Size(), imp.Size, "the whole file went through")
	require.Equal(t, "big.jsonl", imp.Filename)

	// The list shows both with their state and counts.
	run(t, ctx, chromedp.Navigate(b.url+"/imports"), chromedp.WaitVisible(`table`, chromedp.ByQuery))
	list := textOf(t, ctx, `table`)
	require.Contains(t, list, "big.jsonl")
	require.Contains(t, list, "prowler_example_output_aws.ocsf.json")
	require.Contains(t, list, strconv.Itoa(n))

	// The summaries job the import queued recomputes the counts; on SQLite
	// it holds the one writer meanwhile, which an upload (its import row)
	// waits for. Wait for it, so the next upload measures the page, not
	// the recompute on a loaded machine.
	require.Eventually(t, func() bool {
		page, err := b.client.ListRecommendations(t.Context(), url.Values{"limit": {"500"}})
		require.NoError(t, err)
		unhealthy := 0
		for _, r := range page.Items {
			if strings.HasPrefix(r.Key, "test:s3-") {
				unhealthy += r.Unhealthy
			}
		}
		return unhealthy == n
	}, 8*time.Minute, 200*time.Millisecond, "the summaries of the big import were never recomputed")

	// A malformed file: the second record has a severity Steward does not know.
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	importWriteFindings(t, bad, 3)
	raw, err := os.ReadFile(bad)
	require.NoError(t, err)
	lines := strings.SplitN(string(raw), "\n", 3)
	lines[1] = strings.Replace(lines[1], `"severity":"High"`, `"severity":"Severe"`, 1)
	require.NoError(t, os.WriteFile(bad, []byte(strings.Join(lines, "\n")), 0o644))
	id = importUpload(t, ctx, b, bad, "")
	waitText(t, ctx, `#import-state`, "failed", 20*time.Second)
	require.Equal(t, "2", textOf(t, ctx, `#error-record`))
	require.Contains(t, textOf(t, ctx, `#error-message`), `unknown severity "Severe"`)
	require.Contains(t, textOf(t, ctx, `#import-error`), "refused at record 2 (line 2)")
	imp, err = b.client.GetImport(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, "failed", imp.State)
	checkA11y(t, ctx, "failed import")

	// The list shows the refusal too.
	run(t, ctx, chromedp.Navigate(b.url+"/imports"), chromedp.WaitVisible(`table`, chromedp.ByQuery))
	require.Contains(t, textOf(t, ctx, `table`), "record 2 (line 2)")
	screenshot(t, ctx, "imports")
}

// TestImportsUploadErrorsAtField: a file the API refuses at once (not a
// findings format) is reported at the file field, the form kept.
func TestImportsUploadErrorsAtField(t *testing.T) {
	b := startUI(t)
	ctx := newBrowser(t)
	signIn(t, ctx, b, b.token)
	// Prowler's CSV output: not a format Steward reads.
	csv := filepath.Join(t.TempDir(), "prowler.csv")
	require.NoError(t, os.WriteFile(csv, []byte("AUTH_METHOD;TIMESTAMP;ACCOUNT_UID\nprofile;2024-01-01;123\n"), 0o600))
	run(t, ctx,
		chromedp.Navigate(b.url+"/imports"),
		chromedp.WaitVisible(`#file`, chromedp.ByID),
		chromedp.SetUploadFiles(`#file`, []string{csv}, chromedp.ByID),
		chromedp.Click(`form.upload button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#file-error`, chromedp.ByID),
	)
	require.Contains(t, textOf(t, ctx, `#file-error`), "cannot tell the format of the input (it is not JSON)")
	var describedBy string
	var ok bool
	run(t, ctx, chromedp.AttributeValue(`#file`, "aria-describedby", &describedBy, &ok, chromedp.ByID))
	require.Contains(t, describedBy, "file-error")
	checkA11y(t, ctx, "imports with an upload error")
	p, err := b.client.ListImports(t.Context(), nil)
	require.NoError(t, err)
	require.Empty(t, p.Items, "nothing was recorded")
}

// importPostFromPage posts the upload form from the page with fetch (as a
// user would by crafting the request) and returns the status and body.
func importPostFromPage(t *testing.T, ctx context.Context) (int, string) {
	t.Helper()
	var res struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	}
	run(t, ctx, chromedp.Evaluate(`(async () => {
		const fd = new FormData();
		fd.append("format", "");
		fd.append("file", new Blob(['{"resource":{"id":"/x/y","name":"y","type":"Other","cloud":"aws"},"recommendation":{"key":"k","display_name":"K","severity":"Low","source":"test"},"status":"Unhealthy"}\n']), "one.jsonl");
		const r = await fetch("/imports", {method: "POST", body: fd, headers: {Accept: "text/html"}});
		return {status: r.status, body: await r.text()};
	})()`, &res, func(p *cdpruntime.EvaluateParams) *cdpruntime.EvaluateParams { return p.WithAwaitPromise(true) }))
	return res.Status, res.Body
}

// TestImportsReaderAndScopedCannotUpload: a reader sees the list without
// the upload form and is refused (403) when posting anyway; a contributor
// limited to a scope is told why uploads are refused, and the API's
// refusal is shown when posting anyway. Nothing is imported.
func TestImportsReaderAndScopedCannotUpload(t *testing.T) {
	b := startUI(t)

	ctx := newBrowser(t)
	signIn(t, ctx, b, b.tokenFor(t, "viewer@example.com", steward.RoleReader))
	run(t, ctx, chromedp.Navigate(b.url+"/imports"), chromedp.WaitVisible(`h1`, chromedp.ByQuery))
	var forms int
	run(t, ctx, chromedp.Evaluate(`document.querySelectorAll('form[action="/imports"], input[type=file]').length`, &forms))
	require.Zero(t, forms, "a reader sees no upload form")
	checkA11y(t, ctx, "imports (reader)")
	status, body := importPostFromPage(t, ctx)
	require.Equal(t, 403, status)
	require.Contains(t, body, "this page needs the contributor role")

	scoped := authtest.ScopedToken(t, b.srv.DB, "team-web@example.com", steward.RoleContributor, "/aws/accounts/123456789012")
	ctx2 := newBrowser(t)
	signIn(t, ctx2, b, scoped)
	run(t, ctx2, chromedp.Navigate(b.url+"/imports"), chromedp.WaitVisible(`#upload-scoped`, chromedp.ByID))
	run(t, ctx2, chromedp.Evaluate(`document.querySelectorAll('input[type=file]').length`, &forms))
	require.Zero(t, forms)
	require.Contains(t, textOf(t, ctx2, `#upload-scoped`), "/aws/accounts/123456789012")
	checkA11y(t, ctx2, "imports (scoped)")
	status, body = importPostFromPage(t, ctx2)
	require.Equal(t, 403, status)
	require.Contains(t, body, "is limited to /aws/accounts/123456789012")
	require.Contains(t, body, "POST /api/v1/assessments")

	p, err := b.client.ListImports(t.Context(), nil)
	require.NoError(t, err)
	require.Empty(t, p.Items, "nothing was imported")
}

// TestImportsTooLarge: a file over the server's limit is cut off while it
// streams and reported at the file field; nothing is recorded.
func TestImportsTooLarge(t *testing.T) {
	b := startUI(t, func(cfg *config.Config) { cfg.MaxImportBytes = 4096 })
	ctx := newBrowser(t)
	signIn(t, ctx, b, b.token)
	big := filepath.Join(t.TempDir(), "big.jsonl")
	importWriteFindings(t, big, 50000) // about 15 MB
	run(t, ctx,
		chromedp.Navigate(b.url+"/imports"),
		chromedp.WaitVisible(`#file`, chromedp.ByID),
		chromedp.SetUploadFiles(`#file`, []string{big}, chromedp.ByID),
		chromedp.Click(`form.upload button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#file-error`, chromedp.ByID),
	)
	require.Contains(t, textOf(t, ctx, `#file-error`), "larger than 4096 bytes")
	p, err := b.client.ListImports(t.Context(), nil)
	require.NoError(t, err)
	require.Empty(t, p.Items)
}
