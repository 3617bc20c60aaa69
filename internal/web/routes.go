package web

// routes is the UI's page table: every page says who may open it. Each
// area keeps its pages next to its handlers.
func (h *Handler) routes() []page {
	pages := []page{
		{"GET", "/signin", public, h.signInPage},
		{"POST", "/signin", public, h.signIn},
		{"POST", "/signout", reader, h.signOut},
		{"GET", "/{$}", reader, h.overview},
	}
	pages = append(pages, h.oidcPages()...)
	pages = append(pages, h.recommendationPages()...)
	pages = append(pages, h.assignmentPages()...)
	pages = append(pages, h.integrationPages()...)
	pages = append(pages, h.rulePages()...)
	pages = append(pages, h.sourcePages()...)
	pages = append(pages, h.importPages()...)
	pages = append(pages, h.auditPages()...)
	pages = append(pages, h.tokenPages()...)
	return pages
}
