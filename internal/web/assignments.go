package web

func (h *Handler) assignmentPages() []page { return nil }
