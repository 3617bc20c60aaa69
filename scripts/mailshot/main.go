// Command mailshot renders a sample weekly digest e-mail and screenshots
// its HTML part in headless Chromium, for the documentation. It is a
// development tool, not part of Steward. Run it from the repository root:
//
//	go run ./scripts/mailshot -o docs/screenshots/notification-digest.png
//
// -text also prints the plain-text part, -html writes the HTML part, -dark
// renders it as a mail client in dark mode shows it.
//
// The sample is real public data read from testdata/ (see sample): the
// recommendations of Microsoft's Defender for Cloud reference, the
// resources of the Azure REST API examples, an AWS Security Hub and a
// Trivy finding from the ASFF samples, and ServiceNow ticket numbers from
// the Table API samples. Only the owner, the dates and Steward's address
// are made up (example.com).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/notify"
	"github.com/stewardhq/steward/internal/source"
	"github.com/stewardhq/steward/internal/store"
)

func main() {
	out := flag.String("o", "", "the PNG to write, e.g. docs/screenshots/notification-digest.png")
	htmlOut := flag.String("html", "", "also write the HTML part to this file")
	text := flag.Bool("text", false, "also print the plain-text part")
	testdata := flag.String("testdata", "testdata", "the repository's testdata directory")
	width := flag.Int("width", 800, "the window's width in CSS pixels")
	dark := flag.Bool("dark", false, "render as a mail client in dark mode shows it (prefers-color-scheme: dark)")
	flag.Parse()
	if err := run(*out, *htmlOut, *text, *testdata, *width, *dark); err != nil {
		fmt.Fprintln(os.Stderr, "mailshot:", err)
		os.Exit(1)
	}
}

func run(out, htmlOut string, printText bool, testdata string, width int, dark bool) error {
	if out == "" {
		return errors.New("-o (the PNG to write) is required")
	}
	d, err := sample(testdata)
	if err != nil {
		return err
	}
	msg, err := notify.RenderDigest(d)
	if err != nil {
		return err
	}
	if printText {
		fmt.Printf("Subject: %s\n\n%s", msg.Subject, msg.Text)
	}
	if htmlOut != "" {
		if err := os.WriteFile(htmlOut, []byte(msg.HTML), 0o644); err != nil {
			return err
		}
	}
	png, err := screenshot(msg.HTML, width, dark)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "mailshot: wrote %s (%d bytes)\n", out, len(png))
	return nil
}

// The sample's moment: a Monday 08:00 digest of ISO week 2026-W48.
var now = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

const (
	owner     = "alex.morgan@example.com"
	publicURL = "https://steward.example.com"
	// Steward links a ServiceNow ticket as <instance>/nav_to.do?uri=<table>.do?sys_id=<sys_id>
	// (internal/itsm/servicenow); the instance's name is a placeholder.
	instance = "https://instance.service-now.com"
)

// sample builds the digest from testdata's real records.
func sample(testdata string) (notify.Digest, error) {
	defender, err := defenderRecommendations(filepath.Join(testdata, "azure", "defender_for_cloud_compute_recommendations.json"))
	if err != nil {
		return notify.Digest{}, err
	}
	azure, err := azureResources(filepath.Join(testdata, "azure", "ListAssessments_example.json"))
	if err != nil {
		return notify.Digest{}, err
	}
	aws, err := observations(filepath.Join(testdata, "asff", "asff_sample.json"))
	if err != nil {
		return notify.Digest{}, err
	}
	trivy, err := observations(filepath.Join(testdata, "asff", "trivy-image_golang-1.12-alpine_sample.json"))
	if err != nil {
		return notify.Digest{}, err
	}
	tickets, err := serviceNowTickets(filepath.Join(testdata, "servicenow", "task_ticket_more_than_5.json"),
		filepath.Join(testdata, "servicenow", "create_ticket.json"))
	if err != nil {
		return notify.Digest{}, err
	}
	if len(azure) < 3 || len(tickets) < 3 {
		return notify.Digest{}, fmt.Errorf("testdata has %d Azure resources and %d tickets; the sample needs 3 and 3", len(azure), len(tickets))
	}
	vmss1, vmss2, workspace := azure[0], azure[1], azure[2]

	var items []store.NotificationItem
	var errs []error
	id := int64(1040)
	fromDefender := func(name, resource string, dueInDays int, ticket *ticketRecord) {
		rec, ok := defender[name]
		if !ok {
			errs = append(errs, fmt.Errorf("no Defender recommendation %q in testdata", name))
			return
		}
		items = append(items, item(&id, rec.key, name, rec.severity, resource, dueInDays, ticket))
	}
	fromObservations := func(obs []steward.Observation, key string, dueInDays int, ticket *ticketRecord) {
		for _, o := range obs {
			if o.Recommendation.Key == key {
				r := o.Recommendation
				items = append(items, item(&id, r.Key, r.DisplayName, r.Severity, o.Resource.ID, dueInDays, ticket))
				return
			}
		}
		errs = append(errs, fmt.Errorf("no finding %q in testdata", key))
	}
	fromDefender("Endpoint protection should be installed on virtual machine scale sets", vmss1, -9, &tickets[0])
	fromObservations(aws, "securityhub:Config.1", -4, nil)
	fromDefender("System updates on virtual machine scale sets should be installed", vmss2, -2, &tickets[1])
	fromObservations(trivy, "trivy:CVE-2021-3711", 1, &tickets[2])
	fromDefender("Microsoft Defender for Servers should be enabled on workspaces", workspace, 4, nil)
	fromDefender("Diagnostic logs in Virtual Machine Scale Sets should be enabled", vmss2, 18, nil)
	fromDefender("Guest Attestation extension should be installed on supported Linux virtual machine scale sets", vmss1, 32, nil)
	if err := errors.Join(errs...); err != nil {
		return notify.Digest{}, err
	}
	return notify.Digest{Owner: owner, Items: items, Now: now, Location: time.UTC, PublicURL: publicURL, Period: "2026-W48"}, nil
}

func item(id *int64, key, name string, sev steward.Severity, resource string, dueInDays int, t *ticketRecord) store.NotificationItem {
	*id += 7
	it := store.NotificationItem{AssignmentID: *id, Owner: owner, RecommendationKey: key, RecommendationName: name,
		Severity: sev, ResourceID: resource, DueDate: time.Date(2026, 11, 23+dueInDays, 0, 0, 0, 0, time.UTC)}
	it.Type = steward.AssignmentManual
	if t != nil {
		it.Type, it.TicketStatus = steward.AssignmentServiceNow, steward.TicketCreated
		it.TicketNumber, it.TicketState = t.Number, t.State
		it.TicketLink = instance + "/nav_to.do?uri=ticket.do?sys_id=" + url.QueryEscape(t.SysID)
	}
	return it
}

type defenderRecommendation struct {
	key      string
	severity steward.Severity
}

// defenderRecommendations reads the Defender for Cloud reference extract:
// name → assessment key (Defender's recommendation key) and severity.
func defenderRecommendations(path string) (map[string]defenderRecommendation, error) {
	var doc struct {
		Recommendations []struct {
			Name          string `json:"name"`
			AssessmentKey string `json:"assessmentKey"`
			Severity      string `json:"severity"`
		} `json:"recommendations"`
	}
	if err := readJSON(path, &doc); err != nil {
		return nil, err
	}
	out := map[string]defenderRecommendation{}
	for _, r := range doc.Recommendations {
		sev, err := steward.ParseSeverity(r.Severity)
		if err != nil || r.AssessmentKey == "" {
			continue
		}
		out[r.Name] = defenderRecommendation{key: r.AssessmentKey, severity: sev}
	}
	return out, nil
}

// azureResources reads the assessed resources of an Azure REST example,
// then the Log Analytics workspaces they report to.
func azureResources(path string) ([]string, error) {
	var doc struct {
		Responses struct {
			OK struct {
				Body struct {
					Value []struct {
						Properties struct {
							ResourceDetails struct {
								ID string `json:"id"`
							} `json:"resourceDetails"`
							AdditionalData struct {
								LinkedWorkspaceID string `json:"linkedWorkspaceId"`
							} `json:"additionalData"`
						} `json:"properties"`
					} `json:"value"`
				} `json:"body"`
			} `json:"200"`
		} `json:"responses"`
	}
	if err := readJSON(path, &doc); err != nil {
		return nil, err
	}
	var out, workspaces []string
	for _, v := range doc.Responses.OK.Body.Value {
		out = append(out, v.Properties.ResourceDetails.ID)
		if ws := v.Properties.AdditionalData.LinkedWorkspaceID; ws != "" && !slices.Contains(workspaces, ws) {
			workspaces = append(workspaces, ws)
		}
	}
	return append(out, workspaces...), nil
}

// observations parses a findings file as Steward imports it.
func observations(path string) ([]steward.Observation, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p, r, _, err := source.Open(f, "")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []steward.Observation
	err = p.Parse(context.Background(), r, func(o steward.Observation) error {
		out = append(out, o)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

type ticketRecord struct{ Number, State, SysID string }

// serviceNowTickets reads the distinct tickets of Table API answers (a
// list's result array or a create's result object).
func serviceNowTickets(paths ...string) ([]ticketRecord, error) {
	var out []ticketRecord
	seen := map[string]bool{}
	for _, path := range paths {
		var doc struct {
			Result json.RawMessage `json:"result"`
		}
		if err := readJSON(path, &doc); err != nil {
			return nil, err
		}
		var records []struct {
			Number string `json:"number"`
			State  string `json:"state"`
			SysID  string `json:"sys_id"`
		}
		if bytes.HasPrefix(bytes.TrimSpace(doc.Result), []byte("{")) {
			doc.Result = append(append([]byte("["), doc.Result...), ']')
		}
		if err := json.Unmarshal(doc.Result, &records); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for _, r := range records {
			if r.Number == "" || seen[r.Number] {
				continue
			}
			seen[r.Number] = true
			out = append(out, ticketRecord{Number: r.Number, State: r.State, SysID: r.SysID})
		}
	}
	return out, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// screenshot opens html in headless Chromium (found as internal/web's
// browser tests find it) and captures the whole page.
func screenshot(html string, width int, dark bool) ([]byte, error) {
	browser, err := chromium()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "steward-mailshot-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	page := filepath.Join(dir, "digest.html")
	if err := os.WriteFile(page, []byte(html), 0o644); err != nil {
		return nil, err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.Flag("headless", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(width, 600),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	scheme := "light"
	if dark {
		scheme = "dark"
	}
	var png []byte
	err = chromedp.Run(bctx,
		emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}),
		chromedp.Navigate("file://"+page),
		chromedp.WaitVisible("body", chromedp.ByQuery),
		chromedp.FullScreenshot(&png, 100),
	)
	if err != nil {
		return nil, fmt.Errorf("screenshot in %s: %w", browser, err)
	}
	_ = chromedp.Cancel(bctx) // closes the browser before its profile is removed
	return png, nil
}

// chromium finds Debian's Chromium (or Chrome) on PATH.
func chromium() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("chromium is not installed (apt-get install chromium)")
}
