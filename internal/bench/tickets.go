package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/snowemu"
)

const (
	// ticketOwner is every bench ticket's first owner (a seeded emulator user).
	ticketOwner     = "beth.anglin@example.com"
	integrationName = "bench-servicenow"
)

// ticketEnv is Steward and the emulator with one integration and a rule
// that opens an incident for every assessment in TicketScope.
type ticketEnv struct {
	st            *stewardEnv
	emu           *emulatorEnv
	integrationID int64
	webhookSecret string
	n             int
	file          string
}

func (e *ticketEnv) close() error {
	var err error
	if e.st != nil {
		err = e.st.close()
	}
	if e.emu != nil {
		if cerr := e.emu.close(); err == nil {
			err = cerr
		}
	}
	return err
}

// newTicketEnv starts the emulator and Steward, connects them with an
// integration (rate limit 1,000 requests/s, the maximum; poll and
// reconcile a day away unless poll is set, so only what a scenario
// triggers syncs) and a rule
// that opens a ServiceNow incident for each unhealthy assessment in
// TicketScope, and writes a file of n such assessments. Importing it
// (open) creates the tickets.
func (r *runner) newTicketEnv(ctx context.Context, n int, emuOpts snowemu.Options, poll time.Duration, opts ...server.Option) (_ *ticketEnv, err error) {
	env := &ticketEnv{n: n}
	defer func() {
		if err != nil {
			env.close()
		}
	}()
	if env.emu, err = startEmulator(emuOpts, r.opts.Logger); err != nil {
		return nil, err
	}
	if env.st, err = startSteward(ctx, r.dir, r.opts.PostgresServer, r.opts.Logger, opts...); err != nil {
		return nil, err
	}
	buf := make([]byte, 24)
	_, _ = rand.Read(buf)
	env.webhookSecret = hex.EncodeToString(buf)
	str := func(s string) *string { return &s }
	yes, rps := true, 1000.0
	sync := steward.DefaultSyncSettings()
	sync.PollInterval, sync.ReconcileInterval = steward.Duration(24*time.Hour), steward.Duration(24*time.Hour)
	if poll > 0 {
		sync.PollInterval = steward.Duration(poll)
	}
	in, err := env.st.client.CreateIntegration(ctx, apiclient.IntegrationRequest{
		Name: str(integrationName), Scope: str(TicketScope), InstanceURL: str(env.emu.url), Local: &yes,
		AuthMode: str(string(steward.AuthBasic)), Username: str(snowemu.DefaultAdminUser), Password: str(snowemu.DefaultAdminPassword),
		WebhookSecret: &env.webhookSecret, RequestsPerSecond: &rps, Sync: &sync,
	})
	if err != nil {
		return nil, fmt.Errorf("create the integration: %w", err)
	}
	env.integrationID = in.ID
	if _, err := env.st.client.CreateRule(ctx, apiclient.RuleInput{
		Name: "bench-tickets", Priority: 1, Enabled: &yes, Scope: TicketScope,
		When:  []steward.ConditionSet{{Cloud: []steward.Cloud{steward.CloudAzure}}},
		Owner: steward.OwnerSource{Email: ticketOwner}, DueInDays: 30,
		Ticket: &steward.RuleTicket{Integration: integrationName, Type: steward.TicketTypeIncident},
	}); err != nil {
		return nil, fmt.Errorf("create the ticket rule: %w", err)
	}
	env.file = filepath.Join(env.st.dir, "tickets.jsonl")
	if err := writeFile(env.file, func(w ioWriter) error { return WriteTicketAssessments(w, n) }); err != nil {
		return nil, err
	}
	return env, nil
}

// open imports the assessments; the rule opens their tickets.
func (e *ticketEnv) open(ctx context.Context) error {
	info, err := os.Stat(e.file)
	if err != nil {
		return err
	}
	_, err = importFile(ctx, e.st, e.file, info.Size(), e.n)
	return err
}

// tickets lists the integration's tickets.
func (e *ticketEnv) tickets(ctx context.Context) ([]steward.TicketView, error) {
	var out []steward.TicketView
	q := query("integration", fmt.Sprint(e.integrationID), "limit", "500")
	for {
		page, err := e.st.client.ListTickets(ctx, q)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if page.NextCursor == "" {
			return out, nil
		}
		q.Set("cursor", page.NextCursor)
	}
}

// waitCreated waits until Steward holds every ticket as created. It gives
// up when the count has not moved for stall: on a loaded machine creation
// may be slow, but it must progress.
func (e *ticketEnv) waitCreated(ctx context.Context, stall time.Duration) ([]steward.TicketView, error) {
	var ts []steward.TicketView
	last, lastMove := -1, time.Now()
	for {
		// The emulator's count is cheap; Steward's list is read once the
		// emulator holds every record.
		created := e.emu.emu.Count("incident")
		if created >= e.n {
			var err error
			if ts, err = e.tickets(ctx); err != nil {
				return nil, err
			}
			created = 0
			for _, t := range ts {
				if t.Status == steward.TicketCreated && t.SysID != "" {
					created++
				}
			}
			if created == e.n {
				return ts, nil
			}
			created += e.n // Steward still records results: progress apart from the count
		}
		if created != last {
			last, lastMove = created, time.Now()
		} else if time.Since(lastMove) > stall {
			return nil, fmt.Errorf("%d of %d tickets created, none more for %s", created, e.n, stall)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ticketRequests is how many Table API requests the emulator received,
// OAuth token requests left out.
func ticketRequests(emu *snowemu.Emulator) int {
	n := 0
	for key, c := range emu.Requests() {
		if !strings.Contains(key, "oauth_token") {
			n += c
		}
	}
	return n
}

// tickets is the ticket-creation scenario: a rule opens N incidents while
// the emulator answers each request after 50 ms; the integration's
// workers keep their default number of requests in flight (50).
// Throughput counts from the first incident the emulator holds to the
// last (the import that makes the assignments takes a fraction of it);
// requests per ticket come from the emulator's request log.
func (r *runner) tickets(ctx context.Context) error {
	n := r.opts.Tickets
	rate := r.row(Row{Scenario: "tickets", Measure: fmt.Sprintf("%s incidents, emulator at 50 ms, default 50 in flight", group(int64(n))),
		Unit: PerSecond, Target: AtLeast(900), BaselineText: "639/s (issue 15, recorded)"})
	perTicket := r.row(Row{Scenario: "tickets", Measure: "Table API requests per ticket (emulator's log)",
		Unit: Ratio, Target: AtMost(1), BaselineText: "1.000 (recorded)"})
	for k := 1; k <= r.opts.Runs; k++ {
		r.logf("tickets: run %d/%d", k, r.opts.Runs)
		if err := func() error {
			env, err := r.newTicketEnv(ctx, n, snowemu.Options{}, 0)
			if err != nil {
				return err
			}
			defer env.close()
			env.emu.emu.SetFaults(snowemu.Faults{Latency: 50 * time.Millisecond})
			before := ticketRequests(env.emu.emu)
			var first, last atomic.Int64
			watchCtx, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for watchCtx.Err() == nil {
					c := env.emu.emu.Count("incident")
					now := time.Now().UnixNano()
					if c > 0 && first.Load() == 0 {
						first.Store(now)
					}
					if c >= n {
						last.Store(now)
						return
					}
					time.Sleep(2 * time.Millisecond)
				}
			}()
			err = env.open(ctx)
			if err == nil {
				_, err = env.waitCreated(ctx, 2*time.Minute)
			}
			stop()
			<-done
			if err != nil {
				return err
			}
			secs := time.Duration(last.Load() - first.Load()).Seconds()
			reqs := float64(ticketRequests(env.emu.emu)-before) / float64(n)
			rate.Values = append(rate.Values, float64(n)/secs)
			perTicket.Values = append(perTicket.Values, reqs)
			r.logf("tickets: %s in %.2f s: %s/s, %.3f requests/ticket", group(int64(n)), secs, group(int64(float64(n)/secs)), reqs)
			return nil
		}(); err != nil {
			fail(err, rate, perTicket)
			return err
		}
	}
	return nil
}
