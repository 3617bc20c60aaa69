package bench

import (
	"context"
	"encoding/json"
	"io"

	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"time"
)

// importAndPages runs the import scenario (N assessments through the
// import API: rate and peak RSS) and, on the same database, the page
// scenario (p99 of the first recommendations page, unfiltered and
// scoped). Each run starts a fresh server; the file is generated once.
func (r *runner) importAndPages(ctx context.Context) error {
	est := NewEstate(r.opts.ImportSize)
	sub := est.InSubscription()
	doImport, doPages := r.opts.selected(ScenarioImport), r.opts.selected(ScenarioPages)
	var rate, rss *Row
	if doImport {
		rate = r.row(Row{Scenario: "import", Measure: fmt.Sprintf("import of %s assessments (upload to done, API)", group(int64(est.N))),
			Unit: PerSecond, Target: AtLeast(140_000), BaselineText: "68,000/s (issue 15, recorded)"})
		rss = r.row(Row{Scenario: "import", Measure: "peak RSS during the first import (VmHWM of the bench process, which runs the server, reset before it starts)",
			Unit: MiB, Target: Below(300), BaselineText: "164–177 MiB (issue 15, recorded)", Note: "first run only"})
	}
	type page struct {
		path string
		row  *Row
		want int
	}
	var pages []page
	if doPages {
		n := fmt.Sprintf("p99 of %s", group(int64(r.opts.PageRequests)))
		pages = []page{
			{"/api/v1/recommendations?limit=100", r.row(Row{Scenario: "pages",
				Measure: n + " GETs, first page, unfiltered", Unit: Millis, Target: Below(5), BaselineText: "1.3–1.4 ms (recorded)"}), est.N},
			{"/api/v1/recommendations?limit=100&scope=" + url.QueryEscape(SubscriptionScope), r.row(Row{Scenario: "pages",
				Measure: fmt.Sprintf("%s GETs, first page, scope %s (%s assessments)", n, SubscriptionScope, group(int64(sub))),
				Unit:    Millis, Target: Below(5), BaselineText: "28–37 ms at 100k (recorded)"}), sub},
			{"/api/v1/recommendations?limit=100&scope=" + url.QueryEscape(EstateScope), r.row(Row{Scenario: "pages",
				Measure: fmt.Sprintf("%s GETs, first page, scope %s (%s assessments)", n, EstateScope, group(int64(est.N))),
				Unit:    Millis, Target: Below(5), BaselineText: "seconds (issue 15)"}), est.N},
		}
	}
	all := []*Row{rate, rss}
	for _, p := range pages {
		all = append(all, p.row)
	}
	all = nonNil(all)

	file := filepath.Join(r.dir, "estate.jsonl")
	r.logf("import: generating %s assessments into %s", group(int64(est.N)), file)
	if err := writeFile(file, est.Write); err != nil {
		fail(err, all...)
		return err
	}
	defer os.Remove(file)
	info, err := os.Stat(file)
	if err != nil {
		fail(err, all...)
		return err
	}
	r.logf("import: file %s MB", group(info.Size()>>20))

	for k := 1; k <= r.opts.Runs; k++ {
		r.logf("import/pages: run %d/%d", k, r.opts.Runs)
		err := func() error {
			// Free what earlier scenarios left, so the peak is this import's.
			runtime.GC()
			debug.FreeOSMemory()
			before, _ := procField("/proc/self/status", "VmRSS")
			reset := resetPeakRSS()
			env, err := startSteward(ctx, r.dir, r.opts.PostgresServer, r.opts.Logger)
			if err != nil {
				return err
			}
			defer env.close()
			secs, err := importFile(ctx, env, file, info.Size(), est.N)
			if err != nil {
				return err
			}
			if doImport {
				rate.Values = append(rate.Values, float64(est.N)/secs)
				// Only the first run measures memory: a later server reuses
				// what earlier ones left allocated (SQLite's C heap is not
				// returned to the OS), so its peak says nothing clean.
				peak, ok := peakRSSMiB()
				if ok && k == 1 {
					rss.Values = append(rss.Values, peak)
					if !reset {
						rss.Note = "VmHWM since the process started (clear_refs refused)"
					}
				}
				r.logf("import: %.1f s, %s assessments/s, peak RSS %.0f MiB (%.0f MiB before the server started)",
					secs, group(int64(float64(est.N)/secs)), peak, float64(before)/1024)
			}
			if !doPages {
				return nil
			}
			// Counts may be computed after the import; wait until every
			// listing counts its scope's assessments.
			for _, p := range pages {
				if err := waitFor(ctx, 10*time.Minute, 100*time.Millisecond, "counts of "+p.path, func() (bool, error) {
					n, err := countAssessments(ctx, env, p.path)
					return n == p.want, err
				}); err != nil {
					return err
				}
			}
			for _, p := range pages {
				lat, err := timeGets(ctx, env, p.path, 20, r.opts.PageRequests, pageBudget)
				if err != nil {
					return err
				}
				if len(lat) < r.opts.PageRequests {
					p.row.Note = fmt.Sprintf("only %d requests fit in the %s budget", len(lat), pageBudget)
				}
				p.row.Values = append(p.row.Values, ms(Percentile(lat, 0.99)))
				r.logf("pages: %s p50 %.2f ms p99 %.2f ms", p.path, ms(Percentile(lat, 0.5)), ms(Percentile(lat, 0.99)))
			}
			return nil
		}()
		if err != nil {
			fail(err, all...)
			return err
		}
	}
	return nil
}

func nonNil(rows []*Row) []*Row {
	out := rows[:0]
	for _, r := range rows {
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}

func writeFile(path string, write func(ioWriter) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// importFile uploads path through the import API and waits for it to be
// applied; it returns the seconds from the upload's start to the import's
// success.
func importFile(ctx context.Context, env *stewardEnv, path string, size int64, want int) (float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	start := time.Now()
	imp, err := env.client.UploadImport(ctx, f, size, filepath.Base(path), "")
	if err != nil {
		return 0, fmt.Errorf("upload %s: %w", path, err)
	}
	for imp.State == "queued" || imp.State == "running" {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if imp, err = env.client.GetImport(ctx, imp.ID); err != nil {
			return 0, err
		}
	}
	secs := time.Since(start).Seconds()
	if imp.State != "succeeded" {
		return 0, fmt.Errorf("import %d %s: %s", imp.ID, imp.State, imp.Error)
	}
	if imp.Result.Observations != want {
		return 0, fmt.Errorf("import %d applied %d observations, want %d", imp.ID, imp.Result.Observations, want)
	}
	return secs, nil
}

// countAssessments sums the counts of a recommendations page (every
// recommendation fits on it).
func countAssessments(ctx context.Context, env *stewardEnv, path string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, env.srv.URL()+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+env.token)
	resp, err := env.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	var page struct {
		Items []struct {
			Unhealthy     int `json:"unhealthy"`
			Healthy       int `json:"healthy"`
			NotApplicable int `json:"not_applicable"`
		} `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return 0, fmt.Errorf("GET %s: %w", path, err)
	}
	n := 0
	for _, it := range page.Items {
		n += it.Unhealthy + it.Healthy + it.NotApplicable
	}
	return n, nil
}

// pageBudget bounds the time one page's requests may take, so a page that
// costs seconds (a scope counted on the fly) cannot hold the bench for an
// hour; its figure then comes from fewer requests, and the table says so.
const pageBudget = time.Minute

// timeGets sends warm untimed GETs of path, then n timed ones, one after
// another, and returns their latencies; it stops early, with at least one
// timed request, once budget has passed.
func timeGets(ctx context.Context, env *stewardEnv, path string, warm, n int, budget time.Duration) ([]time.Duration, error) {
	deadline := time.Now().Add(budget)
	for range warm {
		if _, err := env.get(ctx, path); err != nil {
			return nil, err
		}
		if time.Now().After(deadline) {
			break
		}
	}
	lat := make([]time.Duration, 0, n)
	for i := range n {
		if i > 0 && time.Now().After(deadline) {
			break
		}
		d, err := env.get(ctx, path)
		if err != nil {
			return nil, err
		}
		lat = append(lat, d)
	}
	return lat, nil
}

type ioWriter = io.Writer
