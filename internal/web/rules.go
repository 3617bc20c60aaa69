package web

func (h *Handler) rulePages() []page { return nil }
