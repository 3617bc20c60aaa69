package web

import "net/http"

func (h *Handler) overview(w http.ResponseWriter, r *http.Request) error {
	return h.render(w, r, http.StatusOK, "overview.html", "Overview", nil)
}
