package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/sample"
	"github.com/stewardhq/steward/internal/snowemu"
)

// readmeSkips are the README commands this test does not run, and why.
// Every entry must still match a command, so a stale one is noticed.
var readmeSkips = map[string]string{
	"demo":                            "runs until Ctrl-C; internal/demo's TestCheck and TestNarration run it",
	"make test":                       "the test suite this test belongs to",
	"integrations create --name prod": "needs a real ServiceNow instance",
}

// TestReadmeCommands runs the sh blocks of README.md's "Quick start" and
// "Connecting ServiceNow" sections as printed, in-process and in order,
// against the server and emulator they start. Only the placeholders
// <ASSESSMENT_ID>, <ID> and <KEY> are filled in, and the two addresses are
// moved to free ports (--addr on the long-running commands, STEWARD_SERVER
// for the client verbs, the emulator's URL where the README has
// http://127.0.0.1:8089). The ticket it opens must then be created in the
// emulator and its link must open the record.
func TestReadmeCommands(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	var cmds []string
	for _, section := range []string{"Quick start", "Connecting ServiceNow"} {
		for _, block := range shBlocks(t, string(readme), section) {
			cmds = append(cmds, shCommands(block)...)
		}
	}
	require.NotEmpty(t, cmds)

	// A fresh directory and user: the server's files land here, and the
	// user's own saved tokens or settings cannot leak in.
	dir := t.TempDir()
	t.Chdir(dir)
	for _, k := range []string{"HOME", "XDG_CONFIG_HOME"} {
		t.Setenv(k, dir)
	}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "STEWARD_") {
			t.Setenv(k, "")
			require.NoError(t, os.Unsetenv(k))
		}
	}
	serverAddr, emuAddr := freeAddr(t), freeAddr(t)
	serverURL, emuURL := "http://"+serverAddr, "http://"+emuAddr
	t.Setenv("STEWARD_SERVER", serverURL)
	// The quick start's own findings file.
	require.NoError(t, os.WriteFile("findings.ocsf.json", sample.Files()[0].Data, 0o600))

	r := &readmeRun{t: t, serverURL: serverURL}
	skipped := map[string]bool{}
	for _, line := range cmds {
		args, stdin, stdout := shWords(t, line)
		args = stewardArgs(t, line, args)
		if why, ok := skipFor(args); ok {
			t.Logf("not run: %s (%s)", line, readmeSkips[why])
			skipped[why] = true
			continue
		}
		for i, a := range args {
			args[i] = strings.ReplaceAll(a, "http://127.0.0.1:8089", emuURL)
		}
		switch args[0] {
		case "serve":
			r.background(append(args, "--addr", serverAddr), serverURL+"/readyz")
			r.waitForSample()
			continue
		case "snow-emulator":
			r.background(append(args, "--addr", emuAddr, "--log-level", "warn"), emuURL+"/")
			continue
		}
		for i, a := range args {
			args[i] = r.fill(a)
		}
		r.run(line, args, stdin, stdout)
		t.Logf("ran: %s", line)
	}
	for why := range readmeSkips {
		require.True(t, skipped[why], "README has no command %q any more; remove it from readmeSkips", why)
	}

	// The ticket of `assign ... --ticket incident` exists in the emulator,
	// and the link `tickets list` shows opens it.
	var ticket *steward.Ticket
	require.Eventually(t, func() bool {
		c, err := r.api()
		if err != nil {
			return false
		}
		page, err := c.ListAssignments(context.Background(), url.Values{})
		if err != nil {
			return false
		}
		for _, a := range page.Items {
			if a.Type != steward.AssignmentServiceNow {
				continue
			}
			d, err := c.GetAssignment(context.Background(), a.ID)
			if err == nil && d.Ticket != nil && d.Ticket.Status == steward.TicketCreated {
				ticket = d.Ticket
				return true
			}
		}
		return false
	}, 15*time.Second, 50*time.Millisecond, "the README's ticket is created")
	require.True(t, strings.HasPrefix(ticket.Link, emuURL+"/nav_to.do?uri=incident.do?sys_id="), ticket.Link)
	resp, err := http.Get(ticket.Link)
	require.NoError(t, err)
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(page), ticket.Number)
	require.Contains(t, string(page), "Beth Anglin")
	last := r.run("tickets list", []string{"tickets", "list"}, "", "")
	require.Contains(t, last, ticket.Number)
}

// TestReadmeListsEmulatorUsers keeps the README's and --help's user lists
// the emulator's.
func TestReadmeListsEmulatorUsers(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	help, err := runCLI(t, "snow-emulator", "--help")
	require.NoError(t, err)
	users := append([]snowemu.UserSpec{{UserName: snowemu.DefaultAdminUser, FirstName: "System", LastName: "Administrator",
		Email: "admin@example.com", Password: snowemu.DefaultAdminPassword}}, snowemu.DemoUsers()...)
	for _, u := range users {
		row := regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(u.UserName) + "` \\| " + regexp.QuoteMeta(u.FirstName+" "+u.LastName) +
			" \\| " + regexp.QuoteMeta(u.Email) + " \\| `" + regexp.QuoteMeta(u.Password) + "`")
		require.Regexp(t, row, string(readme), "README lists %s", u.UserName)
		require.Regexp(t, regexp.QuoteMeta(u.UserName)+`\s+`+regexp.QuoteMeta(u.FirstName+" "+u.LastName)+`\s+`+
			regexp.QuoteMeta(u.Email)+`\s+`+regexp.QuoteMeta(u.Password), help, "--help lists %s", u.UserName)
	}
}

type readmeRun struct {
	t         *testing.T
	serverURL string
	client    *apiclient.Client
}

// api is a client with the token `serve --sample` wrote (once it has), for
// looking up what the placeholders stand for.
func (r *readmeRun) api() (*apiclient.Client, error) {
	if r.client == nil {
		tok, err := os.ReadFile("steward.token")
		if err != nil {
			return nil, err
		}
		if r.client, err = apiclient.New(r.serverURL, strings.TrimSpace(string(tok))); err != nil {
			return nil, err
		}
	}
	return r.client, nil
}

// mustAPI is api for the test goroutine.
func (r *readmeRun) mustAPI() *apiclient.Client {
	c, err := r.api()
	require.NoError(r.t, err)
	return c
}

// background starts a long-running command until the test ends and waits
// until ready answers 200.
func (r *readmeRun) background(args []string, ready string) {
	t := r.t
	var stderr syncBuffer
	cmd := newRootCommand(io.Discard, &stderr)
	cmd.SetArgs(args)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("steward %s did not stop", strings.Join(args, " "))
		}
	})
	require.Eventually(t, func() bool {
		select {
		case err := <-done:
			t.Fatalf("steward %s stopped: %v\n%s", strings.Join(args, " "), err, stderr.String())
		default:
		}
		resp, err := http.Get(ready)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "steward %s is ready", strings.Join(args, " "))
}

// waitForSample waits until `serve --sample` has imported its findings.
func (r *readmeRun) waitForSample() {
	require.Eventually(r.t, func() bool {
		c, err := r.api()
		if err != nil {
			return false
		}
		page, err := c.ListAssessments(context.Background(), url.Values{"status": {"Unhealthy"}})
		return err == nil && len(page.Items) > 0
	}, 30*time.Second, 50*time.Millisecond, "the sample findings are imported")
}

// fill replaces the README's placeholders with what a reader would pick:
// a recommendation with unhealthy resources, an unhealthy assessment not
// assigned yet, the latest assignment.
func (r *readmeRun) fill(arg string) string {
	ctx := context.Background()
	t := r.t
	switch arg {
	case "<KEY>":
		// The counts are recomputed by a job after the import.
		key := ""
		require.Eventually(t, func() bool {
			page, err := r.mustAPI().ListRecommendations(ctx, url.Values{})
			if err != nil {
				return false
			}
			for _, rec := range page.Items {
				if rec.Unhealthy > 0 {
					key = rec.Key
					return true
				}
			}
			return false
		}, 30*time.Second, 50*time.Millisecond, "a recommendation with unhealthy resources")
		return key
	case "<ASSESSMENT_ID>":
		page, err := r.mustAPI().ListAssessments(ctx, url.Values{"status": {"Unhealthy"}, "limit": {"500"}})
		require.NoError(t, err)
		active, err := r.mustAPI().ListAssignments(ctx, url.Values{})
		require.NoError(t, err)
		assigned := map[int64]bool{}
		for _, a := range active.Items {
			assigned[a.AssessmentID] = true
		}
		for _, a := range page.Items {
			if !assigned[a.ID] {
				return itoa(a.ID)
			}
		}
		t.Fatal("no unassigned unhealthy assessment left")
	case "<ID>":
		page, err := r.mustAPI().ListAssignments(ctx, url.Values{})
		require.NoError(t, err)
		require.NotEmpty(t, page.Items)
		return itoa(page.Items[0].ID)
	}
	require.NotRegexp(t, `<[A-Za-z_ ]+>`, arg, "a placeholder this test does not fill")
	return arg
}

// run runs one client command in-process and returns its standard output.
func (r *readmeRun) run(line string, args []string, stdin, stdout string) string {
	t := r.t
	var out, errOut bytes.Buffer
	cmd := newRootCommand(&out, &errOut)
	cmd.SetArgs(args)
	if stdin != "" {
		f, err := os.Open(stdin)
		require.NoError(t, err)
		defer f.Close()
		cmd.SetIn(f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, cmd.ExecuteContext(ctx), "README command failed: %s\nargs: %q\n%s", line, args, errOut.String())
	if stdout != "" {
		require.NoError(t, os.WriteFile(stdout, out.Bytes(), 0o600))
	}
	return out.String()
}

// shBlocks returns the ```sh blocks of the README section with that heading.
func shBlocks(t *testing.T, readme, heading string) []string {
	start := strings.Index(readme, "\n## "+heading+"\n")
	require.NotEqual(t, -1, start, "README has a section %q", heading)
	section := readme[start+1:]
	if end := strings.Index(section[3:], "\n## "); end != -1 {
		section = section[:end+3]
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(section, -1) {
		blocks = append(blocks, m[1])
	}
	require.NotEmpty(t, blocks, "section %q has sh blocks", heading)
	return blocks
}

// shCommands splits a block into commands: continuation lines joined,
// comments and blank lines dropped.
func shCommands(block string) []string {
	var out []string
	for _, line := range strings.Split(strings.ReplaceAll(block, "\\\n", " "), "\n") {
		if i := strings.Index(line, " #"); i != -1 {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

// shWords splits a command into words (with '...' and "..." quoting) and
// its "< file" and "> file" redirections.
func shWords(t *testing.T, line string) (words []string, stdin, stdout string) {
	var all []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, c := range line {
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(c)
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == ' ' || c == '\t':
			if inWord {
				all = append(all, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	require.Zero(t, quote, "unbalanced quotes in %s", line)
	if inWord {
		all = append(all, cur.String())
	}
	for i := 0; i < len(all); i++ {
		switch all[i] {
		case "<", ">":
			require.Less(t, i+1, len(all), "a redirection without a file in %s", line)
			if all[i] == "<" {
				stdin = all[i+1]
			} else {
				stdout = all[i+1]
			}
			i++
		default:
			words = append(words, all[i])
		}
	}
	return words, stdin, stdout
}

// stewardArgs drops the command name: `go run ./cmd/steward`, `steward`,
// or `make` for the Makefile's targets.
func stewardArgs(t *testing.T, line string, words []string) []string {
	switch {
	case len(words) > 3 && words[0] == "go" && words[1] == "run" && words[2] == "./cmd/steward":
		return words[3:]
	case len(words) > 1 && words[0] == "steward":
		return words[1:]
	case len(words) > 0 && words[0] == "make":
		return words
	}
	t.Fatalf("README command is not a steward command: %s", line)
	return nil
}

// skipFor reports which readmeSkips entry args match.
func skipFor(args []string) (string, bool) {
	joined := strings.Join(args, " ")
	for prefix := range readmeSkips {
		if joined == prefix || strings.HasPrefix(joined, prefix+" ") {
			return prefix, true
		}
	}
	return "", false
}
