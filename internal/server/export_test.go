package server

import "time"

// WithProcessTiming shortens the liveness intervals and the periods of the
// schedule jobs, so tests see several of them in seconds.
func WithProcessTiming(heartbeat, staleAfter, rescue, schedule time.Duration) Option {
	return withProcessTiming(processTiming{heartbeat: heartbeat, staleAfter: staleAfter, rescue: rescue, schedule: schedule})
}

// ClientID is the server's River client ID.
func (s *Server) ClientID() string { return s.clientID }

// WithNotifyClock replaces the notification service's clock, so a test
// can step over a digest moment.
func WithNotifyClock(now func() time.Time) Option {
	return func(o *options) { o.notifyClock = now }
}

// WithReportClock replaces the governance snapshotter's clock and its
// provisional refresh interval, so a test can step over midnight.
func WithReportClock(now func() time.Time, refresh time.Duration) Option {
	return func(o *options) { o.reportClock, o.reportRefresh = now, refresh }
}
