package snowemu

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Webhook is one outbound notification target, the emulated counterpart of
// an async business rule posting with RESTMessageV2 (§8.1).
type Webhook struct {
	URL string `json:"url"`
	// Secret is the shared secret as text. The reference's rule calls
	// generateMac(gs.base64Encode(secret), ...), so the HMAC key is the
	// secret's bytes. SecretBase64 gives the key base64-encoded instead.
	Secret       string `json:"secret,omitempty"`
	SecretBase64 string `json:"secret_base64,omitempty"`
	// Headers are added to every delivery (e.g. an Authorization header).
	Headers map[string]string `json:"headers,omitempty"`
	// Scheme picks what X-Signature-SHA256 covers. "" (or "body") is the
	// reference's example rule (§8.1): base64(HMAC-SHA256(key, body)).
	// "steward" is the rule in Steward's docs/servicenow-setup.md: it adds
	// X-Steward-Timestamp (Unix seconds at sending) and signs
	// "<timestamp>.<body>", so a receiver can refuse replays of old
	// deliveries.
	Scheme string `json:"scheme,omitempty"`
}

// Webhook signing schemes.
const (
	SchemeBody    = "body"
	SchemeSteward = "steward"
)

func (h Webhook) key() ([]byte, error) {
	if h.Scheme != "" && h.Scheme != SchemeBody && h.Scheme != SchemeSteward {
		return nil, fmt.Errorf("webhook scheme %q is not %q or %q", h.Scheme, SchemeBody, SchemeSteward)
	}
	if h.SecretBase64 != "" {
		k, err := base64.StdEncoding.DecodeString(h.SecretBase64)
		if err != nil {
			return nil, fmt.Errorf("decode webhook secret: %w", err)
		}
		return k, nil
	}
	return []byte(h.Secret), nil
}

// WebhookDelivery records one attempted delivery, for tests and demos.
type WebhookDelivery struct {
	URL    string `json:"url"`
	Body   string `json:"body"`
	Status int    `json:"status"` // 0 when the request failed
	Error  string `json:"error,omitempty"`
}

// maxDeliveryLog bounds the WebhookDeliveries history.
const maxDeliveryLog = 10000

type delivery struct {
	hook Webhook
	body []byte
}

// webhookDispatcher delivers notifications asynchronously, at most once
// (no retries, like RESTMessageV2 without scripted retries, §8.1).
type webhookDispatcher struct {
	e      *Emulator
	client *http.Client

	mu     sync.Mutex
	hooks  []Webhook
	closed bool
	queue  chan delivery
	wg     sync.WaitGroup
	log    []WebhookDelivery
	// pending counts queued deliveries not yet attempted; idle is
	// signalled when it drops to zero. (A WaitGroup would race: writes keep
	// adding while a caller waits.)
	pending int
	idle    sync.Cond
}

func (d *webhookDispatcher) init(e *Emulator) {
	d.e = e
	d.client = &http.Client{Timeout: e.opts.WebhookTimeout}
	d.queue = make(chan delivery, 4096)
	d.idle.L = &d.mu
	d.wg.Add(1)
	go d.run()
}

// AddWebhook registers a notification target for inserts and updates of
// incident, problem and change_request records.
func (e *Emulator) AddWebhook(h Webhook) error {
	if _, err := h.key(); err != nil {
		return err
	}
	e.hooks.mu.Lock()
	defer e.hooks.mu.Unlock()
	e.hooks.hooks = append(e.hooks.hooks, h)
	return nil
}

// Webhooks returns the registered targets.
func (e *Emulator) Webhooks() []Webhook {
	e.hooks.mu.Lock()
	defer e.hooks.mu.Unlock()
	return slices.Clone(e.hooks.hooks)
}

// ClearWebhooks removes every target.
func (e *Emulator) ClearWebhooks() {
	e.hooks.mu.Lock()
	defer e.hooks.mu.Unlock()
	e.hooks.hooks = nil
}

// WebhookDeliveries returns the deliveries attempted so far, oldest first.
func (e *Emulator) WebhookDeliveries() []WebhookDelivery {
	e.hooks.mu.Lock()
	defer e.hooks.mu.Unlock()
	return slices.Clone(e.hooks.log)
}

// WaitWebhooks blocks until every queued delivery has been attempted.
func (e *Emulator) WaitWebhooks() {
	e.hooks.mu.Lock()
	defer e.hooks.mu.Unlock()
	for e.hooks.pending > 0 {
		e.hooks.idle.Wait()
	}
}

// payload composes the body exactly as the reference's example rule does:
// JSON.stringify of these keys in this order, raw values, no spaces.
func payload(ev event) []byte {
	f := ev.fields
	b := []byte(`{"event":`)
	add := func(key, v string) {
		b = append(b, ',', '"')
		b = append(b, key...)
		b = append(b, '"', ':')
		b = appendJSONString(b, v)
	}
	b = appendJSONString(b, ev.op)
	add("table", ev.table)
	add("sys_id", f["sys_id"])
	add("number", f["number"])
	add("state", f["state"])
	add("state_label", ev.label)
	add("assigned_to", f["assigned_to"])
	add("correlation_id", f["correlation_id"])
	add("sys_updated_on", f["sys_updated_on"])
	add("sys_mod_count", f["sys_mod_count"])
	return append(b, '}')
}

// enqueue queues the notifications of committed writes. A full queue drops
// the notification (at-most-once) and logs it.
func (d *webhookDispatcher) enqueue(events []event) {
	if len(events) == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || len(d.hooks) == 0 {
		return
	}
	for _, ev := range events {
		body := payload(ev)
		for _, h := range d.hooks {
			n := 1
			if d.e.chance(d.e.opts.WebhookDuplicate) {
				n = 2
			}
			for range n {
				d.pending++
				select {
				case d.queue <- delivery{hook: h, body: body}:
				default:
					d.pending--
					d.e.log.Warn("webhook queue full, notification dropped", slog.String("url", h.URL))
				}
			}
		}
	}
}

func (d *webhookDispatcher) run() {
	defer d.wg.Done()
	for dl := range d.queue {
		if d.e.opts.WebhookReorder {
			delay := d.e.opts.WebhookDelay + d.e.randDuration(d.e.opts.WebhookReorderWindow)
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				time.Sleep(delay)
				d.send(dl)
			}()
			continue
		}
		if d.e.opts.WebhookDelay > 0 {
			time.Sleep(d.e.opts.WebhookDelay)
		}
		d.send(dl)
	}
}

// send posts one notification, signed with base64(HMAC-SHA256(key, body)),
// or of "<timestamp>.<body>" in the steward scheme.
func (d *webhookDispatcher) send(dl delivery) {
	rec := WebhookDelivery{URL: dl.hook.URL, Body: string(dl.body)}
	defer func() {
		d.mu.Lock()
		if d.pending--; d.pending == 0 {
			d.idle.Broadcast()
		}
		// Keep the most recent deliveries only, so long demos stay bounded.
		if len(d.log) >= maxDeliveryLog {
			d.log = append(d.log[:0], d.log[len(d.log)-maxDeliveryLog/2:]...)
		}
		d.log = append(d.log, rec)
		d.mu.Unlock()
	}()
	key, err := dl.hook.key()
	if err != nil {
		rec.Error = err.Error()
		return
	}
	mac := hmac.New(sha256.New, key)
	var ts string
	if dl.hook.Scheme == SchemeSteward {
		// Taken when sending, as the async rule computes it when it runs.
		ts = strconv.FormatInt(d.e.now().Unix(), 10)
		mac.Write([]byte(ts + "."))
	}
	mac.Write(dl.body)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, dl.hook.URL, bytes.NewReader(dl.body))
	if err != nil {
		rec.Error = err.Error()
		d.e.log.Warn("webhook request", slog.String("url", dl.hook.URL), slog.Any("error", err))
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ServiceNow/1.0") // glide.http.user.agent default
	req.Header.Set("X-Signature-SHA256", base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	if ts != "" {
		req.Header.Set("X-Steward-Timestamp", ts)
	}
	for k, v := range dl.hook.Headers {
		req.Header.Set(k, v)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		rec.Error = err.Error()
		d.e.log.Warn("webhook delivery failed", slog.String("url", dl.hook.URL), slog.Any("error", err))
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	rec.Status = resp.StatusCode
	if resp.StatusCode >= 300 {
		d.e.log.Warn("webhook rejected", slog.String("url", dl.hook.URL), slog.Int("status", resp.StatusCode))
	}
}

func (d *webhookDispatcher) close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	close(d.queue)
	d.mu.Unlock()
	d.wg.Wait()
}
