package web

func (h *Handler) tokenPages() []page { return nil }
