package api

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/store"
)

// E-mail notifications (docs/notifications.md): the sent-log, previews, a
// test message and the owner → manager mapping for escalations. They
// concern owners in every scope, so a scope-limited identity is refused
// on all of these routes, whatever its role.

const notificationsWhat = "e-mail notifications"

// notifyReady refuses scoped callers and answers unavailable on a server
// built without the notification service.
func (a *API) notifyReady(r *http.Request) error {
	if err := requireUnscoped(r, notificationsWhat); err != nil {
		return err
	}
	if a.notify == nil {
		return steward.Errorf(steward.CodeUnavailable, "e-mail notifications are not configured on this server")
	}
	return nil
}

// isoWeek is a notification period, e.g. 2026-W48.
var isoWeek = regexp.MustCompile(`^[0-9]{4}-W[0-9]{2}$`)

func (a *API) listNotifications(w http.ResponseWriter, r *http.Request) error {
	if err := a.notifyReady(r); err != nil {
		return err
	}
	q := newQuery(r, "state", "kind", "period", "recipient")
	f := store.NotificationFilter{Cursor: q.str("cursor"), Limit: q.limit(), Period: q.str("period"), Recipient: q.str("recipient")}
	for _, s := range splitList(q.v["state"]) {
		st := steward.NotificationState(strings.ToLower(s))
		if !st.Valid() {
			q.fail(steward.InvalidAt("state", "unknown notification state %q (want pending, sending, sent, retrying, failed, unknown or skipped)", s))
		}
		f.States = append(f.States, st)
	}
	if k := q.str("kind"); k != "" {
		f.Kind = steward.NotificationKind(strings.ToLower(k))
		if !f.Kind.Valid() {
			q.fail(steward.InvalidAt("kind", "unknown notification kind %q (want digest or escalation)", k))
		}
	}
	if f.Period != "" && !isoWeek.MatchString(f.Period) {
		q.fail(steward.InvalidAt("period", "period %q is not an ISO week such as 2026-W48", f.Period))
	}
	if f.Recipient != "" {
		q.fail(atField("recipient", steward.ValidateEmail("recipient", f.Recipient)))
	}
	if q.err != nil {
		return q.err
	}
	items, next, err := a.db.FindNotifications(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, next))
	return nil
}

func (a *API) getNotification(w http.ResponseWriter, r *http.Request) error {
	if err := a.notifyReady(r); err != nil {
		return err
	}
	if q := newQuery(r); q.err != nil {
		return q.err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	n, err := a.db.FindNotification(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, n)
	return nil
}

// resendNotification queues a failed, unknown or retrying notification to
// be sent again (409 for any other state); the caller is audited as the
// one who decided.
func (a *API) resendNotification(w http.ResponseWriter, r *http.Request) error {
	if err := a.notifyReady(r); err != nil {
		return err
	}
	if q := newQuery(r); q.err != nil {
		return q.err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	n, err := a.notify.Resend(r.Context(), id, actor(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, n)
	return nil
}

func (a *API) notificationStatus(w http.ResponseWriter, r *http.Request) error {
	if err := a.notifyReady(r); err != nil {
		return err
	}
	if q := newQuery(r); q.err != nil {
		return q.err
	}
	st, err := a.notify.Status(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// previewNotification renders what an owner's digest (?owner=) or a
// manager's escalation (?manager=) would say now. It works without an
// SMTP server.
func (a *API) previewNotification(w http.ResponseWriter, r *http.Request) error {
	if err := a.notifyReady(r); err != nil {
		return err
	}
	q := newQuery(r, "owner", "manager")
	owner, manager := q.str("owner"), q.str("manager")
	if q.err != nil {
		return q.err
	}
	kind, field, recipient := steward.NotificationDigest, "owner", owner
	switch {
	case owner != "" && manager != "":
		return invalid("give owner (a digest) or manager (an escalation), not both")
	case owner == "" && manager == "":
		return invalid("give owner (a digest) or manager (an escalation)")
	case manager != "":
		kind, field, recipient = steward.NotificationEscalation, "manager", manager
	}
	if err := steward.ValidateEmail(field, recipient); err != nil {
		return atField(field, err)
	}
	p, err := a.notify.Preview(r.Context(), kind, recipient)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// sendTestMail sends a test message and answers the SMTP server's reply;
// a refusal answers with the server's words: 422 when it refused for good
// (the address or the settings), 503 otherwise.
func (a *API) sendTestMail(w http.ResponseWriter, r *http.Request) error {
	if err := a.notifyReady(r); err != nil {
		return err
	}
	var req steward.MailTestRequest
	if err := decodeJSON(w, r, a.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := steward.ValidateEmail("to", req.To); err != nil {
		return atField("to", err)
	}
	res, err := a.notify.SendTest(r.Context(), req.To)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (a *API) listManagers(w http.ResponseWriter, r *http.Request) error {
	if err := a.notifyReady(r); err != nil {
		return err
	}
	if q := newQuery(r); q.err != nil {
		return q.err
	}
	all, err := a.db.FindManagerMappings(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(all, ""))
	return nil
}

// putManager names the manager of the owner in the path (an e-mail
// address), replacing an earlier one; it is audited.
func (a *API) putManager(w http.ResponseWriter, r *http.Request) error {
	if err := a.notifyReady(r); err != nil {
		return err
	}
	owner := r.PathValue("owner")
	if err := steward.ValidateEmail("owner", owner); err != nil {
		return atField("owner", err)
	}
	var req steward.ManagerRequest
	if err := decodeJSON(w, r, a.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := steward.ValidateEmail("manager", req.Manager); err != nil {
		return atField("manager", err)
	}
	m, err := a.db.PutManagerMapping(r.Context(), owner, req.Manager, actor(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

// deleteManager removes an owner's mapping (404 when there is none) and
// answers it as it was.
func (a *API) deleteManager(w http.ResponseWriter, r *http.Request) error {
	if err := a.notifyReady(r); err != nil {
		return err
	}
	found, err := a.db.DeleteManagerMapping(r.Context(), r.PathValue("owner"), actor(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, found)
	return nil
}
