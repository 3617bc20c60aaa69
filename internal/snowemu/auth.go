package snowemu

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// token is one issued OAuth token (§1.2).
type token struct {
	value    string
	refresh  bool
	clientID string
	userID   string
	scope    string
	expires  time.Time
}

// authStore holds the OAuth tokens. It has its own lock so token checks do
// not contend with record writes.
type authStore struct {
	mu     sync.Mutex
	tokens map[string]*token
	// current maps client+user to the latest password-grant pair, so a
	// repeated grant returns the same access token while it is valid.
	current map[string][2]*token

	locMu sync.Mutex
	locs  map[string]*time.Location
}

func (s *authStore) init() {
	s.tokens = make(map[string]*token)
	s.current = make(map[string][2]*token)
	s.locs = make(map[string]*time.Location)
}

func (s *authStore) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = make(map[string]*token)
	s.current = make(map[string][2]*token)
}

// newToken returns 86 URL-safe base64 characters, the shape of every
// documented example (§1.2).
func newToken() string {
	var b [64]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ExpireTokens makes every access token expired, as if its lifespan had
// passed; refresh tokens stay valid. Tests use it to drive the client's
// re-authentication path.
func (e *Emulator) ExpireTokens() {
	past := e.now().Add(-time.Second)
	e.auth.mu.Lock()
	defer e.auth.mu.Unlock()
	for _, t := range e.auth.tokens {
		if !t.refresh {
			t.expires = past
		}
	}
}

// RevokeTokens removes every access and refresh token.
func (e *Emulator) RevokeTokens() { e.auth.reset() }

// authHeaderValue is the challenge of §1.1 (upper-case BASIC).
const authHeaderValue = `BASIC realm="Service-now"`

// Texts of the two observed 401 bodies (§1.1): the first for missing
// credentials (and bad bearer tokens), the second for wrong credentials.
func errNoAuth() *apiError {
	return errBody(401, "User Not Authenticated", "Required to provide Auth information")
}
func errBadAuth() *apiError {
	return errBody(401, "User is not authenticated", "Required to provide Auth information")
}

// authenticate resolves the caller of an API request.
func (e *Emulator) authenticate(r *http.Request) (*actor, *apiError) {
	h := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
		if err != nil {
			return nil, errNoAuth()
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, errNoAuth()
		}
		if a := e.checkPassword(user, pass); a != nil {
			return a, nil
		}
		return nil, errBadAuth()
	case strings.EqualFold(scheme, "Bearer"):
		a := e.checkBearer(strings.TrimSpace(cred))
		if a == nil {
			return nil, errNoAuth() // §1.2: expired/revoked → same body as Basic
		}
		return a, nil
	}
	if key := r.Header.Get("x-sn-apikey"); key != "" && len(e.opts.APIKeys) > 0 {
		if name, ok := e.opts.APIKeys[key]; ok {
			if a := e.actorByName(name); a != nil {
				return a, nil
			}
		}
		return nil, errBadAuth()
	}
	return nil, errNoAuth()
}

// checkPassword returns the actor when user/pass match an active, unlocked
// user.
func (e *Emulator) checkPassword(user, pass string) *actor {
	e.mu.RLock()
	defer e.mu.RUnlock()
	rs, _ := e.tables[TableUser].lookup("user_name", user)
	for _, r := range rs {
		want, ok := e.passwords[r.fields["sys_id"]]
		if !ok || subtle.ConstantTimeCompare([]byte(want), []byte(pass)) != 1 {
			continue
		}
		if r.fields["active"] != "true" || r.fields["locked_out"] == "true" {
			return nil
		}
		return e.actorFor(r)
	}
	return nil
}

func (e *Emulator) checkBearer(v string) *actor {
	e.auth.mu.Lock()
	t := e.auth.tokens[v]
	ok := t != nil && !t.refresh && e.now().Before(t.expires)
	var uid string
	if ok {
		uid = t.userID
	}
	e.auth.mu.Unlock()
	if !ok {
		return nil
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	r := e.tables[TableUser].byID[uid]
	if r == nil || r.fields["active"] != "true" {
		return nil
	}
	return e.actorFor(r)
}

// actorByName returns the actor for a user_name, email or sys_id.
func (e *Emulator) actorByName(name string) *actor {
	e.mu.RLock()
	defer e.mu.RUnlock()
	r := e.findUserLocked(name)
	if r == nil {
		return nil
	}
	return e.actorFor(r)
}

// actorFor builds the actor of a user row; the caller holds e.mu.
func (e *Emulator) actorFor(r *row) *actor {
	roles := strings.Split(r.fields["roles"], ",")
	return &actor{
		sysID:    r.fields["sys_id"],
		userName: r.fields["user_name"],
		admin:    slices.Contains(roles, "admin"),
		roles:    roles,
		loc:      e.location(r.fields["time_zone"]),
	}
}

// location caches time zones; an unknown zone falls back to UTC.
func (e *Emulator) location(name string) *time.Location {
	if name == "" || name == "UTC" || name == "GMT" {
		return time.UTC
	}
	e.auth.locMu.Lock()
	defer e.auth.locMu.Unlock()
	if l, ok := e.auth.locs[name]; ok {
		return l
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		l = time.UTC
	}
	e.auth.locs[name] = l
	return l
}

// tokenDenied is the one opaque answer to every token failure (§1.2), with
// error_description first as observed.
const tokenDenied = `{"error_description":"access_denied","error":"server_error"}`

// handleToken serves POST /oauth_token.do (§1.2).
func (e *Emulator) handleToken(w http.ResponseWriter, r *http.Request) {
	invalid := func(desc string) {
		b := []byte(`{"error":"invalid_request","error_description":`)
		b = appendJSONString(b, desc)
		b = append(b, '}')
		e.writeRaw(w, r, http.StatusBadRequest, b)
	}
	denied := func(reason string) {
		// The real cause is only in the instance's log (§1.2).
		e.log.Info("oauth token denied", "reason", reason)
		e.writeRaw(w, r, http.StatusUnauthorized, []byte(tokenDenied))
	}
	if r.Method != http.MethodPost {
		invalid("token requests must use POST")
		return
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		invalid("body must be application/x-www-form-urlencoded")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		invalid("malformed form body")
		return
	}
	f := r.PostForm
	grant := f.Get("grant_type")
	switch grant {
	case "password", "refresh_token", "client_credentials":
	case "":
		invalid("grant_type is required")
		return
	default:
		invalid("unsupported grant_type " + grant)
		return
	}
	if subtle.ConstantTimeCompare([]byte(f.Get("client_id")), []byte(e.opts.ClientID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(f.Get("client_secret")), []byte(e.opts.ClientSecret)) != 1 {
		denied("unknown client or wrong client secret")
		return
	}
	now := e.now()
	switch grant {
	case "password":
		a := e.checkPassword(f.Get("username"), f.Get("password"))
		if a == nil {
			denied("bad user credentials")
			return
		}
		acc, ref := e.passwordGrant(a, now)
		e.writeToken(w, r, acc, ref, "useraccount", now)
	case "refresh_token":
		acc, ref := e.refreshGrant(f.Get("refresh_token"), now)
		if acc == nil {
			denied("invalid or expired refresh token")
			return
		}
		e.writeToken(w, r, acc, ref, "useraccount", now)
	case "client_credentials":
		if !e.opts.ClientCredentials {
			denied("client_credentials grant disabled")
			return
		}
		a := e.actorByName(e.opts.OAuthAppUser)
		if a == nil {
			denied("OAuth application user missing")
			return
		}
		scope := f.Get("scope")
		if scope == "" {
			scope = "useraccount"
		}
		acc := e.issue(a.sysID, false, scope, now.Add(e.opts.AccessTokenLifetime))
		e.writeToken(w, r, acc, nil, scope, now)
	}
}

func (e *Emulator) issue(userID string, refresh bool, scope string, expires time.Time) *token {
	t := &token{value: newToken(), refresh: refresh, clientID: e.opts.ClientID, userID: userID, scope: scope, expires: expires}
	e.auth.mu.Lock()
	e.auth.tokens[t.value] = t
	e.auth.mu.Unlock()
	return t
}

// passwordGrant returns the current pair while the access token is valid
// (§1.2), a new one otherwise.
func (e *Emulator) passwordGrant(a *actor, now time.Time) (*token, *token) {
	key := e.opts.ClientID + "\x00" + a.sysID
	e.auth.mu.Lock()
	cur := e.auth.current[key]
	e.auth.mu.Unlock()
	acc, ref := cur[0], cur[1]
	if acc == nil || !now.Before(acc.expires) || e.tokenGone(acc) {
		acc = e.issue(a.sysID, false, "useraccount", now.Add(e.opts.AccessTokenLifetime))
	}
	if ref == nil || !now.Before(ref.expires) || e.tokenGone(ref) {
		ref = e.issue(a.sysID, true, "useraccount", now.Add(e.opts.RefreshTokenLifetime))
	}
	e.auth.mu.Lock()
	e.auth.current[key] = [2]*token{acc, ref}
	e.auth.mu.Unlock()
	return acc, ref
}

func (e *Emulator) tokenGone(t *token) bool {
	e.auth.mu.Lock()
	defer e.auth.mu.Unlock()
	return e.auth.tokens[t.value] != t
}

// refreshGrant issues a new access token and returns the same refresh token
// while it is valid (§1.2).
func (e *Emulator) refreshGrant(v string, now time.Time) (*token, *token) {
	e.auth.mu.Lock()
	ref := e.auth.tokens[v]
	e.auth.mu.Unlock()
	if ref == nil || !ref.refresh || ref.clientID != e.opts.ClientID || !now.Before(ref.expires) {
		return nil, nil
	}
	e.mu.RLock()
	u := e.tables[TableUser].byID[ref.userID]
	ok := u != nil && u.fields["active"] == "true" && u.fields["locked_out"] != "true"
	e.mu.RUnlock()
	if !ok {
		return nil, nil
	}
	acc := e.issue(ref.userID, false, ref.scope, now.Add(e.opts.AccessTokenLifetime))
	e.auth.mu.Lock()
	e.auth.current[e.opts.ClientID+"\x00"+ref.userID] = [2]*token{acc, ref}
	e.auth.mu.Unlock()
	return acc, ref
}

func (e *Emulator) writeToken(w http.ResponseWriter, r *http.Request, acc, ref *token, scope string, now time.Time) {
	// expires_in is one second less than the remaining lifespan, as real
	// instances report (§1.2: 1799 for a 1800 s lifespan).
	left := int(acc.expires.Sub(now)/time.Second) - 1
	if left < 0 {
		left = 0
	}
	// Written by hand to keep the documented key order (§1.2).
	b := []byte(`{"access_token":`)
	b = appendJSONString(b, acc.value)
	if ref != nil {
		b = append(b, `,"refresh_token":`...)
		b = appendJSONString(b, ref.value)
	}
	b = append(b, `,"scope":`...)
	b = appendJSONString(b, scope)
	b = append(b, `,"token_type":"Bearer","expires_in":`...)
	b = strconv.AppendInt(b, int64(left), 10)
	b = append(b, '}')
	e.writeRaw(w, r, http.StatusOK, b)
}
