package web

func (h *Handler) integrationPages() []page { return nil }
