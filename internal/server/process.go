package server

import (
	"slices"

	"context"
	"os"
	"time"

	"github.com/riverqueue/river"

	"github.com/stewardhq/steward/internal/collector"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/notify"
	"github.com/stewardhq/steward/internal/report"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/ticketsync"
)

// Liveness of the processes that share a database (store/heartbeat.go).
const (
	// heartbeatInterval is how often a process says it is alive.
	heartbeatInterval = 5 * time.Second
	// processStaleAfter is how long a process may stay silent before the
	// job leader retries the jobs it left running: six missed heartbeats,
	// so a pause of the process or of the database (a long transaction,
	// a failover) is not taken for a death. A process judged dead that was
	// only slow costs a repeated run of an idempotent job, not a duplicate.
	processStaleAfter = 30 * time.Second
	// SilentProcessAfter is processStaleAfter for other packages: a
	// process silent for longer is taken for dead (steward migrate ignores
	// it; the job leader retries its jobs).
	SilentProcessAfter = processStaleAfter
	// rescueInterval is how often the job leader looks for such jobs on
	// PostgreSQL.
	rescueInterval = 10 * time.Second
)

// processTiming are the liveness intervals and the schedule of the periodic
// jobs; tests shorten them.
type processTiming struct {
	heartbeat, staleAfter, rescue time.Duration
	// schedule, when set, replaces the periods of the sync and source
	// schedule jobs.
	schedule time.Duration
}

func defaultProcessTiming() processTiming {
	return processTiming{heartbeat: heartbeatInterval, staleAfter: processStaleAfter, rescue: rescueInterval}
}

// withProcessTiming replaces the liveness intervals and the periodic jobs'
// period (tests).
func withProcessTiming(t processTiming) Option {
	return func(o *options) { o.timing = t }
}

// periodicJobs are the River periodic jobs: the sync and source schedule
// ticks. Only the job leader enqueues them, so they run once per period
// however many processes share the database.
func periodicJobs(t processTiming) []*river.PeriodicJob {
	if t.schedule == 0 {
		return slices.Concat(ticketsync.PeriodicJobs(), collector.PeriodicJobs(), notify.PeriodicJobs(), report.PeriodicJobs(0))
	}
	every := river.PeriodicInterval(t.schedule)
	return []*river.PeriodicJob{
		river.NewPeriodicJob(every, func() (river.JobArgs, *river.InsertOpts) { return jobs.SyncScheduleArgs{}, nil },
			&river.PeriodicJobOpts{RunOnStart: true}),
		river.NewPeriodicJob(every, func() (river.JobArgs, *river.InsertOpts) { return jobs.SourceScheduleArgs{}, nil },
			&river.PeriodicJobOpts{RunOnStart: true}),
		river.NewPeriodicJob(every, func() (river.JobArgs, *river.InsertOpts) { return jobs.NotifyScheduleArgs{}, nil },
			&river.PeriodicJobOpts{RunOnStart: true}),
		report.PeriodicJobs(t.schedule)[0],
	}
}

// process is this process's record in the process table.
func (s *Server) process() store.Process {
	host, _ := os.Hostname()
	return store.Process{ClientID: s.clientID, Host: host, PID: os.Getpid()}
}

// keepAlive renews this process's heartbeat until River has stopped. A
// failed renewal is only logged: the next one may succeed, and the job
// leader waits for several to be missed.
func (s *Server) keepAlive() {
	defer s.bg.Done()
	tick := time.NewTicker(s.timing.heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-s.jobsStopped:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.timing.heartbeat)
		err := s.DB.Heartbeat(ctx, s.process())
		cancel()
		if err != nil {
			s.logger.Warn("renewing this process's heartbeat failed; if it stays silent for "+s.timing.staleAfter.String()+
				" other processes retry its running jobs", "err", err)
		}
	}
}

// rescueJobsOfSilentProcesses is PostgreSQL's rescue: while the server
// runs, the job leader retries the jobs that processes which stopped
// renewing their heartbeat left running (a process killed, or its host
// gone), within staleAfter plus one rescue interval, instead of River's
// 15 minutes. River's own rescuer stays the fallback.
func (s *Server) rescueJobsOfSilentProcesses() {
	defer s.bg.Done()
	tick := time.NewTicker(s.timing.rescue)
	defer tick.Stop()
	for {
		select {
		case <-s.stopped:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.timing.rescue)
		n, err := s.DB.RescueJobsOfSilentProcesses(ctx, s.clientID, s.timing.staleAfter)
		cancel()
		if err != nil {
			s.logger.Warn("rescue of jobs left running by a stopped process failed", "err", err)
		} else if n > 0 {
			s.logger.Info("jobs left running by a stopped process are retried", "jobs", n)
		}
	}
}
