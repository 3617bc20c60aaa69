package ticketsync

import "time"

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
