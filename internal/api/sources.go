package api

import (
	"net/http"
	"strconv"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Live sources (docs/sources.md). A source is addressed by its ID or its
// name (/api/v1/sources/{id}); names are never all digits. A scope-limited
// caller sees and changes only sources whose scope lies inside its own.
// Secrets are write-only: answers say has_<field> true or false.

func (a *API) sourcesReady() error {
	if a.sources == nil {
		return steward.Errorf(steward.CodeUnavailable, "live sources are not configured on this server")
	}
	return nil
}

// findSource answers 404 for a source outside the caller's scope.
func (a *API) findSource(r *http.Request) (*store.SourceRecord, error) {
	if err := a.sourcesReady(); err != nil {
		return nil, err
	}
	ref := r.PathValue("id")
	src, err := a.sources.Get(r.Context(), ref)
	if err != nil {
		return nil, err
	}
	if !scopeWithin(r, src.Scope) {
		return nil, notFound("source %q not found", ref)
	}
	return src, nil
}

func sourceInScope(r *http.Request, scope *steward.Scope) error {
	if scope == nil || scopeWithin(r, *scope) {
		return nil
	}
	return steward.AtField("scope", steward.Errorf(steward.CodeForbidden, "scope %s is not inside this token's scope %s", *scope, callerScope(r)))
}

func (a *API) writeSource(w http.ResponseWriter, r *http.Request, status int, src *store.SourceRecord) error {
	view, err := a.sources.View(r.Context(), src)
	if err != nil {
		return err
	}
	writeJSON(w, status, view)
	return nil
}

func (a *API) createSource(w http.ResponseWriter, r *http.Request) error {
	if err := a.sourcesReady(); err != nil {
		return err
	}
	var in steward.SourceInput
	if err := decodeJSON(w, r, a.cfg.MaxBodyBytes, &in); err != nil {
		return err
	}
	if err := sourceInScope(r, in.Scope); err != nil {
		return err
	}
	src, err := a.sources.Create(r.Context(), in, actor(r))
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/sources/"+itoa(src.ID))
	return a.writeSource(w, r, http.StatusCreated, src)
}

func (a *API) listSources(w http.ResponseWriter, r *http.Request) error {
	if q := newQuery(r); q.err != nil {
		return q.err
	}
	if err := a.sourcesReady(); err != nil {
		return err
	}
	all, err := a.sources.List(r.Context())
	if err != nil {
		return err
	}
	out := []*steward.Source{}
	for _, src := range all {
		if !scopeWithin(r, src.Scope) {
			continue
		}
		v, err := a.sources.View(r.Context(), src)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, newList(out, ""))
	return nil
}

func (a *API) getSource(w http.ResponseWriter, r *http.Request) error {
	if q := newQuery(r); q.err != nil {
		return q.err
	}
	src, err := a.findSource(r)
	if err != nil {
		return err
	}
	return a.writeSource(w, r, http.StatusOK, src)
}

func (a *API) patchSource(w http.ResponseWriter, r *http.Request) error {
	cur, err := a.findSource(r)
	if err != nil {
		return err
	}
	var in steward.SourceInput
	if err := decodeJSON(w, r, a.cfg.MaxBodyBytes, &in); err != nil {
		return err
	}
	if err := sourceInScope(r, in.Scope); err != nil {
		return err
	}
	src, err := a.sources.Update(r.Context(), itoa(cur.ID), in, actor(r))
	if err != nil {
		return err
	}
	return a.writeSource(w, r, http.StatusOK, src)
}

func (a *API) deleteSource(w http.ResponseWriter, r *http.Request) error {
	cur, err := a.findSource(r)
	if err != nil {
		return err
	}
	view, err := a.sources.View(r.Context(), cur)
	if err != nil {
		return err
	}
	if _, err := a.sources.Delete(r.Context(), itoa(cur.ID), actor(r)); err != nil {
		return err
	}
	view.NextRunAt = nil
	writeJSON(w, http.StatusOK, view)
	return nil
}

// runSource queues a run now (202, Location: the run), or answers the run
// already queued or running (200).
func (a *API) runSource(w http.ResponseWriter, r *http.Request) error {
	src, err := a.findSource(r)
	if err != nil {
		return err
	}
	run, created, err := a.sources.Run(r.Context(), itoa(src.ID), actor(r))
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/sources/"+itoa(src.ID)+"/runs/"+itoa(run.ID))
	status := http.StatusOK
	if created {
		status = http.StatusAccepted
	}
	writeJSON(w, status, run)
	return nil
}

// listSourceRuns lists the latest runs of a source, newest first (at most
// limit, default 50, 200 at most).
func (a *API) listSourceRuns(w http.ResponseWriter, r *http.Request) error {
	limit, err := latestRunsLimit(r)
	if err != nil {
		return err
	}
	src, err := a.findSource(r)
	if err != nil {
		return err
	}
	runs, err := a.db.FindSourceRuns(r.Context(), src.ID, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(runs, ""))
	return nil
}

// getSourceRun shows one run: its state, counts and units so far.
func (a *API) getSourceRun(w http.ResponseWriter, r *http.Request) error {
	if q := newQuery(r); q.err != nil {
		return q.err
	}
	src, err := a.findSource(r)
	if err != nil {
		return err
	}
	id, perr := strconv.ParseInt(r.PathValue("run"), 10, 64)
	if perr != nil {
		return notFound("run %q of source %q not found", r.PathValue("run"), src.Name)
	}
	run, err := a.db.FindSourceRun(r.Context(), src.ID, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, run)
	return nil
}
