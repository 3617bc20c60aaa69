package web

func (h *Handler) auditPages() []page { return nil }
