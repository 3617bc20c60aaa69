package api

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward"
)

// Webhook (ServiceNow business rule → Steward), docs/servicenow-setup.md §3.
//
// A delivery is authenticated by its signature, not by Steward's API auth:
//
//	X-Steward-Timestamp: <Unix seconds when the rule ran>
//	X-Signature-SHA256:  base64(HMAC-SHA256(webhook_secret, "<timestamp>.<raw body>"))
//
// where the key is the integration's webhook secret as UTF-8 bytes. The
// signature is checked before the body is parsed, in constant time.
//
// Replays: a delivery is accepted only within webhookSkew of Steward's
// clock, and it is only a signal: it is recorded as pending (one row per
// record, keeping the highest sys_mod_count) and the sync drainer re-reads
// pending records through the Table API in batches, skipping a
// sys_mod_count it has already applied. So a replayed, duplicated or
// out-of-order delivery costs at most a share of one Table API read and
// changes nothing.
const (
	headerTimestamp = "X-Steward-Timestamp"
	headerSignature = "X-Signature-SHA256"
	// maxWebhookBytes bounds a delivery; the rule's JSON is ~400 bytes.
	maxWebhookBytes = 64 << 10
	// webhookSkew is how far a delivery's timestamp may be from Steward's
	// clock, either way: async rules run seconds after the change, and
	// clocks drift.
	webhookSkew = 5 * time.Minute
)

// webhookEvent is the business rule's JSON (servicenow-api.md §8.1): every
// value a string, as JSON.stringify of getValue/getDisplayValue produces.
type webhookEvent struct {
	Event         *string `json:"event"`
	Table         *string `json:"table"`
	SysID         *string `json:"sys_id"`
	Number        *string `json:"number"`
	State         *string `json:"state"`
	StateLabel    *string `json:"state_label"`
	AssignedTo    *string `json:"assigned_to"`
	CorrelationID *string `json:"correlation_id"`
	SysUpdatedOn  *string `json:"sys_updated_on"`
	SysModCount   *string `json:"sys_mod_count"`
}

const webhookFields = "event, table, sys_id, number, state, state_label, assigned_to, correlation_id, sys_updated_on, sys_mod_count"

// webhookAnswer is the body of a 202.
type webhookAnswer struct {
	// Status is queued (the record is pending: the sync drainer will
	// re-read it) or up_to_date (Steward already applied this
	// sys_mod_count).
	Status string `json:"status"`
}

// postEvent receives one business-rule delivery for integration {id}.
// Refusals are logged (without the body or any secret) so an operator can
// see a misconfigured rule; the sender gets the reason in the answer. The
// log is rate-limited per integration, so a flood of bad deliveries cannot
// flood it: a logged line says how many refusals were left out before it.
// The metric counts every refusal.
func (a *API) postEvent(w http.ResponseWriter, r *http.Request) error {
	// A sender that keeps failing the signature check is limited like a
	// caller that keeps failing authentication, per client address.
	if a.auth != nil {
		if err := a.auth.CheckFailureLimit(r); err != nil {
			w.Header().Set("Retry-After", "60")
			return err
		}
	}
	integrationID, err := a.receiveEvent(w, r)
	if err == nil || steward.ErrorCode(err) == steward.CodeInternal {
		return err
	}
	if a.auth != nil && steward.ErrorCode(err) == steward.CodeUnauthorized {
		a.auth.RecordFailure(r)
	}
	if ok, suppressed := a.refusalLog.Allow(integrationID, a.now()); ok {
		attrs := []any{"integration", r.PathValue("id"), "code", steward.ErrorCode(err), "reason", steward.ErrorMessage(err)}
		if suppressed > 0 {
			attrs = append(attrs, "suppressed", suppressed)
		}
		a.logger.WarnContext(r.Context(), "webhook refused", attrs...)
	}
	return err
}

// receiveEvent handles a delivery and returns the ID of the integration it
// was for, 0 when there is no such integration.
func (a *API) receiveEvent(w http.ResponseWriter, r *http.Request) (int64, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return 0, err
	}
	// One read finds the integration and its secrets: in a burst, every
	// read before the insert is on the answer's path.
	creds, err := a.db.FindIntegrationCredentials(r.Context(), id)
	if steward.ErrorCode(err) == steward.CodeNotFound {
		return 0, err // 404 for an unknown integration
	}
	accepted := false
	defer func() { a.tickets.RecordWebhook(r.Context(), id, accepted) }()
	if err != nil {
		return id, err
	}
	key := creds.WebhookSecret.Reveal()
	if key == "" {
		return id, steward.Errorf(steward.CodeConflict,
			"integration %d has no webhook secret, so deliveries cannot be verified; set one with 'steward integrations update %d --webhook-secret-file FILE' (or PATCH /api/v1/integrations/%d {\"webhook_secret\":\"...\"}) and put the same text in the instance's steward.webhook.secret property",
			id, id, id)
	}
	keys := [][]byte{[]byte(key)}
	if prev := creds.PreviousWebhookSecret; !prev.IsZero() && a.now().Before(creds.WebhookSecretReplacedAt.Add(a.tickets.WebhookSecretGrace())) {
		// Within the grace window after a change the instance may still
		// sign with the secret it replaced.
		keys = append(keys, []byte(prev.Reveal()))
	}
	ev, err := a.verifyDelivery(keys, r.Header.Get(headerTimestamp), r.Header.Get(headerSignature), http.MaxBytesReader(w, r.Body, maxWebhookBytes))
	if err != nil {
		return id, err
	}
	t, err := a.db.FindTicketBySysID(r.Context(), id, *ev.SysID)
	if steward.ErrorCode(err) == steward.CodeNotFound && *ev.CorrelationID != "" {
		// An insert can arrive before Steward recorded the new record's
		// sys_id; the correlation ID is Steward's own.
		t, err = a.db.FindTicketByCorrelationID(r.Context(), *ev.CorrelationID)
	}
	switch {
	case steward.ErrorCode(err) == steward.CodeNotFound,
		err == nil && (t.IntegrationID != id || t.Table != *ev.Table):
		// Say nothing about what Steward does link: the sender proved it
		// knows the secret, but not that it should learn more.
		return id, notFound("not a Steward ticket")
	case err != nil:
		return id, err
	}
	modCount, _ := strconv.Atoi(*ev.SysModCount) // checked by parseWebhookEvent
	if *ev.Event != "delete" && t.SysID == *ev.SysID && t.ModCount >= modCount {
		// A duplicate, a replay or an out-of-order delivery: Steward already
		// holds this version or a later one. (A delete carries the last
		// sys_mod_count, so it is never skipped.)
		accepted = true
		writeJSON(w, http.StatusAccepted, webhookAnswer{Status: "up_to_date"})
		return id, nil
	}
	// A durable insert (group-committed with concurrent deliveries), not
	// a job: the drainer reads pending records back in sys_idIN batches.
	if err := a.tickets.QueueRefresh(r.Context(), id, *ev.Table, *ev.SysID, modCount, *ev.Event == "delete"); err != nil {
		return id, err
	}
	accepted = true
	writeJSON(w, http.StatusAccepted, webhookAnswer{Status: "queued"})
	return id, nil
}

// verifyDelivery checks a delivery in the documented order, before
// anything about it is looked up: the timestamp, the signature's presence,
// the size, the signature by any of keys, then the body's shape. body must
// be bounded by maxWebhookBytes (http.MaxBytesReader). Every error is a 4xx
// code; FuzzWebhook holds it to that.
func (a *API) verifyDelivery(keys [][]byte, tsHeader, sig string, body io.Reader) (*webhookEvent, error) {
	ts, err := a.webhookTimestamp(tsHeader)
	if err != nil {
		return nil, err
	}
	if sig == "" {
		return nil, unauthorized("%s header is missing; see docs/servicenow-setup.md §3", headerSignature)
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, steward.Errorf(steward.CodeTooLarge, "webhook body is larger than %d bytes", maxWebhookBytes)
		}
		return nil, invalid("read webhook body: %s", err.Error())
	}
	if !validSignatureAny(keys, ts, raw, sig) {
		return nil, unauthorized("%s does not match: it must be base64(HMAC-SHA256(webhook secret, %s + \".\" + body)) over the body exactly as sent; check that the instance and Steward hold the same webhook secret", headerSignature, headerTimestamp)
	}
	return parseWebhookEvent(raw)
}

// webhookTimestamp parses X-Steward-Timestamp and checks it is within
// webhookSkew of now.
func (a *API) webhookTimestamp(v string) (string, error) {
	if v == "" {
		return "", unauthorized("%s header is missing: the business rule must send the Unix time in seconds and sign \"<timestamp>.<body>\"; see docs/servicenow-setup.md §3", headerTimestamp)
	}
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil || sec <= 0 {
		return "", unauthorized("%s %q is not a Unix time in seconds", headerTimestamp, clipHeader(v))
	}
	if sec > 100_000_000_000 { // year 5138: milliseconds, as getNumericValue() returns
		return "", unauthorized("%s %q looks like milliseconds; send Unix seconds (getNumericValue() / 1000)", headerTimestamp, clipHeader(v))
	}
	skew := a.now().Sub(time.Unix(sec, 0))
	switch {
	case skew > webhookSkew:
		return "", unauthorized("%s is %s old, older than the %s allowed (replay protection); if deliveries are not replays, check the instance's clock", headerTimestamp, skew.Round(time.Second), webhookSkew)
	case skew < -webhookSkew:
		return "", unauthorized("%s is %s in the future, more than the %s allowed; check the instance's clock", headerTimestamp, (-skew).Round(time.Second), webhookSkew)
	}
	return v, nil
}

// validSignature reports in constant time whether sig is
// base64(HMAC-SHA256(key, ts + "." + body)).
func validSignature(key []byte, ts string, body []byte, sig string) bool {
	got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(sig))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return hmac.Equal(mac.Sum(nil), got)
}

// validSignatureAny reports whether sig is valid for any of keys. Every key
// is checked, each in constant time, so the answer's timing does not say
// which key matched.
func validSignatureAny(keys [][]byte, ts string, body []byte, sig string) bool {
	ok := false
	for _, k := range keys {
		if validSignature(k, ts, body, sig) {
			ok = true
		}
	}
	return ok
}

// parseWebhookEvent reads the rule's JSON strictly: one object, exactly the
// rule's keys, string values, a known event and a numeric sys_mod_count.
func parseWebhookEvent(body []byte) (*webhookEvent, error) {
	malformed := func(format string, args ...any) error {
		return invalid("webhook body must be the business rule's JSON object of strings ("+webhookFields+"): "+format, args...)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var ev webhookEvent
	if err := dec.Decode(&ev); err != nil {
		return nil, malformed("%s", steward.ErrorMessage(bodyError(err)))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, malformed("data after the JSON object")
	}
	fields := []struct {
		name string
		v    *string
	}{
		{"event", ev.Event}, {"table", ev.Table}, {"sys_id", ev.SysID}, {"number", ev.Number}, {"state", ev.State},
		{"state_label", ev.StateLabel}, {"assigned_to", ev.AssignedTo}, {"correlation_id", ev.CorrelationID},
		{"sys_updated_on", ev.SysUpdatedOn}, {"sys_mod_count", ev.SysModCount},
	}
	var missing []string
	for _, f := range fields {
		if f.v == nil {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, malformed("%s missing", strings.Join(missing, ", "))
	}
	switch *ev.Event {
	case "insert", "update", "delete":
	default:
		return nil, malformed("event %q is not insert, update or delete", clipHeader(*ev.Event))
	}
	if *ev.Table == "" || *ev.SysID == "" {
		return nil, malformed("table and sys_id must not be empty")
	}
	if n, err := strconv.Atoi(*ev.SysModCount); err != nil || n < 0 {
		return nil, malformed("sys_mod_count %q is not a whole number", clipHeader(*ev.SysModCount))
	}
	return &ev, nil
}

func unauthorized(format string, args ...any) error {
	return steward.Errorf(steward.CodeUnauthorized, format, args...)
}

// clipHeader keeps echoed input short.
func clipHeader(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
