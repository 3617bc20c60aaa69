package ticketsync

import "time"

// SetLeaseTiming shortens the sync lease timing (PostgreSQL) for tests:
// the lease's life, how often progress is written, how often a waiting run
// tries again.
func SetLeaseTiming(s *Service, ttl, progressEvery, retry time.Duration) {
	s.sync.leaseTTL, s.sync.progressEvery, s.sync.leaseRetry = ttl, progressEvery, retry
}
