// Package steward holds Steward's domain vocabulary (see DESIGN.md): scopes,
// resources, recommendations, assessments, assignments and tickets, and the
// error type every layer uses to tell users what went wrong. It imports only
// the standard library; every other package of Steward depends on it.
package steward
