package servicenow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/netpolicy"
)

// Validate checks, in order and without retries (a person is waiting):
//
//  1. the credentials: a token from /oauth_token.do (OAuth modes);
//  2. the integration user's own sys_user record (Basic credentials are
//     checked here; the record must be readable and active);
//  3. read access to each of Config.Tables (sysparm_limit=1).
//
// It stops at the first failure of steps 1–2 and reports every failing
// table of step 3 (errors.Join). Each failure is an *itsm.Error whose
// message says what to fix: DNS, the outbound policy, TLS, refused
// connection, timeout, a redirect, which credential (when it can tell),
// missing role, unknown table. Messages never quote the instance's answer.
//
// ServiceNow's token endpoint answers a wrong password and a wrong client
// secret alike (reference §1.2). When the password grant fails that way,
// Validate tries the user name and password once with Basic auth: if they
// work, the client ID or secret is wrong; if they fail too, the password
// (or user name) is.
func (c *Client) Validate(ctx context.Context) error {
	if oa, ok := c.auth.(*oauthAuth); ok {
		if _, err := oa.token(ctx); err != nil {
			err.Op = "validate"
			if err.Kind == itsm.KindAuth && err.Status == http.StatusUnauthorized && c.cfg.AuthMode == AuthOAuthPassword {
				c.explainOpaque401(ctx, err)
			}
			return err
		}
	}

	query := "user_name=" + c.cfg.Username
	if c.cfg.AuthMode == AuthClientCredentials {
		query = "sys_id=javascript:gs.getUserID()" // the OAuth application user (reference §3.3)
	}
	cl := call{op: "validate", table: "sys_user", method: http.MethodGet, path: tablePath("sys_user"), idempotent: true, noRetry: true, noEcho: true,
		query: url.Values{
			"sysparm_query":                  {query},
			"sysparm_fields":                 {userFields},
			"sysparm_limit":                  {"1"},
			"sysparm_no_count":               {"true"},
			"sysparm_exclude_reference_link": {"true"},
		}}
	rep, err, _ := c.send(ctx, cl)
	if err != nil {
		if err.Kind == itsm.KindForbidden {
			err.Message = fmt.Sprintf("the integration user %s may not read the sys_user table (give it a role such as itil)", c.userLabel())
		}
		return err
	}
	recs, derr := c.decodeList(cl, rep)
	if derr != nil {
		return derr
	}
	if len(recs) == 0 {
		return &itsm.Error{Op: "validate", Table: "sys_user", Kind: itsm.KindForbidden,
			Message: fmt.Sprintf("the integration user %s cannot see its own sys_user record (an ACL hides it, or the user name differs in case)", c.userLabel())}
	}
	if u := userFromRecord(recs[0]); recs[0].has("active") && !u.Active {
		return &itsm.Error{Op: "validate", Table: "sys_user", Kind: itsm.KindAuth,
			Message: fmt.Sprintf("the integration user %s is inactive in ServiceNow", c.userLabel())}
	}

	var errs []error
	for _, table := range c.cfg.Tables {
		cl := call{op: "validate", table: table, method: http.MethodGet, path: tablePath(table), idempotent: true, noRetry: true, noEcho: true,
			query: url.Values{
				"sysparm_fields":   {"sys_id"},
				"sysparm_limit":    {"1"},
				"sysparm_no_count": {"true"},
			}}
		if _, err, _ := c.send(ctx, cl); err != nil {
			switch err.Kind {
			case itsm.KindForbidden:
				err.Message = fmt.Sprintf("the integration user %s may not read table %q (missing role, e.g. itil, or an ACL)", c.userLabel(), table)
			case itsm.KindNotFound:
				err.Kind = itsm.KindInvalidTable
				err.Message = fmt.Sprintf("table %q was not found on %s", table, c.host)
			}
			errs = append(errs, err)
			if err.Kind == itsm.KindNetwork || err.Kind == itsm.KindCanceled || err.Kind == itsm.KindAuth || refused(err) {
				break // the next tables would fail the same way
			}
		}
	}
	return joinTableErrors(errs)
}

// refused reports whether the outbound policy refused the connection.
func refused(err error) bool {
	_, ok := errors.AsType[*netpolicy.RefusedError](err)
	return ok
}

// joinTableErrors returns nil, the one error, or one *itsm.Error whose
// message lists every failing table (so a user sees them all, and
// errors.As still finds an *itsm.Error), with the errors joined as its
// cause.
func joinTableErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	first, _ := errors.AsType[*itsm.Error](errs[0])
	msgs := make([]string, len(errs))
	for i, err := range errs {
		e, _ := errors.AsType[*itsm.Error](err)
		msgs[i] = e.Message
	}
	return &itsm.Error{Op: "validate", Kind: first.Kind, Status: first.Status, Retryable: first.Retryable,
		Message: strings.Join(msgs, "; "), Err: errors.Join(errs...)}
}

// explainOpaque401 refines the message of a password-grant 401 by trying
// the same user name and password with Basic auth on the user's own
// record.
func (c *Client) explainOpaque401(ctx context.Context, err *itsm.Error) {
	probe := call{op: "validate", table: "sys_user", method: http.MethodGet, path: tablePath("sys_user"), idempotent: true, noRetry: true, noEcho: true,
		auth: basicAuth{c: c},
		query: url.Values{
			"sysparm_query":    {"user_name=" + c.cfg.Username},
			"sysparm_fields":   {"sys_id"},
			"sysparm_limit":    {"1"},
			"sysparm_no_count": {"true"},
		}}
	_, perr, _ := c.send(ctx, probe)
	switch {
	case perr == nil:
		err.Message = fmt.Sprintf("ServiceNow refused the OAuth client ID or client secret (the user name and password of %q work with Basic auth); also check that the OAuth application is active", c.cfg.Username)
	case perr.Status == http.StatusUnauthorized:
		err.Message = fmt.Sprintf("ServiceNow refused the user name or password of %q (Basic auth with them fails too; the OAuth client ID and secret could not be checked)", c.cfg.Username)
	}
}
