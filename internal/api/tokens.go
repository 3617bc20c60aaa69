package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/store"
)

// me answers the caller's own token: who the API takes it for.
func (a *API) me(w http.ResponseWriter, r *http.Request) error {
	if q := newQuery(r); q.err != nil {
		return q.err
	}
	id, _ := auth.FromContext(r.Context())
	tok, err := a.db.FindTokenByID(r.Context(), id.TokenID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, tok)
	return nil
}

// requireUnscoped refuses callers limited to a scope: what the route
// manages spans every scope.
func requireUnscoped(r *http.Request, what string) error {
	if id, ok := auth.FromContext(r.Context()); ok && id.Scoped() {
		return steward.Errorf(steward.CodeForbidden, "%s spans every scope; token %q is limited to %s", what, id.Name, id.Scope)
	}
	return nil
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request) error {
	if err := requireUnscoped(r, "managing tokens"); err != nil {
		return err
	}
	var req steward.TokenCreate
	if err := decodeJSON(w, r, a.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	// Each refusal names its field, so a form can show it there.
	if err := steward.ValidateTokenName(req.Name); err != nil {
		return atField("name", err)
	}
	role, err := steward.ParseRole(string(req.Role))
	if err != nil {
		return atField("role", err)
	}
	if err := req.Scope.Validate(); err != nil {
		return atField("scope", err)
	}
	exp, err := auth.ParseExpiry(req.Expires, a.now())
	if err != nil {
		return atField("expires", err)
	}
	secret, tok, err := auth.Issue(r.Context(), a.db, auth.TokenRequest{Name: req.Name, Role: role, Scope: req.Scope, ExpiresAt: exp}, actor(r))
	if steward.ErrorCode(err) == steward.CodeConflict {
		return atField("name", err)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/tokens/"+strconv.FormatInt(tok.ID, 10))
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, steward.IssuedToken{Secret: secret, Token: tok})
	return nil
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request) error {
	if err := requireUnscoped(r, "managing tokens"); err != nil {
		return err
	}
	if q := newQuery(r); q.err != nil {
		return q.err
	}
	all, err := a.db.FindTokens(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(all, ""))
	return nil
}

func (a *API) revokeToken(w http.ResponseWriter, r *http.Request) error {
	if err := requireUnscoped(r, "managing tokens"); err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var tok *steward.Token
	err = a.db.WithTx(r.Context(), func(tx *store.Tx) error {
		var err error
		tok, err = tx.RevokeToken(r.Context(), id, "", actor(r))
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, tok)
	return nil
}

// atField names field as the one a refusal is about; other errors pass
// through unchanged.
func atField(field string, err error) error {
	if e, ok := errors.AsType[*steward.Error](err); ok {
		return steward.AtField(field, e)
	}
	return err
}
