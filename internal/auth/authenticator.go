package auth

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/logthrottle"
	"github.com/stewardhq/steward/internal/store"
)

// Limits on failed authentications, per client address. A token is 256
// random bits, so guessing is hopeless anyway; the limit keeps a flood of
// bad requests from costing database reads and log lines.
const (
	// failureBurst failures are allowed at once, then one per
	// failureRefill.
	failureBurst  = 20
	failureRefill = 3 * time.Second
	// touchEvery bounds how often a token's last-used time is written.
	touchEvery = time.Minute
	// maxTrackedClients bounds the per-address limiter table; idle entries
	// are dropped first.
	maxTrackedClients = 10000
)

// Authenticator turns a request's bearer token into an Identity.
type Authenticator struct {
	db     *store.DB
	logger *slog.Logger
	now    func() time.Time
	log    *logthrottle.Limiter
	// burst failures are allowed at once, then one per refill.
	burst  int
	refill time.Duration

	mu       sync.Mutex
	failures map[string]*clientFailures
	touched  map[int64]time.Time
}

type clientFailures struct {
	limiter *rate.Limiter
	seen    time.Time
}

// NewAuthenticator returns an Authenticator over db's tokens.
func NewAuthenticator(db *store.DB, logger *slog.Logger) *Authenticator {
	return &Authenticator{
		db: db, logger: logger, now: time.Now,
		log:   logthrottle.New(10, time.Minute),
		burst: failureBurst, refill: failureRefill,
		failures: make(map[string]*clientFailures),
		touched:  make(map[int64]time.Time),
	}
}

// SetClock replaces the clock (tests of expiry).
func (a *Authenticator) SetClock(now func() time.Time) { a.now = now }

// SetFailureLimit allows burst failed authentications per client address
// at once, then one per refill (default 20, then one every 3 s).
func (a *Authenticator) SetFailureLimit(burst int, refill time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.burst, a.refill = burst, refill
	clear(a.failures)
}

// Authenticate checks the request's "Authorization: Bearer <token>". It
// answers CodeUnauthorized for a missing, malformed, unknown, expired or
// revoked token and CodeRateLimited when the client address has failed too
// often; failures are logged without the token, at a bounded rate.
func (a *Authenticator) Authenticate(r *http.Request) (Identity, error) {
	ctx := r.Context()
	if err := a.CheckFailureLimit(r); err != nil {
		return Identity{}, err
	}
	id, err := a.identify(ctx, r.Header.Get("Authorization"))
	if err != nil {
		a.fail(ctx, clientAddr(r), r, err)
		return Identity{}, err
	}
	a.touch(ctx, id.TokenID)
	return id, nil
}

func (a *Authenticator) identify(ctx context.Context, header string) (Identity, error) {
	if header == "" {
		return Identity{}, steward.Errorf(steward.CodeUnauthorized,
			"authentication required: send Authorization: Bearer <token> (create one with 'steward tokens create', see docs/security.md)")
	}
	scheme, secret, ok := strings.Cut(header, " ")
	secret = strings.TrimSpace(secret)
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return Identity{}, steward.Errorf(steward.CodeUnauthorized, "the Authorization header must be Bearer <token>")
	}
	if !strings.HasPrefix(secret, tokenPrefix) || len(secret) > 200 {
		return Identity{}, steward.Errorf(steward.CodeUnauthorized, "that is not a Steward API token (they start with %s)", tokenPrefix)
	}
	// Looked up by the SHA-256 of the secret: the comparison is on a hash
	// an attacker cannot steer, so its timing reveals nothing.
	tok, err := a.db.FindTokenByHash(ctx, Hash(secret))
	if steward.ErrorCode(err) == steward.CodeNotFound {
		return Identity{}, steward.Errorf(steward.CodeUnauthorized, "unknown API token")
	}
	if err != nil {
		return Identity{}, err
	}
	switch {
	case tok.RevokedAt != nil:
		return Identity{}, steward.Errorf(steward.CodeUnauthorized, "API token %q was revoked", tok.Name)
	case tok.ExpiresAt != nil && !a.now().Before(*tok.ExpiresAt):
		return Identity{}, steward.Errorf(steward.CodeUnauthorized, "API token %q expired at %s", tok.Name, tok.ExpiresAt.Format(time.RFC3339))
	}
	return Identity{TokenID: tok.ID, Name: tok.Name, Role: tok.Role, Scope: tok.Scope}, nil
}

// logKey is the one key of the refusal log: its bound is global, so a
// spray of addresses cannot multiply it.
type logKey struct{}

// CheckFailureLimit answers CodeRateLimited when the request's client
// address has failed too often (authentication here, or any other check
// its caller counts with RecordFailure, such as webhook signatures).
func (a *Authenticator) CheckFailureLimit(r *http.Request) error {
	client := clientAddr(r)
	if a.limited(client) {
		return steward.Errorf(steward.CodeRateLimited, "too many failed authentications from %s; wait a minute before trying again", client)
	}
	return nil
}

// RecordFailure counts a failed check against the request's client
// address.
func (a *Authenticator) RecordFailure(r *http.Request) { a.count(clientAddr(r)) }

// limited reports whether client has used up its failures.
func (a *Authenticator) limited(client string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, ok := a.failures[client]
	return ok && f.limiter.TokensAt(a.now()) < 1
}

func (a *Authenticator) fail(ctx context.Context, client string, r *http.Request, err error) {
	a.count(client)
	if code := steward.ErrorCode(err); code != steward.CodeUnauthorized {
		a.logger.ErrorContext(ctx, "authentication failed", "client", client, "err", err)
		return
	}
	if ok, suppressed := a.log.Allow(logKey{}, a.now()); ok {
		a.logger.WarnContext(ctx, "authentication refused", "client", client, "method", r.Method, "path", r.URL.Path,
			"reason", steward.ErrorMessage(err), "suppressed", suppressed)
	}
}

func (a *Authenticator) count(client string) {
	now := a.now()
	a.mu.Lock()
	f, ok := a.failures[client]
	if !ok {
		if len(a.failures) >= maxTrackedClients {
			a.sweep(now)
		}
		f = &clientFailures{limiter: rate.NewLimiter(rate.Every(a.refill), a.burst)}
		a.failures[client] = f
	}
	f.seen = now
	f.limiter.AllowN(now, 1)
	a.mu.Unlock()
}

// sweep drops limiters idle long enough to be full again; a.mu is held.
func (a *Authenticator) sweep(now time.Time) {
	for k, f := range a.failures {
		if now.Sub(f.seen) > a.refill*time.Duration(a.burst) {
			delete(a.failures, k)
		}
	}
	if len(a.failures) >= maxTrackedClients {
		clear(a.failures) // under a spray of addresses, forget rather than grow
	}
}

// touch records the token's use, at most once per touchEvery, so that
// reads do not each become a write.
func (a *Authenticator) touch(ctx context.Context, id int64) {
	now := a.now()
	a.mu.Lock()
	last, ok := a.touched[id]
	if ok && now.Sub(last) < touchEvery {
		a.mu.Unlock()
		return
	}
	a.touched[id] = now
	a.mu.Unlock()
	if err := a.db.WithTx(ctx, func(tx *store.Tx) error { return tx.TouchToken(ctx, id, now) }); err != nil {
		a.logger.WarnContext(ctx, "recording a token's last use failed", "token", id, "err", err)
	}
}

// clientAddr is the request's peer address without the port. Forwarded
// headers are not trusted: any client can set them.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
