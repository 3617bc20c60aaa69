package web

func (h *Handler) recommendationPages() []page { return nil }
