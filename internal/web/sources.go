package web

import (
	"net/http"
	"strconv"

	"github.com/stewardhq/steward"
)

// sourcePages: the configured live sources and their latest runs. Sources
// are created and changed with `steward sources` or the API
// (docs/sources.md); here people see whether pulls are healthy and can ask
// for one.
func (h *Handler) sourcePages() []page {
	return []page{
		{"GET", "/settings/sources", reader, h.sources},
		{"POST", "/settings/sources/{id}/run", securityAdmin, h.runSource},
	}
}

type sourcesView struct {
	Sources []steward.Source
	// Live: a run is queued or running; the list refreshes until none is.
	Live bool
	// Asked names the source a run was just asked for.
	Asked string
}

func (h *Handler) sources(w http.ResponseWriter, r *http.Request) error {
	page, err := h.apiFor(w, r).ListSources(r.Context())
	if err != nil {
		return err
	}
	v := sourcesView{Sources: page.Items, Asked: r.URL.Query().Get("asked")}
	for _, s := range page.Items {
		if s.LastRun != nil && (s.LastRun.State == steward.SourceRunQueued || s.LastRun.State == steward.SourceRunRunning) {
			v.Live = true
		}
	}
	return h.render(w, r, http.StatusOK, "sources.html", "Sources", v)
}

func (h *Handler) runSource(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return steward.Errorf(steward.CodeNotFound, "there is no source %q", r.PathValue("id"))
	}
	c := h.apiFor(w, r)
	src, err := c.GetSource(r.Context(), strconv.FormatInt(id, 10))
	if err != nil {
		return err
	}
	if _, err := c.RunSource(r.Context(), strconv.FormatInt(src.ID, 10)); err != nil {
		return err
	}
	http.Redirect(w, r, "/settings/sources?asked="+strconv.FormatInt(src.ID, 10), http.StatusSeeOther)
	return nil
}
