package servicenow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/stewardhq/steward/internal/itsm"
)

// authenticator sets credentials on API requests.
type authenticator interface {
	// apply authenticates req, fetching a token when needed.
	apply(ctx context.Context, req *http.Request) *itsm.Error
	// invalidate drops the cached access token after the API answered 401,
	// so the next apply re-authenticates. It reports whether that can
	// change anything (false for Basic).
	invalidate() bool
}

type basicAuth struct{ c *Client }

func (a basicAuth) apply(_ context.Context, req *http.Request) *itsm.Error {
	req.SetBasicAuth(a.c.cfg.Username, a.c.cfg.Password.Reveal())
	return nil
}

func (basicAuth) invalidate() bool { return false }

// oauthAuth holds one access token for the whole client, refreshed
// proactively before it expires (reference §1.2: ~60 s early, as Ansible's
// client does). The mutex serializes token requests, so concurrent
// callers wait for one refresh instead of each starting their own.
type oauthAuth struct {
	c        *Client
	password *oauth2.Config            // password and refresh_token grants
	cc       *clientcredentials.Config // client_credentials grant

	mu      sync.Mutex
	tok     *oauth2.Token
	expires time.Time // by the client's clock; zero: unknown
	margin  time.Duration
}

func newOAuth(c *Client) *oauthAuth {
	tokenURL := c.base + "/oauth_token.do"
	a := &oauthAuth{c: c}
	// Credentials go in the form body (reference §1.2: every documented
	// example; Basic client authentication at the token endpoint is
	// uncertain).
	if c.cfg.AuthMode == AuthClientCredentials {
		a.cc = &clientcredentials.Config{
			ClientID:     c.cfg.ClientID,
			ClientSecret: c.cfg.ClientSecret.Reveal(),
			TokenURL:     tokenURL,
			AuthStyle:    oauth2.AuthStyleInParams,
		}
	} else {
		a.password = &oauth2.Config{
			ClientID:     c.cfg.ClientID,
			ClientSecret: c.cfg.ClientSecret.Reveal(),
			Endpoint:     oauth2.Endpoint{TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams},
		}
	}
	return a
}

func (a *oauthAuth) apply(ctx context.Context, req *http.Request) *itsm.Error {
	tok, err := a.token(ctx)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return nil
}

func (a *oauthAuth) invalidate() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tok != nil {
		a.tok.AccessToken = "" // keep the refresh token
	}
	return true
}

// token returns a valid access token, refreshing or re-granting it.
func (a *oauthAuth) token(ctx context.Context) (string, *itsm.Error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.c.now()
	if a.tok != nil && a.tok.AccessToken != "" && (a.expires.IsZero() || now.Before(a.expires.Add(-a.margin))) {
		return a.tok.AccessToken, nil
	}
	if err := a.c.wait(ctx, "oauth_token"); err != nil {
		return "", err
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, a.c.http)
	tctx, cancel := context.WithTimeout(ctx, a.c.cfg.Timeout)
	defer cancel()

	var tok *oauth2.Token
	var err error
	grant := "password"
	switch {
	case a.cc != nil:
		grant = "client_credentials"
		tok, err = a.cc.Token(tctx)
	case a.tok != nil && a.tok.RefreshToken != "":
		grant = "refresh_token"
		old := a.tok.RefreshToken
		tok, err = a.password.TokenSource(tctx, &oauth2.Token{RefreshToken: old}).Token()
		if err != nil {
			// An expired or revoked refresh token is not fatal: the user's
			// password still works.
			a.c.log.DebugContext(ctx, "servicenow token refresh failed, using the password grant", slog.String("error", a.c.scrub(itsm.RedactError(err).Error())))
			grant = "password"
			tok, err = a.password.PasswordCredentialsToken(tctx, a.c.cfg.Username, a.c.cfg.Password.Reveal())
		} else if tok.RefreshToken == "" {
			tok.RefreshToken = old // reference §1.2: a refresh may return only an access token
		}
	default:
		tok, err = a.password.PasswordCredentialsToken(tctx, a.c.cfg.Username, a.c.cfg.Password.Reveal())
	}
	a.c.metrics.request(a.c.cfg.Name, "oauth_token", http.MethodPost, tokenStatus(err))
	if err != nil {
		return "", a.c.tokenError(ctx, grant, err)
	}
	if tok.AccessToken == "" {
		return "", &itsm.Error{Op: "token", Kind: itsm.KindBadResponse, Retryable: true,
			Message: "ServiceNow's token endpoint answered without an access token"}
	}
	a.tok = tok
	a.expires, a.margin = time.Time{}, 0
	if !tok.Expiry.IsZero() {
		// oauth2 computed Expiry from expires_in with the wall clock;
		// translate it to the client's clock.
		life := time.Until(tok.Expiry)
		a.expires = now.Add(life)
		a.margin = min(60*time.Second, life/4)
	}
	a.c.log.DebugContext(ctx, "servicenow token issued", slog.String("grant", grant), slog.Time("expires", a.expires))
	return tok.AccessToken, nil
}

func tokenStatus(err error) int {
	if err == nil {
		return http.StatusOK
	}
	if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok && re.Response != nil {
		return re.Response.StatusCode
	}
	return 0
}

// tokenError explains a failed token request. ServiceNow answers every
// credential problem with the same opaque 401 (reference §1.2), so unless
// the answer uses the standard OAuth codes the message names both
// credentials. The token endpoint's body is not kept: only its error code
// and description, scrubbed of the credentials.
func (c *Client) tokenError(ctx context.Context, grant string, err error) *itsm.Error {
	re, ok := errors.AsType[*oauth2.RetrieveError](err)
	if !ok {
		if _, isURL := errors.AsType[*url.Error](err); isURL || ctx.Err() != nil {
			return c.networkError(ctx, "token", "", err)
		}
		// oauth2 could not read the answer as a token (an HTML page, say).
		return &itsm.Error{Op: "token", Kind: itsm.KindBadResponse,
			Message: "ServiceNow's token endpoint " + c.base + "/oauth_token.do answered with something other than an OAuth token (is OAuth enabled on the instance?)",
			Err:     errors.New(c.scrub(err.Error()))}
	}
	status := 0
	txn := ""
	if re.Response != nil {
		status = re.Response.StatusCode
		txn = re.Response.Header.Get("X-Transaction-ID")
	}
	cause := fmt.Errorf("token endpoint answered %d: error=%q error_description=%q", status, c.scrub(re.ErrorCode), c.scrub(re.ErrorDescription))
	e := &itsm.Error{Op: "token", Status: status, TransactionID: txn, Err: cause}
	switch {
	case status >= 300 && status < 400 && re.Response != nil:
		e.Kind = itsm.KindInvalid
		e.Message = c.redirectMessage(re.Response)
	case status == http.StatusTooManyRequests || (status >= 500 && itsm.RetryableStatus(status)):
		e.Kind, e.Retryable = itsm.KindUnavailable, true
		if status == http.StatusTooManyRequests {
			e.Kind = itsm.KindRateLimited
		}
		e.RetryAfter = itsm.ParseRetryAfter(re.Response.Header.Get("Retry-After"), c.now())
		e.Message = "ServiceNow's token endpoint is unavailable"
	case status == http.StatusNotFound:
		e.Kind = itsm.KindAuth
		e.Message = "ServiceNow has no OAuth token endpoint at " + c.base + "/oauth_token.do (OAuth is not enabled on the instance?)"
	case re.ErrorCode == "invalid_client":
		e.Kind = itsm.KindAuth
		e.Message = "ServiceNow rejected the OAuth client ID or client secret"
	case re.ErrorCode == "invalid_grant" && grant == "password":
		e.Kind = itsm.KindAuth
		e.Message = fmt.Sprintf("ServiceNow rejected the user name or password of %q", c.cfg.Username)
	case grant == "client_credentials":
		e.Kind = itsm.KindAuth
		e.Message = "ServiceNow refused the client_credentials grant: check the OAuth client ID and client secret, and that the instance enables the grant (system property glide.oauth.inbound.client.credential.grant_type.enabled) with an OAuth application user on the client record"
	default:
		e.Kind = itsm.KindAuth
		e.Message = fmt.Sprintf("ServiceNow refused the credentials without saying which one (its token endpoint answers every failure alike): check the user name and password of %q and the OAuth client ID and client secret", c.cfg.Username)
	}
	return e
}

// scrub removes the configured credentials from text that came from the
// server or from a library, in case either echoes a request.
func (c *Client) scrub(s string) string {
	for _, sec := range []string{c.cfg.Password.Reveal(), c.cfg.ClientSecret.Reveal()} {
		if len(sec) >= 3 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}
