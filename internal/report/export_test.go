package report

import "github.com/prometheus/client_golang/prometheus"

// DaysTaken is the days-taken counter, by source.
func (s *Snapshotter) DaysTaken() *prometheus.CounterVec { return s.days }
