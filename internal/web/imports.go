package web

func (h *Handler) importPages() []page { return nil }
