package api

import (
	"net/http"
	"time"
)

// dueSoon is the window in which an assignment counts as due soon.
const dueSoon = 7 * 24 * time.Hour

func (a *API) overview(w http.ResponseWriter, r *http.Request) error {
	if q := newQuery(r); q.err != nil {
		return q.err
	}
	o, err := a.db.FindOverview(r.Context(), callerScope(r), a.now(), dueSoon)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, o)
	return nil
}
