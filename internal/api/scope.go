package api

import (
	"net/http"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/auth"
)

// A token limited to a scope sees and changes only resources inside it.
// Lists narrow their scope filter to the caller's; single records outside
// it answer 404, exactly as if they did not exist, so a scoped caller
// cannot even learn what lies outside.

// callerScope is the scope the request's identity is limited to ("" for
// none).
func callerScope(r *http.Request) steward.Scope {
	if id, ok := auth.FromContext(r.Context()); ok && id.Scoped() {
		return id.Scope
	}
	return ""
}

// narrowScope intersects a requested scope filter with the caller's scope.
// Scopes are prefixes, so two either nest (the inner one is the
// intersection) or are disjoint: ok is false when nothing can match.
func narrowScope(r *http.Request, requested steward.Scope) (scope steward.Scope, ok bool) {
	mine := callerScope(r)
	switch {
	case mine == "":
		return requested, true
	case requested == "" || requested.Normalize() == "/":
		return mine, true
	case mine.Contains(string(requested)):
		return requested, true
	case requested.Contains(string(mine)):
		return mine, true
	}
	return "", false
}

// inCallerScope reports whether the caller may see resourceID.
func inCallerScope(r *http.Request, resourceID string) bool {
	mine := callerScope(r)
	return mine == "" || mine.Contains(resourceID)
}

// scopeWithin reports whether every resource of scope s lies in the
// caller's scope (an integration's or a new token's scope).
func scopeWithin(r *http.Request, s steward.Scope) bool {
	mine := callerScope(r)
	return mine == "" || s.Normalize() != "/" && mine.Contains(string(s))
}

// assessmentInScope answers 404 for an assessment outside the caller's
// scope; unscoped callers cost no lookup.
func (a *API) assessmentInScope(r *http.Request, id int64) error {
	if callerScope(r) == "" {
		return nil
	}
	as, err := a.db.FindAssessmentByID(r.Context(), id)
	if err != nil {
		return err
	}
	if !inCallerScope(r, as.ResourceID) {
		return notFound("assessment %d not found", id)
	}
	return nil
}

// assignmentInScope answers 404 for an assignment outside the caller's
// scope.
func (a *API) assignmentInScope(r *http.Request, id int64) error {
	if callerScope(r) == "" {
		return nil
	}
	as, err := a.db.FindAssignmentByID(r.Context(), id)
	if err != nil {
		return err
	}
	if !inCallerScope(r, as.ResourceID) {
		return notFound("assignment %d not found", id)
	}
	return nil
}

// integrationInScope answers 404 for an integration whose scope is not
// inside the caller's.
func (a *API) integrationInScope(r *http.Request, id int64) error {
	if callerScope(r) == "" {
		return nil
	}
	in, err := a.db.FindIntegrationByID(r.Context(), id)
	if err != nil {
		return err
	}
	if !scopeWithin(r, in.Scope) {
		return notFound("integration %d not found", id)
	}
	return nil
}

// observationsInScope refuses a batch that would change anything outside
// the caller's scope, naming the first such record.
func observationsInScope(r *http.Request, obs []steward.Observation) error {
	mine := callerScope(r)
	if mine == "" {
		return nil
	}
	for i, o := range obs {
		if !mine.Contains(o.Resource.ID) {
			return steward.Errorf(steward.CodeForbidden, "record %d: resource %q is outside this token's scope %s; nothing was stored", i+1, o.Resource.ID, mine)
		}
	}
	return nil
}
