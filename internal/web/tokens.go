package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/stewardhq/steward"
)

func (h *Handler) tokenPages() []page {
	return []page{
		{"GET", "/settings/tokens", owner, h.tokens},
		{"POST", "/settings/tokens", owner, h.createToken},
		{"POST", "/settings/tokens/{id}/revoke", owner, h.revokeToken},
	}
}

// tokenRoles are the roles a token may have, least first.
var tokenRoles = []steward.Role{steward.RoleReader, steward.RoleContributor, steward.RoleSecurityAdmin, steward.RoleOwner}

// tokenForm is what the create form holds; never a secret.
type tokenForm struct {
	Name    string
	Role    string
	Scope   string
	Expires string
}

type tokensView struct {
	Tokens  []tokenRow
	Roles   []steward.Role
	Form    tokenForm
	Error   fieldError
	Revoked string // the name of the token just revoked
	// CurrentID is the token the signed-in user signed in with.
	CurrentID int64
}

type tokenRow struct {
	steward.Token
	Expired bool
}

func (h *Handler) tokens(w http.ResponseWriter, r *http.Request) error {
	v := tokensView{Form: tokenForm{Role: string(steward.RoleReader), Expires: "90d"}}
	return h.renderTokens(w, r, http.StatusOK, v)
}

func (h *Handler) renderTokens(w http.ResponseWriter, r *http.Request, status int, v tokensView) error {
	p, err := h.apiFor(w, r).ListTokens(r.Context())
	if err != nil {
		return err
	}
	now := h.now()
	revoked, _ := strconv.ParseInt(r.URL.Query().Get("revoked"), 10, 64)
	for _, t := range p.Items {
		v.Tokens = append(v.Tokens, tokenRow{Token: t, Expired: t.ExpiresAt != nil && !now.Before(*t.ExpiresAt)})
		if revoked != 0 && t.ID == revoked && r.Method == http.MethodGet {
			v.Revoked = t.Name
		}
	}
	v.Roles = tokenRoles
	v.CurrentID = identity(r).TokenID
	return h.render(w, r, status, "tokens.html", "Tokens", v)
}

type tokenCreatedView struct {
	Secret string
	Token  *steward.Token
}

// createToken creates a token and shows its secret this once, on the
// answer to the POST itself: it is never in a URL, a redirect or a
// session, and render marks the page no-store.
func (h *Handler) createToken(w http.ResponseWriter, r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return steward.Errorf(steward.CodeInvalid, "could not read the form")
	}
	f := tokenForm{
		Name:    strings.TrimSpace(r.PostForm.Get("name")),
		Role:    strings.TrimSpace(r.PostForm.Get("role")),
		Scope:   strings.TrimSpace(r.PostForm.Get("scope")),
		Expires: strings.TrimSpace(r.PostForm.Get("expires")),
	}
	issued, err := h.apiFor(w, r).CreateToken(r.Context(), steward.TokenCreate{
		Name: f.Name, Role: steward.Role(f.Role), Scope: steward.Scope(f.Scope), Expires: f.Expires,
	})
	if err != nil {
		status, _ := statusOf(err)
		if status >= 500 || status == http.StatusForbidden || status == http.StatusUnauthorized {
			return err
		}
		return h.renderTokens(w, r, status, tokensView{Form: f, Error: formError(err)})
	}
	return h.render(w, r, http.StatusCreated, "token_created.html", "Token created", tokenCreatedView{Secret: issued.Secret, Token: issued.Token})
}

func (h *Handler) revokeToken(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return steward.Errorf(steward.CodeNotFound, "there is no token %q", r.PathValue("id"))
	}
	if _, err := h.apiFor(w, r).RevokeToken(r.Context(), id); err != nil {
		return err
	}
	http.Redirect(w, r, "/settings/tokens?revoked="+strconv.FormatInt(id, 10), http.StatusSeeOther)
	return nil
}
