// Package worst keeps one observation per (recommendation, resource) pair
// of a scanner file whose results repeat a pair (a rule that fails on line
// 20 of a file and passes on line 30). The store keeps the last observation
// it receives, so a parser yields a pair again only when its status is
// worse than every one yielded before: Unhealthy over NotApplicable over
// Healthy.
package worst

import (
	"hash/fnv"

	"github.com/stewardhq/steward"
)

// Statuses remembers the worst status yielded per pair, by a 64-bit hash
// of the pair (8 bytes per pair, however long the IDs).
type Statuses struct {
	seen map[uint64]uint8
}

// New returns an empty Statuses.
func New() *Statuses { return &Statuses{seen: map[uint64]uint8{}} }

// Keep reports whether o should be yielded: the first of its pair, or worse
// than what its pair yielded before.
func (s *Statuses) Keep(o steward.Observation) bool {
	h := fnv.New64a()
	_, _ = h.Write([]byte(o.Recommendation.Key))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(steward.NormalizeResourceID(o.Resource.ID)))
	k := h.Sum64()
	rank := rank(o.Status)
	if prev, ok := s.seen[k]; ok && prev >= rank {
		return false
	}
	s.seen[k] = rank
	return true
}

func rank(st steward.AssessmentStatus) uint8 {
	switch st {
	case steward.StatusHealthy:
		return 1
	case steward.StatusNotApplicable:
		return 2
	}
	return 3
}
