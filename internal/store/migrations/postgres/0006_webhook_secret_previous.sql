-- Webhook secret rotation: the secret a new one replaced keeps verifying
-- deliveries for a grace window (ticketsync.Config.WebhookSecretGrace), so
-- deliveries do not fail between changing the secret in Steward and on the
-- instance.
--
-- webhook_secret_previous is sealed like the other credentials (context
-- "integration:<id>:webhook_secret_previous"); NULL when none.
-- webhook_secret_replaced_at: Unix microseconds when it was replaced.
ALTER TABLE integration ADD COLUMN webhook_secret_previous BYTEA;
ALTER TABLE integration ADD COLUMN webhook_secret_replaced_at BIGINT;
