package ticketsync

import (
	"sync"
	"time"
)

// DefaultWebhookSecretGrace is how long a replaced webhook secret still
// verifies deliveries unless Config.WebhookSecretGrace says otherwise: long
// enough to change the property on the instance after changing Steward.
const DefaultWebhookSecretGrace = time.Hour

// WebhookSecretGrace is how long a replaced webhook secret still verifies
// deliveries after it was replaced; 0 means none.
func (s *Service) WebhookSecretGrace() time.Duration {
	switch g := s.cfg.WebhookSecretGrace; {
	case g == 0:
		return DefaultWebhookSecretGrace
	case g < 0:
		return 0
	default:
		return g
	}
}

// Refused webhook deliveries are logged at most refusalLogBurst times per
// integration per refusalLogInterval: a misconfigured rule or a stranger
// sending garbage must not flood the log. The metric still counts every
// refusal (RecordWebhook).
const (
	refusalLogBurst    = 5
	refusalLogInterval = time.Minute
)

// refusalLog is the state of that limit. Its zero value is ready to use.
type refusalLog struct {
	mu      sync.Mutex
	windows map[int64]*refusalWindow
}

type refusalWindow struct {
	start      time.Time
	logged     int
	suppressed int // refusals not logged since the last one logged
}

// LogWebhookRefusal reports whether a refused delivery to integrationID
// (0 when no such integration exists, so unknown IDs share one limit and
// cannot grow the state) at now should be logged, and how many refusals
// were left out of the log since the last logged one, for that line to say.
func (s *Service) LogWebhookRefusal(integrationID int64, now time.Time) (log bool, suppressed int) {
	l := &s.refusals
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.windows == nil {
		l.windows = map[int64]*refusalWindow{}
	}
	w := l.windows[integrationID]
	if w == nil {
		w = &refusalWindow{start: now}
		l.windows[integrationID] = w
	}
	if now.Sub(w.start) >= refusalLogInterval || now.Before(w.start) {
		w.start, w.logged = now, 0
	}
	if w.logged >= refusalLogBurst {
		w.suppressed++
		return false, 0
	}
	w.logged++
	suppressed, w.suppressed = w.suppressed, 0
	return true, suppressed
}
