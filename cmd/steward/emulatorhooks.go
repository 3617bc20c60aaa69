package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/snowemu"
)

// emulatorWebhooks wires `integrations create --emulator-webhooks`: the
// new integration gets a generated webhook secret, and the emulator's admin
// API a target posting to the integration's events URL, signed the way
// Steward requires (scheme "steward"). It does by hand what the business
// rule of docs/servicenow-setup.md §3 does on a real instance.
type emulatorWebhooks struct {
	admin  *snowAdminClient
	secret string
}

// prepareEmulatorWebhooks checks that the instance is an emulator whose
// admin API answers, before anything is created, and puts a new secret on
// req.
func prepareEmulatorWebhooks(ctx context.Context, req *apiclient.IntegrationRequest) (*emulatorWebhooks, error) {
	if req.InstanceURL == nil {
		return nil, errors.New("--emulator-webhooks needs --instance-url, the emulator's URL")
	}
	if !isLoopbackURL(*req.InstanceURL) {
		return nil, fmt.Errorf("--emulator-webhooks is for the built-in emulator on this machine, and %s is not a loopback URL; on a real instance, set up the business rule of docs/servicenow-setup.md §3", *req.InstanceURL)
	}
	if req.WebhookSecret != nil {
		return nil, errors.New("--emulator-webhooks generates the webhook secret: drop --webhook-secret-file (and STEWARD_SN_WEBHOOK_SECRET)")
	}
	af := snowActFlags{
		emulator:      *req.InstanceURL,
		adminUser:     envOr("STEWARD_SNOW_ADMIN_USER", snowemu.DefaultAdminUser),
		adminPassword: envOr("STEWARD_SNOW_ADMIN_PASSWORD", snowemu.DefaultAdminPassword),
		caCert:        os.Getenv("STEWARD_SNOW_CACERT"),
	}
	admin, err := af.client()
	if err != nil {
		return nil, fmt.Errorf("--emulator-webhooks: %w", err)
	}
	if err := admin.do(ctx, http.MethodGet, "/emulator/admin/webhooks", nil, nil); err != nil {
		return nil, fmt.Errorf("--emulator-webhooks: the emulator's admin API (as %s; env STEWARD_SNOW_ADMIN_USER, STEWARD_SNOW_ADMIN_PASSWORD): %w", af.adminUser, err)
	}
	secret := rand.Text()
	req.WebhookSecret = &secret
	return &emulatorWebhooks{admin: admin, secret: secret}, nil
}

// register points the emulator at integration id's events URL, as the
// server names it (STEWARD_PUBLIC_URL, else the address this client used).
func (h *emulatorWebhooks) register(ctx context.Context, c *apiclient.Client, id int64, stderr io.Writer) error {
	failed := func(err error) error {
		return fmt.Errorf("integration %d was created, but the emulator's webhook was not registered (changes still arrive with the poll; 'steward integrations delete %d --yes' and create it again to retry): %w", id, id, err)
	}
	st, err := c.SyncStatus(ctx, id)
	if err != nil {
		return failed(err)
	}
	hook := snowemu.Webhook{URL: st.WebhookURL, Secret: h.secret, Scheme: snowemu.SchemeSteward}
	if err := h.admin.do(ctx, http.MethodPost, "/emulator/admin/webhooks", hook, nil); err != nil {
		return failed(err)
	}
	fmt.Fprintf(stderr, "The emulator at %s posts its changes to %s, signed with a new webhook secret stored on integration %d.\n", h.admin.base, st.WebhookURL, id)
	return nil
}
