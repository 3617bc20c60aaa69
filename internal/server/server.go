// Package server is Steward's composition root: it opens the store, starts
// the job workers and serves the API, /metrics and the health endpoints on
// one listener, and stops them in order. `steward serve`, the demo and the
// end-to-end tests all start Steward through it.
package server

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/riverqueue/river"

	"github.com/stewardhq/steward/internal/api"
	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/collector"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/ingest"
	"github.com/stewardhq/steward/internal/itsm/servicenow"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/notify"
	"github.com/stewardhq/steward/internal/report"
	"github.com/stewardhq/steward/internal/rules"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/ticketsync"
	"github.com/stewardhq/steward/internal/web"
)

// Server is one running Steward.
type Server struct {
	cfg      config.Config
	logger   *slog.Logger
	DB       *store.DB
	Ingester *ingest.Ingester
	Queue    *jobs.Queue
	Tickets  *ticketsync.Service
	// Sources manages and runs the live sources.
	Sources *collector.Service
	// Notify plans and sends the e-mail notifications.
	Notify *notify.Service
	// Reports takes the governance report's daily snapshots.
	Reports  *report.Snapshotter
	Auth     *auth.Authenticator
	api      *api.API
	web      *web.Handler
	river    *river.Client[*sql.Tx]
	clientID string
	http     *http.Server
	listener net.Listener
	lock     *DatabaseLock
	started  bool
	cancel   context.CancelFunc
	stopped  chan struct{}
	stopOnce sync.Once
	timing   processTiming
	bg       sync.WaitGroup // keepAlive and the rescue, stopped before the store closes
	// jobsStopped is closed once River has stopped: the heartbeat goes on
	// while jobs finish during a graceful stop.
	jobsStopped chan struct{}
	jobsOnce    sync.Once

	releaseOnce sync.Once
	releaseErr  error

	// creates runs ticket_create jobs; release closes its group commit.
	creates *ticketsync.CreateTicketWorker
}

// New binds the listener, takes the database's lock (one server per
// database file), opens the store (running migrations) and builds every
// part, but serves nothing and runs no job until Start. The listener comes
// first, so a busy address fails before anything is written: no database,
// key file, spool directory or lock file is left behind. On error nothing
// stays open.
func New(ctx context.Context, cfg config.Config, logger *slog.Logger, opts ...Option) (_ *Server, err error) {
	o := options{sourceKinds: SourceKinds(), timing: defaultProcessTiming()}
	for _, opt := range opts {
		opt(&o)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ln, err := listen(cfg.Addr)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, logger: logger, listener: ln, Queue: jobs.NewQueue(), stopped: make(chan struct{}),
		jobsStopped: make(chan struct{}), timing: o.timing}
	defer func() {
		if err != nil {
			s.release()
		}
	}()
	if s.lock, err = LockDatabase(cfg.DatabaseURL, "serve"); err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, cfg.DatabaseURL, logger.With("component", "store"))
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s.DB = db
	if err := s.setupSecrets(ctx); err != nil {
		return nil, err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.Ingester = ingest.New(db, s.Queue, logger.With("component", "ingest"), reg)
	snMetrics, err := servicenow.NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("servicenow metrics: %w", err)
	}
	// Without a configured public URL, links use the bound address, set in
	// Start. On PostgreSQL every ServiceNow client draws on its
	// integration's request budget in the database, so all processes
	// together stay within the integration's requests_per_second.
	s.Tickets = ticketsync.New(ticketsync.Config{PublicURL: cfg.PublicURL, SyncBatch: o.syncBatch}, db, s.Queue,
		ServiceNowFactory(db, logger.With("component", "servicenow"), outboundPolicy(cfg), servicenow.WithMetrics(snMetrics)),
		logger.With("component", "tickets"), reg)
	// Imports and rule runs assign through ticketsync's assignment
	// service, which can open the tickets of ServiceNow-type rules.
	s.Ingester.SetAssignments(s.Tickets.Assignments())
	ruleEval := rules.NewEvaluator(db, s.Tickets.Assignments(), logger.With("component", "rules"))
	s.Sources = collector.New(collector.Config{DB: db, Ingester: s.Ingester, Queue: s.Queue, Kinds: o.sourceKinds,
		Env: SourceEnv(logger.With("component", "sources"), outboundPolicy(cfg)), Logger: logger.With("component", "sources")})

	smtp, err := cfg.LoadSMTP()
	if err != nil {
		return nil, err
	}
	s.Notify = notify.New(notifyConfig(cfg, smtp, o), notify.Deps{DB: db, Queue: s.Queue, Managers: s.Tickets,
		Logger: logger.With("component", "notify"), Registry: reg})

	workers := river.NewWorkers()
	river.AddWorker(workers, ingest.NewImportWorker(s.Ingester))
	river.AddWorker(workers, ingest.NewRecomputeWorker(db))
	s.creates = ticketsync.NewCreateTicketWorker(s.Tickets, reg)
	river.AddWorker(workers, s.creates)
	river.AddWorker(workers, ticketsync.NewDeleteIntegrationWorker(s.Tickets))
	ticketsync.AddWorkers(workers, s.Tickets)
	river.AddWorker(workers, rules.NewRunWorker(ruleEval, logger.With("component", "rules")))
	collector.AddWorkers(workers, s.Sources)
	notify.AddWorkers(workers, s.Notify)
	s.Reports = report.New(db, report.Config{Refresh: o.reportRefresh, Now: o.reportClock}, logger.With("component", "report"), reg)
	report.AddWorkers(workers, s.Reports)
	s.clientID = jobClientID()
	// SQLite has no LISTEN/NOTIFY: River polls, and a short interval keeps
	// job pick-up latency low (each poll is one cheap indexed query). On
	// PostgreSQL River is told of new jobs by NOTIFY and polls only as a
	// fallback, at its default interval.
	var fetchPoll time.Duration
	if !db.Postgres() {
		fetchPoll = 200 * time.Millisecond
	}
	s.river, err = river.NewClient(db.RiverDriver(), &river.Config{
		ID: s.clientID,
		Queues: map[string]river.QueueConfig{
			jobs.QueueDefault: {MaxWorkers: 4},
			// One import at a time per process: imports are write-heavy;
			// SQLite has one writer, so parallel imports only queue on the
			// lock, and on PostgreSQL an import's chunks serialize on the
			// rows they share anyway.
			jobs.QueueIngest: {MaxWorkers: 1},
			// Ticket work waits on the network, not on CPU or the writer:
			// many in flight, paced by each integration's rate limiter. A
			// worker freed waits for the next fetch; 5 ms between fetches
			// (20 ms for the others) measured up to a third more tickets/s
			// (docs/benchmarks.md, "Ticket creation").
			jobs.QueueITSM: {MaxWorkers: 50, FetchCooldown: 5 * time.Millisecond},
			// Sync: webhook refreshes, polls, reconciles, owner pushes and
			// resolves. Each waits on the ITSM, paced by its rate limiter;
			// polls and reconciles of one integration are serialized.
			jobs.QueueSync: {MaxWorkers: 10},
			// Live source pulls wait on cloud APIs; each writes in chunks.
			jobs.QueueSource: {MaxWorkers: 4},
			// E-mail sends wait on the SMTP server.
			jobs.QueueNotify: {MaxWorkers: 4},
			// Governance snapshots: one at a time (each reads the history).
			jobs.QueueReport: {MaxWorkers: 1},
		},
		// Only the job leader enqueues periodic jobs: once per period
		// however many processes share a PostgreSQL database.
		PeriodicJobs: periodicJobs(s.timing),
		Workers:      workers,
		// River reports its routine (producer job counts every few
		// seconds, elections, maintenance) at info; an operator acts on
		// none of it, so it goes to debug. Its warnings and errors stay.
		Logger:            slog.New(routineToDebug{logger.With("component", "jobs").Handler()}),
		FetchPollInterval: fetchPoll,
		// The cooldown bounds how soon a job inserted outside a transaction
		// (a webhook's refresh) is picked up; 20 ms halves webhook-to-applied
		// latency against River's 50 ms default at negligible cost.
		FetchCooldown: 20 * time.Millisecond,
		// A job left "running" by a crashed process is retried after this,
		// so a crash delays work by at most 15 minutes and loses none. It
		// must exceed the longest job timeout (imports and integration
		// deletes: 12 minutes); jobs interrupted by a clean stop are
		// retried at once instead. Steward's own rescue (rescueOrphanedJobs
		// on SQLite, rescueJobsOfSilentProcesses on PostgreSQL) retries
		// them within seconds; this stays the fallback.
		RescueStuckJobsAfter: 15 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("create job client: %w", err)
	}
	s.Queue.Bind(s.river)

	// /metrics is served by the API too, so it needs a token like every
	// other route that is not public.
	s.Auth = auth.NewAuthenticator(db, logger.With("component", "auth"))
	apiHandler := api.New(api.Config{SpoolDir: cfg.SpoolDir, MaxImportBytes: cfg.MaxImportBytes, PublicURL: cfg.PublicURL,
		UploadMinRate: cfg.UploadMinRate, UploadRateWindow: cfg.UploadRateWindow},
		api.Deps{DB: db, Ingester: s.Ingester, Queue: s.Queue, Tickets: s.Tickets, Sources: s.Sources, Notify: s.Notify, Auth: s.Auth,
			Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})}, logger.With("component", "api"), reg)
	s.api = apiHandler
	// The web UI serves pages at / and hands everything else (the API,
	// health, metrics, and any non-browser request) to the API.
	oidcCfg, err := cfg.LoadOIDC()
	if err != nil {
		return nil, err
	}
	ui, err := web.New(web.Config{SecureCookies: cfg.TLSCertFile != "" || strings.HasPrefix(cfg.PublicURL, "https://"),
		OIDC: oidcCfg},
		web.Deps{API: apiHandler, Auth: s.Auth, Logger: logger.With("component", "web")})
	if err != nil {
		return nil, fmt.Errorf("web UI: %w", err)
	}
	s.web = ui
	s.http = &http.Server{
		Handler:           ui,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       cfg.ReadTimeout, // bounds a trickled body; uploads keep a minimum rate instead
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	jobCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	jobs.RecordMetrics(jobCtx, s.river, reg)
	return s, nil
}

// listen binds addr, saying plainly when another process has it.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("listen on %s: the address is in use by another process; stop it or choose another address with --addr (STEWARD_ADDR)", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// Start serves the listener bound by New and starts working jobs. The
// server runs until Shutdown.
func (s *Server) Start(ctx context.Context) error {
	ln := s.listener
	if s.tls() {
		// Loaded here rather than by ServeTLS so that a bad file fails
		// Start with its name instead of only being logged.
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("load TLS certificate %s and key %s: %w", s.cfg.TLSCertFile, s.cfg.TLSKeyFile, err)
		}
		s.http.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	} else if !isLoopback(ln.Addr()) {
		s.logger.Warn("listening on a non-loopback address without TLS: requests, tokens and credentials cross the network in clear text; set --tls-cert and --tls-key or put a TLS proxy in front",
			"addr", ln.Addr().String())
	}
	if s.cfg.PublicURL == "" {
		u := s.linkURL()
		s.Tickets.SetPublicURL(u)
		s.Notify.SetPublicURL(u)
	}
	// PostgreSQL: registered before River fetches a job, so every job this
	// process picks up is traceable to a process with a heartbeat. SQLite
	// needs none (one process owns the file) and is spared a write on its
	// one writer every few seconds.
	if s.DB.Postgres() {
		if err := s.DB.Heartbeat(ctx, s.process()); err != nil {
			return fmt.Errorf("register this process: %w", err)
		}
	}
	if err := s.river.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start job workers: %w", err)
	}
	s.started = true
	// Webhook refreshes pending from before (a crash, another process)
	// are drained too.
	s.Tickets.StartDrainer()
	if s.DB.Postgres() {
		s.bg.Add(1)
		go s.keepAlive()
	}
	go func() {
		var err error
		if s.tls() {
			err = s.http.ServeTLS(ln, "", "") // the certificate is in TLSConfig
		} else {
			err = s.http.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("http server stopped", "err", err)
		}
	}()
	if s.DB.Postgres() {
		s.bg.Add(1)
		go s.rescueJobsOfSilentProcesses()
	} else {
		go s.rescueOrphanedJobs()
	}
	s.logger.Info("steward listening", "addr", s.Addr(), "web_ui", s.URL()+"/", "database", store.RedactURL(s.cfg.DatabaseURL))
	return nil
}

// RouteAccess lists every route and who may call it (see api.RouteAccess).
func (s *Server) RouteAccess() map[string]string { return s.api.RouteAccess() }

// PageAccess lists every web UI page and who may open it (see
// web.RouteAccess).
func (s *Server) PageAccess() map[string]string { return s.web.RouteAccess() }

// Addr is the address the server listens on, e.g. 127.0.0.1:43121.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// URL is the server's base URL.
func (s *Server) URL() string { return s.scheme() + "://" + s.Addr() }

func (s *Server) scheme() string {
	if s.tls() {
		return "https"
	}
	return "http"
}

// linkURL is the base URL for links in tickets when no public URL is
// configured: the listener's, except that a listener on every interface
// (0.0.0.0, ::) has no address anyone can reach it at, so the machine's
// host name stands in, with a warning to configure the real one.
func (s *Server) linkURL() string {
	tcp, ok := s.listener.Addr().(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return s.URL()
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	u := s.scheme() + "://" + net.JoinHostPort(host, strconv.Itoa(tcp.Port))
	s.logger.Warn("listening on every interface without STEWARD_PUBLIC_URL: links in ServiceNow tickets use this machine's host name; set STEWARD_PUBLIC_URL to the URL users reach Steward at",
		"addr", s.Addr(), "links", u)
	return u
}

// tls reports whether the listener serves HTTPS (config validation has
// made sure the certificate and key come together).
func (s *Server) tls() bool { return s.cfg.TLSCertFile != "" }

// isLoopback reports whether a listener's address is reachable only from
// this machine. 0.0.0.0 and :: are not: they listen on every interface.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// Shutdown stops taking requests, lets running requests and jobs finish
// (within the configured timeout), then closes the store: River first, then
// the database pools. Jobs cut off by the timeout are retried on the next
// start (or, on PostgreSQL, at once by another process): their work is
// transactional or idempotent. A clean stop on PostgreSQL deletes this process's record
// (store.EndProcess): it leaves no running job behind.
func (s *Server) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
	defer cancel()
	s.stopOnce.Do(func() { close(s.stopped) })
	var errs []error
	if s.started {
		// Once: a second Shutdown finds River stopped and the record gone.
		s.jobsOnce.Do(func() { errs = s.stopJobs(ctx) })
	}
	errs = append(errs, s.release())
	return errors.Join(errs...)
}

// stopJobs stops serving, then River (waiting for running jobs until ctx
// ends), then the heartbeat and the rescue, and deletes this process's
// record.
func (s *Server) stopJobs(ctx context.Context) []error {
	var errs []error
	if err := s.http.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("stop http: %w", err))
	}
	// No webhook arrives any more: what is pending stays for the next start.
	s.Tickets.StopDrainer()
	jobsStopped := true
	if err := s.river.Stop(ctx); err != nil {
		// Jobs still running at the deadline are cancelled; their work
		// is transactional or idempotent, and River retries them.
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.river.StopAndCancel(cctx); err != nil {
			errs = append(errs, fmt.Errorf("stop job workers: %w", err))
			jobsStopped = false
		}
		ccancel()
	}
	close(s.jobsStopped)
	s.bg.Wait()
	// A record left behind gets the jobs of a process that could not stop
	// them retried by another once its heartbeat is stale.
	if jobsStopped && s.DB.Postgres() {
		ectx, ecancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.DB.EndProcess(ectx, s.clientID); err != nil {
			s.logger.Warn("deleting this process's record failed; the job leader deletes it in a day", "err", err)
		}
		ecancel()
	}
	return errs
}

// release closes what New opened, in reverse order, once: the job
// metrics, the store, then the database lock (only once the store is
// closed may another server open it) and the listener.
func (s *Server) release() error {
	s.releaseOnce.Do(func() {
		var errs []error
		if s.cancel != nil {
			s.cancel()
		}
		if s.creates != nil {
			s.creates.Close()
		}
		if s.DB != nil {
			if err := s.DB.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close store: %w", err))
			}
		}
		if err := s.lock.Release(); err != nil {
			errs = append(errs, err)
		}
		// Closed by http.Server.Shutdown when it served; closed here when
		// Start never ran or failed (a second Close is harmless).
		_ = s.listener.Close()
		s.releaseErr = errors.Join(errs...)
	})
	return s.releaseErr
}

// setupSecrets loads (or creates) the key that encrypts integration
// credentials and, during a key rotation, re-encrypts everything stored
// under the previous key.
func (s *Server) setupSecrets(ctx context.Context) error {
	key, created, err := s.cfg.LoadSecretKey()
	if err != nil {
		return err
	}
	if created {
		s.logger.Warn("created a new secret key file; back it up with the database: without it stored integration credentials cannot be read",
			"path", s.cfg.SecretKeyFile)
	}
	box, err := secret.NewBox(key)
	if err != nil {
		return fmt.Errorf("secret key: %w", err)
	}
	prev, err := s.cfg.LoadPreviousSecretKey()
	if err != nil {
		return err
	}
	if prev != nil {
		old, err := secret.NewBox(prev)
		if err != nil {
			return fmt.Errorf("previous secret key: %w", err)
		}
		n, err := s.DB.RotateSecrets(ctx, old, box)
		if err != nil {
			return fmt.Errorf("rotate secret key: %w", err)
		}
		s.logger.Info("secret key rotated; remove STEWARD_SECRET_KEY_PREVIOUS", "secrets_resealed", n)
	}
	s.DB.SetSecretBox(box)
	return nil
}

// jobClientID names this process's River client, so the jobs it runs can
// be told apart from those a crashed predecessor left running.
func jobClientID() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, host)
	if len(host) > 40 {
		host = host[:40]
	}
	return fmt.Sprintf("steward_%s_%d_%d", host, os.Getpid(), time.Now().UnixNano())
}

// rescueOrphanedJobs waits until this process's job client leads (a
// crashed process's lease expires within River's leader TTL, ~15 s), then
// makes the jobs that process left running available again, so a crash
// delays work by seconds rather than by River's stuck-job timeout.
func (s *Server) rescueOrphanedJobs() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	go func() { // stop waiting when the server stops
		select {
		case <-s.stopped:
			cancel()
		case <-ctx.Done():
		}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		leader, err := s.DB.IsJobLeader(ctx, s.clientID)
		if err == nil && leader {
			n, err := s.DB.RescueOrphanedJobs(ctx, s.clientID)
			if err != nil {
				s.logger.Warn("rescue of jobs left running by a stopped process failed", "err", err)
			} else if n > 0 {
				s.logger.Info("jobs left running by a stopped process are retried", "jobs", n)
			}
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
