package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/stewardhq/steward/internal/ticketsync"
)

// syncStatus is the answer of GET and POST /api/v1/integrations/{id}/sync:
// the engine's status plus what an administrator needs to wire the
// instance's business rule (docs/servicenow-setup.md §3).
type syncStatus struct {
	*ticketsync.SyncStatus
	// WebhookURL is where the business rule posts, as this request reached
	// Steward (behind a proxy: the proxy's scheme and host).
	WebhookURL       string `json:"webhook_url"`
	HasWebhookSecret bool   `json:"has_webhook_secret"`
}

func (a *API) syncStatus(w http.ResponseWriter, r *http.Request, status int, id int64) error {
	st, err := a.tickets.SyncStatus(r.Context(), id)
	if err != nil {
		return err
	}
	secrets, err := a.db.FindIntegrationSecrets(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, status, syncStatus{
		SyncStatus:       st,
		WebhookURL:       a.baseURL(r) + "/api/v1/integrations/" + strconv.FormatInt(id, 10) + "/events",
		HasWebhookSecret: secrets.WebhookSecret.Reveal() != "",
	})
	return nil
}

// getSync answers an integration's synchronization status.
func (a *API) getSync(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := a.integrationInScope(r, id); err != nil {
		return err
	}
	return a.syncStatus(w, r, http.StatusOK, id)
}

// postSync queues a poll and a full reconcile now ("Sync now") and answers
// 202 with the status as queued.
func (a *API) postSync(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := a.integrationInScope(r, id); err != nil {
		return err
	}
	if err := a.tickets.SyncNow(r.Context(), id, actor(r)); err != nil {
		return err
	}
	return a.syncStatus(w, r, http.StatusAccepted, id)
}

// baseURL is the configured public URL, else the scheme and host a request
// reached Steward at.
func (a *API) baseURL(r *http.Request) string {
	if a.cfg.PublicURL != "" {
		return strings.TrimRight(a.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p
	}
	host := r.Host
	if h := r.Header.Get("X-Forwarded-Host"); h != "" && !strings.ContainsAny(h, "/ ,") {
		host = h
	}
	return scheme + "://" + host
}
