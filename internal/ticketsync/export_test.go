package ticketsync

import (
	"context"
	"time"
)

// SetLeaseTiming shortens the sync lease timing (PostgreSQL) for tests:
// the lease's life, how often progress is written, how often a waiting run
// tries again.
func SetLeaseTiming(s *Service, ttl, progressEvery, retry time.Duration) {
	s.sync.leaseTTL, s.sync.progressEvery, s.sync.leaseRetry = ttl, progressEvery, retry
}

// DrainOnce drains an integration's due webhook refreshes now, on the
// calling goroutine, until none is due or a read fails.
func DrainOnce(s *Service, integrationID int64) {
	s.drainIntegration(context.Background(), integrationID)
}
