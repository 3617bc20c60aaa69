package api

import (
	"errors"
	"net/http"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/stewardjson"
	"github.com/stewardhq/steward/internal/store"
)

// postAssessments applies one batch in Steward's JSON format, all or nothing.
func (a *API) postAssessments(w http.ResponseWriter, r *http.Request) error {
	if err := requireContentType(r, "application/json"); err != nil {
		return err
	}
	body := http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes)
	var obs []steward.Observation
	err := stewardjson.Parser{}.Parse(r.Context(), body, func(o steward.Observation) error {
		obs = append(obs, o)
		return nil
	})
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return steward.Errorf(steward.CodeTooLarge, "request body is larger than %d bytes; use POST /api/v1/imports for large files", a.cfg.MaxBodyBytes)
		}
		return err
	}
	if len(obs) == 0 {
		return invalid("the batch holds no assessments")
	}
	if err := observationsInScope(r, obs); err != nil {
		return err
	}
	res, err := a.ingest.ApplyBatch(r.Context(), obs)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"result": res})
	return nil
}

func (a *API) listAssessments(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "recommendation", "resource", "scope", "severity", "status", "cloud")
	scope, visible := narrowScope(r, q.scope())
	f := store.AssessmentFilter{
		RecommendationKey: q.str("recommendation"),
		ResourceID:        q.str("resource"),
		Scope:             scope,
		Severities:        q.severities(),
		Statuses:          q.statuses(),
		Cloud:             q.cloud(),
		Cursor:            q.str("cursor"),
		Limit:             q.limit(),
	}
	if q.err != nil {
		return q.err
	}
	if !visible || f.ResourceID != "" && !inCallerScope(r, f.ResourceID) {
		writeJSON(w, http.StatusOK, newList[*steward.Assessment](nil, ""))
		return nil
	}
	items, next, err := a.db.FindAssessments(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, next))
	return nil
}

type assessmentDetail struct {
	*steward.Assessment
	StatusChanges []store.StatusChange `json:"status_changes"`
}

func (a *API) getAssessment(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	as, err := a.db.FindAssessmentByID(r.Context(), id)
	if err != nil {
		return err
	}
	if !inCallerScope(r, as.ResourceID) {
		return notFound("assessment %d not found", id)
	}
	changes, err := a.db.FindStatusChanges(r.Context(), id)
	if err != nil {
		return err
	}
	if changes == nil {
		changes = []store.StatusChange{}
	}
	writeJSON(w, http.StatusOK, assessmentDetail{Assessment: as, StatusChanges: nonNil(changes)})
	return nil
}

func (a *API) listRecommendations(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "scope", "severity", "status", "cloud", "source")
	scope, visible := narrowScope(r, q.scope())
	f := store.RecommendationFilter{
		Scope:      scope,
		Severities: q.severities(),
		Cloud:      q.cloud(),
		Source:     q.str("source"),
		Cursor:     q.str("cursor"),
		Limit:      q.limit(),
	}
	if st := q.statuses(); len(st) > 1 {
		q.fail(invalid("status takes one value here"))
	} else if len(st) == 1 {
		f.Status = st[0]
	}
	if q.err != nil {
		return q.err
	}
	if !visible {
		writeJSON(w, http.StatusOK, newList[*store.RecommendationSummary](nil, ""))
		return nil
	}
	items, next, err := a.db.FindRecommendations(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, next))
	return nil
}

type recommendationDetail struct {
	*store.RecommendationSummary
	// Affected lists the assessments in the requested status (default
	// Unhealthy) with their resources, one page at a time.
	Affected list[*steward.Assessment] `json:"affected"`
}

func (a *API) getRecommendation(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "status", "scope")
	statuses := q.statuses()
	if len(statuses) == 0 {
		statuses = []steward.AssessmentStatus{steward.StatusUnhealthy}
	}
	scope, visible := narrowScope(r, q.scope())
	f := store.AssessmentFilter{RecommendationKey: r.PathValue("key"), Statuses: statuses, Scope: scope, Cursor: q.str("cursor"), Limit: q.limit()}
	if q.err != nil {
		return q.err
	}
	if !visible {
		return notFound("recommendation %q not found", f.RecommendationKey)
	}
	// A caller limited to a scope sees counts of its scope only.
	rec, err := a.db.FindRecommendationInScope(r.Context(), f.RecommendationKey, callerScope(r))
	if err != nil {
		return err
	}
	items, next, err := a.db.FindAssessments(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, recommendationDetail{RecommendationSummary: rec, Affected: newList(items, next)})
	return nil
}

func (a *API) listResources(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "scope", "cloud", "type")
	scope, visible := narrowScope(r, q.scope())
	f := store.ResourceFilter{Scope: scope, Cloud: q.cloud(), Type: q.str("type"), Cursor: q.str("cursor"), Limit: q.limit()}
	if q.err != nil {
		return q.err
	}
	if !visible {
		writeJSON(w, http.StatusOK, newList[*steward.Resource](nil, ""))
		return nil
	}
	items, next, err := a.db.FindResources(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, next))
	return nil
}

// getResource takes the resource ID as the rest of the path; the leading
// slash of IDs such as /subscriptions/... is the path's own.
func (a *API) getResource(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if id == "" {
		return invalid("resource id is missing")
	}
	res, err := a.db.FindResourceByID(r.Context(), "/"+id)
	if err != nil && steward.ErrorCode(err) == steward.CodeNotFound {
		res, err = a.db.FindResourceByID(r.Context(), id) // IDs without a leading slash, e.g. ARNs
	}
	if err != nil {
		return err
	}
	if !inCallerScope(r, res.ID) {
		return notFound("resource %q not found", res.ID)
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
