package bench

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/snowemu"
)

// agents are the users the emulated agent reassigns tickets to (seeded
// emulator users, each with an e-mail Steward follows as the new owner).
var agents = []string{"david.loo", "fred.luddy", "abel.tuter"}

// changer is the ServiceNow user making the changes.
const changer = "beth.anglin"

// rateLimitedBurst is the burst of scenario (b), at the integration's
// default rate limit.
const rateLimitedBurst = 500

// naive is the baseline's server option: one Table API read per event.
var naive = []server.Option{server.WithSyncBatch(1)}

// hooked is a ticket environment whose tickets exist and whose emulator
// posts its business-rule webhook to Steward through a timing proxy.
type hooked struct {
	*ticketEnv
	proxy   *timingProxy
	tickets []steward.TicketView
}

func (h *hooked) close() {
	if h.proxy != nil {
		h.proxy.close()
	}
	if h.ticketEnv != nil {
		h.ticketEnv.close()
	}
}

// newHooked makes n tickets (emulator without latency) and then wires the
// webhook, so only the scenario's changes are delivered.
func (r *runner) newHooked(ctx context.Context, n int, emuOpts snowemu.Options, opts []server.Option) (_ *hooked, err error) {
	h := &hooked{}
	defer func() {
		if err != nil {
			h.close()
		}
	}()
	if h.ticketEnv, err = r.newTicketEnv(ctx, n, emuOpts, 0, opts...); err != nil {
		return nil, err
	}
	if err := h.open(ctx); err != nil {
		return nil, err
	}
	if h.tickets, err = h.waitCreated(ctx, 2*time.Minute); err != nil {
		return nil, err
	}
	if h.proxy, err = startProxy(h.st.srv.URL()); err != nil {
		return nil, err
	}
	hook := snowemu.Webhook{URL: fmt.Sprintf("%s/api/v1/integrations/%d/events", h.proxy.url, h.integrationID),
		Secret: h.webhookSecret, Scheme: snowemu.SchemeSteward}
	if err := h.emu.emu.AddWebhook(hook); err != nil {
		return nil, err
	}
	return h, nil
}

// change reassigns ticket t in the emulator and returns the
// sys_mod_count Steward must reach.
func (h *hooked) change(t steward.TicketView, assignee string) (int, error) {
	rec, err := h.emu.emu.Reassign("incident", t.SysID, assignee, changer)
	if err != nil {
		return 0, fmt.Errorf("reassign %s: %w", t.Number, err)
	}
	return strconv.Atoi(rec["sys_mod_count"])
}

// paced changes the first n tickets one at a time, each after the
// previous one was applied, and returns each change's latency.
func (h *hooked) paced(ctx context.Context, n int) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, n)
	for i, t := range h.tickets[:n] {
		start := time.Now()
		want, err := h.change(t, agents[i%len(agents)])
		if err != nil {
			return nil, err
		}
		if err := waitFor(ctx, 30*time.Second, 2*time.Millisecond, "change of "+t.Number+" applied", func() (bool, error) {
			cur, err := h.st.client.GetTicket(ctx, t.AssignmentID)
			return err == nil && cur.ModCount >= want, err
		}); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(start))
		time.Sleep(10 * time.Millisecond)
	}
	return lat, nil
}

// burstResult is what one burst measured.
type burstResult struct {
	changes, applied []time.Time
	answers          []time.Duration
}

// lastChangeToAllApplied is from the agent's last change to the last
// change applied.
func (b burstResult) lastChangeToAllApplied() time.Duration {
	return slices.MaxFunc(b.applied, time.Time.Compare).Sub(slices.MaxFunc(b.changes, time.Time.Compare))
}

func (b burstResult) latencies() []time.Duration {
	out := make([]time.Duration, len(b.changes))
	for i := range b.changes {
		out[i] = b.applied[i].Sub(b.changes[i])
	}
	return out
}

// perSecond is the changes applied per second from the first change to
// the last applied.
func (b burstResult) perSecond() float64 {
	span := slices.MaxFunc(b.applied, time.Time.Compare).Sub(slices.MinFunc(b.changes, time.Time.Compare))
	return float64(len(b.changes)) / span.Seconds()
}

// burst changes the first n tickets at once (as fast as the emulator
// takes them), then lists the integration's tickets through the API
// every 10 ms and notes when each change is first seen applied.
func (h *hooked) burst(ctx context.Context, n, shift int, timeout time.Duration) (burstResult, error) {
	res := burstResult{changes: make([]time.Time, n), applied: make([]time.Time, n)}
	want := map[int64]int{}
	index := map[int64]int{}
	h.proxy.take()
	for i, t := range h.tickets[:n] {
		mod, err := h.change(t, agents[(i+shift)%len(agents)])
		if err != nil {
			return res, err
		}
		res.changes[i] = time.Now()
		want[t.AssignmentID], index[t.AssignmentID] = mod, i
	}
	left := n
	err := waitFor(ctx, timeout, 10*time.Millisecond, fmt.Sprintf("%d changes applied", n), func() (bool, error) {
		// A narrow read of the store in process, not the API's ticket list:
		// listing 1,000 tickets as JSON every 10 ms took CPU from the sync
		// being measured on a 2-core machine.
		versions, err := h.st.srv.DB.TicketVersions(ctx, h.integrationID)
		if err != nil {
			return false, err
		}
		now := time.Now()
		for id, mod := range versions {
			i, ok := index[id]
			if ok && res.applied[i].IsZero() && mod >= want[id] {
				res.applied[i] = now
				left--
			}
		}
		return left == 0, nil
	})
	if err != nil {
		return res, fmt.Errorf("%w (%d of %d applied)", err, n-left, n)
	}
	var status map[int]int
	res.answers, status = h.proxy.take()
	for code, c := range status {
		if code != 202 {
			return res, fmt.Errorf("steward answered %d webhook deliveries with %d", c, code)
		}
	}
	return res, nil
}

// webhooks runs the paced and burst scenarios: on every run, each burst
// once against Steward as built and once with server.WithSyncBatch(1),
// the naive baseline (one read per event).
func (r *runner) webhooks(ctx context.Context) error {
	burst := r.opts.Burst
	limited := min(rateLimitedBurst, burst)
	var w webhookRows
	if r.opts.selected(ScenarioPaced) {
		m := fmt.Sprintf("%d changes one at a time, change → applied", r.opts.Paced)
		w.p50 = r.row(Row{Scenario: "webhook paced", Measure: m + ", p50", Unit: Millis, BaselineText: "16 ms (recorded)"})
		w.p99 = r.row(Row{Scenario: "webhook paced", Measure: m + ", p99", Unit: Millis, Target: Below(1000), BaselineText: "50–56 ms (issue 15, recorded)"})
		w.pacedAnswer = r.row(Row{Scenario: "webhook paced", Measure: "webhook answer, p99", Unit: Millis, BaselineText: "0.8–1.0 ms mean (recorded)"})
	}
	if r.opts.selected(ScenarioBurst) {
		m := fmt.Sprintf("%s changes at once, rate limit lifted", group(int64(burst)))
		w.allApplied = r.row(Row{Scenario: "webhook burst", Measure: m + ": last change → all applied", Unit: Seconds, Target: Below(1)})
		w.burstP99 = r.row(Row{Scenario: "webhook burst", Measure: m + ": change → applied, p99", Unit: Seconds, Target: Below(1)})
		w.burstAnswer = r.row(Row{Scenario: "webhook burst", Measure: m + ": webhook answer, p99", Unit: Millis, Target: Below(20)})
		w.limitedLast = r.row(Row{Scenario: "webhook burst", Measure: fmt.Sprintf("%d changes at once, integration at its default 10 requests/s: last change → last applied", limited),
			Unit: Seconds, Target: Below(1)})
		w.sustained = r.row(Row{Scenario: "webhook burst", Measure: fmt.Sprintf("sustained: %s changes delivered concurrently, applied per second", group(int64(burst))),
			Unit: PerSecond, Target: AtLeast(2000)})
	}
	all := nonNil([]*Row{w.p50, w.p99, w.pacedAnswer, w.allApplied, w.burstP99, w.burstAnswer, w.limitedLast, w.sustained})
	for k := 1; k <= r.opts.Runs; k++ {
		if err := r.webhookRun(ctx, k, burst, limited, w); err != nil {
			fail(err, all...)
			return err
		}
	}
	return nil
}

// webhookRows are the webhook scenarios' rows; nil when not selected.
type webhookRows struct {
	p50, p99, pacedAnswer                          *Row
	allApplied, burstP99, burstAnswer, limitedLast *Row
	sustained                                      *Row
}

// webhookRun is run k of the webhook scenarios: (a) and paced on one set
// of tickets, (b), (c); as built, then the baseline.
func (r *runner) webhookRun(ctx context.Context, k, burst, limited int, w webhookRows) error {
	p50, p99, pacedAnswer := w.p50, w.p99, w.pacedAnswer
	allApplied, burstP99, burstAnswer, limitedLast, sustained := w.allApplied, w.burstP99, w.burstAnswer, w.limitedLast, w.sustained
	paced := p50 != nil
	for _, variant := range []struct {
		name     string
		opts     []server.Option
		baseline bool
	}{{"as built", nil, false}, {"baseline WithSyncBatch(1)", naive, true}} {
		if variant.baseline && allApplied == nil {
			break // the paced scenario has no measured baseline
		}
		add := func(row *Row, v float64) {
			if variant.baseline {
				row.Baseline = append(row.Baseline, v)
			} else {
				row.Values = append(row.Values, v)
			}
		}
		// (a), and paced first on the same tickets.
		n := 0
		if allApplied != nil {
			n = burst
		}
		if paced && !variant.baseline {
			n = max(n, r.opts.Paced)
		}
		if n > 0 {
			r.logf("webhook: run %d/%d, %s: %d tickets, deliveries one at a time", k, r.opts.Runs, variant.name, n)
			if err := func() error {
				h, err := r.newHooked(ctx, n, snowemu.Options{}, variant.opts)
				if err != nil {
					return err
				}
				defer h.close()
				if paced && !variant.baseline {
					lat, err := h.paced(ctx, r.opts.Paced)
					if err != nil {
						return err
					}
					answers, _ := h.proxy.take()
					p50.Values = append(p50.Values, ms(Percentile(lat, 0.5)))
					p99.Values = append(p99.Values, ms(Percentile(lat, 0.99)))
					pacedAnswer.Values = append(pacedAnswer.Values, ms(Percentile(answers, 0.99)))
					r.logf("webhook paced: p50 %.1f ms, p99 %.1f ms, answer p99 %.2f ms", ms(Percentile(lat, 0.5)), ms(Percentile(lat, 0.99)), ms(Percentile(answers, 0.99)))
				}
				if allApplied == nil {
					return nil
				}
				res, err := h.burst(ctx, burst, 1, 2*time.Minute+time.Duration(burst)*20*time.Millisecond)
				if err != nil {
					return err
				}
				add(allApplied, res.lastChangeToAllApplied().Seconds())
				add(burstP99, Percentile(res.latencies(), 0.99).Seconds())
				add(burstAnswer, ms(Percentile(res.answers, 0.99)))
				r.logf("webhook burst (%s): all applied %.2f s after the last change, p99 %.2f s, answer p99 %.1f ms", variant.name,
					res.lastChangeToAllApplied().Seconds(), Percentile(res.latencies(), 0.99).Seconds(), ms(Percentile(res.answers, 0.99)))
				return nil
			}(); err != nil {
				return err
			}
		}
		if allApplied == nil {
			continue
		}
		// (b): the integration back at its default rate limit.
		r.logf("webhook: run %d/%d, %s: %d changes at 10 requests/s", k, r.opts.Runs, variant.name, limited)
		if err := func() error {
			h, err := r.newHooked(ctx, limited, snowemu.Options{}, variant.opts)
			if err != nil {
				return err
			}
			defer h.close()
			ten := 10.0
			if _, err := h.st.client.UpdateIntegration(ctx, h.integrationID, apiclient.IntegrationRequest{RequestsPerSecond: &ten}); err != nil {
				return fmt.Errorf("set the integration's rate limit: %w", err)
			}
			res, err := h.burst(ctx, limited, 0, time.Minute+time.Duration(limited)*200*time.Millisecond)
			if err != nil {
				return err
			}
			add(limitedLast, res.lastChangeToAllApplied().Seconds())
			r.logf("webhook burst at 10 requests/s (%s): last applied %.2f s after the last change", variant.name, res.lastChangeToAllApplied().Seconds())
			return nil
		}(); err != nil {
			return err
		}
		// (c): deliveries concurrent, each from its own goroutine.
		r.logf("webhook: run %d/%d, %s: %d changes delivered concurrently", k, r.opts.Runs, variant.name, burst)
		if err := func() error {
			h, err := r.newHooked(ctx, burst, snowemu.Options{WebhookReorder: true, WebhookReorderWindow: time.Millisecond}, variant.opts)
			if err != nil {
				return err
			}
			defer h.close()
			res, err := h.burst(ctx, burst, 0, 2*time.Minute+time.Duration(burst)*20*time.Millisecond)
			if err != nil {
				return err
			}
			add(sustained, res.perSecond())
			r.logf("webhook sustained (%s): %s changes/s", variant.name, group(int64(res.perSecond())))
			return nil
		}(); err != nil {
			return err
		}
	}
	return nil
}
