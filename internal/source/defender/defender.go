// Package defender pulls Microsoft Defender for Cloud assessments (its
// recommendations evaluated on resources) from Azure: through Resource
// Graph's securityresources table, many subscriptions in one paged query,
// with resource tags from the resources table and subscription and
// resource-group tags from resourcecontainers; and through the per
// subscription Microsoft.Security assessments API (armsecurity) where
// Resource Graph is not granted (403) or switched off.
//
// Each subscription is a pull.Unit with scope /subscriptions/<id>. A unit is
// Done only after every page of every query that covers it was read; a
// failed page fails the units its query covers and the pull goes on with the
// others. Recommendation.Key is Defender's assessment key (the assessment
// name, a GUID), so governance rules imported from Defender match.
//
// docs/sources.md ("Microsoft Defender for Cloud") has the permissions, the
// mapping table and what "gone" means for this source.
package defender

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/source/pull"
)

// Source is Recommendation.Source for everything this package reads.
const Source = "defender"

// The auth kinds.
const (
	AuthClientSecret     = "client_secret"
	AuthWorkloadIdentity = "workload_identity"
	AuthManagedIdentity  = "managed_identity"
	AuthAzureCLI         = "azure_cli"
)

// Settings configure a Defender for Cloud source. They are stored as is and
// shown by the API; the client secret is in Secrets.
type Settings struct {
	// TenantID is the Microsoft Entra tenant (a GUID or a domain name).
	// Required for client_secret; optional for workload_identity (else
	// AZURE_TENANT_ID) and azure_cli.
	TenantID string `json:"tenant_id,omitempty"`
	// ClientID is the application (client) ID. Required for client_secret;
	// for managed_identity it picks a user-assigned identity.
	ClientID string `json:"client_id,omitempty"`
	// Auth is client_secret, workload_identity, managed_identity or
	// azure_cli (a developer's `az login`).
	Auth string `json:"auth"`
	// Subscriptions lists the subscription IDs to read; empty means every
	// subscription the credential can see, listed at the start of each pull.
	Subscriptions []string `json:"subscriptions,omitempty"`
	// UseResourceGraph reads through Resource Graph (default true); false
	// uses the per-subscription assessments API only.
	UseResourceGraph *bool `json:"use_resource_graph,omitempty"`
	// Endpoint overrides the Azure Resource Manager base URL (and the
	// Entra authority host) for a local test server or emulator. It is
	// accepted only with Local: true and a loopback host.
	Endpoint string `json:"endpoint,omitempty"`
	Local    bool   `json:"local,omitempty"`
}

// Secrets are the sealed credentials of a Defender source.
type Secrets struct {
	ClientSecret secret.String `json:"client_secret"`
}

var (
	guidRE   = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	tenantRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$`)
)

// maxSubscriptions bounds an explicit list (a Resource Graph query takes
// them in batches anyway; this only catches pasted garbage).
const maxSubscriptions = 10000

// Validate checks the settings; errors name the field.
func (s *Settings) Validate() error {
	s.TenantID = strings.TrimSpace(s.TenantID)
	s.ClientID = strings.TrimSpace(s.ClientID)
	s.Auth = strings.TrimSpace(s.Auth)
	switch s.Auth {
	case AuthClientSecret, AuthWorkloadIdentity, AuthManagedIdentity, AuthAzureCLI:
	case "":
		return steward.InvalidAt("auth", "auth is missing (client_secret, workload_identity, managed_identity or azure_cli)")
	default:
		return steward.InvalidAt("auth", "auth %q is not client_secret, workload_identity, managed_identity or azure_cli", s.Auth)
	}
	if s.Auth == AuthClientSecret {
		if s.TenantID == "" {
			return steward.InvalidAt("tenant_id", "tenant_id is missing (auth client_secret needs the Entra tenant ID)")
		}
		if s.ClientID == "" {
			return steward.InvalidAt("client_id", "client_id is missing (auth client_secret needs the application's client ID)")
		}
	}
	if s.TenantID != "" && !tenantRE.MatchString(s.TenantID) {
		return steward.InvalidAt("tenant_id", "tenant_id %q is not a tenant ID (a GUID) or domain name", s.TenantID)
	}
	if s.ClientID != "" && !guidRE.MatchString(s.ClientID) {
		return steward.InvalidAt("client_id", "client_id %q is not a GUID", s.ClientID)
	}
	if s.Auth == AuthAzureCLI && s.ClientID != "" {
		return steward.InvalidAt("client_id", "client_id is not used with auth azure_cli (the signed-in az account is used)")
	}
	if len(s.Subscriptions) > maxSubscriptions {
		return steward.InvalidAt("subscriptions", "subscriptions lists %d IDs; at most %d are allowed (leave it empty for every subscription the credential can see)", len(s.Subscriptions), maxSubscriptions)
	}
	seen := map[string]bool{}
	for i, id := range s.Subscriptions {
		id = strings.ToLower(strings.TrimSpace(id))
		field := "subscriptions[" + strconv.Itoa(i) + "]"
		if !guidRE.MatchString(id) {
			return steward.InvalidAt(field, "%s %q is not a subscription ID (a GUID)", field, s.Subscriptions[i])
		}
		if seen[id] {
			return steward.InvalidAt(field, "%s %q is listed twice", field, id)
		}
		seen[id] = true
		s.Subscriptions[i] = id
	}
	return pull.CheckEndpoint(s.Endpoint, s.Local, "Azure")
}

// Validate checks the secrets against the settings they go with.
func (s Secrets) Validate(settings Settings) error {
	if settings.Auth == AuthClientSecret {
		if s.ClientSecret.IsZero() {
			return steward.InvalidAt("client_secret", "client_secret is missing (auth client_secret)")
		}
		return nil
	}
	if !s.ClientSecret.IsZero() {
		return steward.InvalidAt("client_secret", "client_secret is only used with auth client_secret (auth is %s)", settings.Auth)
	}
	return nil
}

// Retry policy for every request (ARM and Resource Graph): 429 and 5xx
// answers are retried up to maxRetries times, waiting what Retry-After says
// (or exponential backoff from retryDelay); a Retry-After longer than
// maxRetryDelay is not waited for, and the unit fails as unavailable.
const (
	maxRetries    = 5
	retryDelay    = 2 * time.Second
	maxRetryDelay = 60 * time.Second
	tryTimeout    = 2 * time.Minute
)

func retryOptions() policy.RetryOptions {
	return policy.RetryOptions{MaxRetries: maxRetries, RetryDelay: retryDelay, MaxRetryDelay: maxRetryDelay, TryTimeout: tryTimeout}
}

// quotaResetPolicy gives a throttled Resource Graph answer the Retry-After
// azcore's retry policy reads: Resource Graph says when its quota resets in
// x-ms-user-quota-resets-after (hh:mm:ss) instead. It runs once per try,
// inside the retry policy.
type quotaResetPolicy struct{}

func (quotaResetPolicy) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	if err != nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		return resp, err
	}
	if resp.Header.Get("Retry-After") != "" || resp.Header.Get("retry-after-ms") != "" || resp.Header.Get("x-ms-retry-after-ms") != "" {
		return resp, err
	}
	if d, ok := parseQuotaReset(resp.Header.Get("x-ms-user-quota-resets-after")); ok {
		// Whole seconds, rounded up so the retry never comes early.
		resp.Header.Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
	}
	return resp, err
}

// parseQuotaReset reads hh:mm:ss (fractions of a second allowed).
func parseQuotaReset(s string) (time.Duration, bool) {
	parts := strings.Split(strings.TrimSpace(s), ":")
	if len(parts) != 3 {
		return 0, false
	}
	h, err1 := strconv.Atoi(parts[0])
	m, err2 := strconv.Atoi(parts[1])
	sec, err3 := strconv.ParseFloat(parts[2], 64)
	if err1 != nil || err2 != nil || err3 != nil || h < 0 || m < 0 || sec < 0 {
		return 0, false
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec*float64(time.Second)), true
}

// New returns a Puller for the settings, with its credential.
func New(s Settings, sec Secrets, env pull.Env) (pull.Puller, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := sec.Validate(s); err != nil {
		return nil, err
	}
	co := clientOptions(s, env)
	var (
		cred azcore.TokenCredential
		err  error
	)
	switch s.Auth {
	case AuthClientSecret:
		cred, err = azidentity.NewClientSecretCredential(s.TenantID, s.ClientID, sec.ClientSecret.Reveal(),
			&azidentity.ClientSecretCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: s.Endpoint != ""})
	case AuthWorkloadIdentity:
		cred, err = azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: co, TenantID: s.TenantID, ClientID: s.ClientID, DisableInstanceDiscovery: s.Endpoint != ""})
	case AuthManagedIdentity:
		// The identity endpoint is the platform's own (IMDS on a link-local
		// address), which Steward's outbound policy refuses by design, so
		// this one credential uses the default transport.
		mo := &azidentity.ManagedIdentityCredentialOptions{}
		if s.ClientID != "" {
			mo.ID = azidentity.ClientID(s.ClientID)
		}
		cred, err = azidentity.NewManagedIdentityCredential(mo)
	case AuthAzureCLI:
		cred, err = azidentity.NewAzureCLICredential(&azidentity.AzureCLICredentialOptions{TenantID: s.TenantID})
	}
	if err != nil {
		// azidentity's constructor errors name missing environment
		// settings (AZURE_FEDERATED_TOKEN_FILE …), never the secret.
		return nil, steward.AtField("auth", steward.WrapError(steward.CodeInvalid, err, "defender source: the %s credential cannot be set up: %s", s.Auth, err.Error()))
	}
	return newPuller(s, cred, env)
}

func clientOptions(s Settings, env pull.Env) policy.ClientOptions {
	co := policy.ClientOptions{Retry: retryOptions(), PerRetryPolicies: []policy.Policy{quotaResetPolicy{}}}
	if env.HTTPClient != nil {
		co.Transport = env.HTTPClient
	}
	if s.Endpoint != "" {
		ep := strings.TrimRight(strings.TrimSpace(s.Endpoint), "/")
		co.Cloud = cloud.Configuration{
			ActiveDirectoryAuthorityHost: ep + "/",
			Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager: {Audience: "https://management.azure.com", Endpoint: ep},
			},
		}
		// A local test server may speak plain http; Validate allowed the
		// endpoint only on loopback with local: true.
		co.InsecureAllowCredentialWithHTTP = true
	}
	return co
}

// puller reads one Defender source.
type puller struct {
	settings Settings
	cred     azcore.TokenCredential
	env      pull.Env
	log      *slog.Logger
	armOpts  *arm.ClientOptions
	graph    bool
	// batchSize is how many subscriptions one Resource Graph query covers.
	batchSize int
	// pageSize is the Resource Graph page size ($top; 1000 is its maximum).
	pageSize int32
}

// newPuller is New after the credential exists; tests pass azcore/fake's.
func newPuller(s Settings, cred azcore.TokenCredential, env pull.Env) (*puller, error) {
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	return &puller{
		settings:  s,
		cred:      cred,
		env:       env,
		log:       log.With("source_kind", Source),
		armOpts:   &arm.ClientOptions{ClientOptions: clientOptions(s, env)},
		graph:     s.UseResourceGraph == nil || *s.UseResourceGraph,
		batchSize: 100,
		pageSize:  1000,
	}, nil
}

// Pull reads every unit; see the package comment.
func (p *puller) Pull(ctx context.Context, sink pull.Sink) error {
	units, err := p.units(ctx)
	if err != nil {
		return err
	}
	r := &run{p: p, sink: sink, ended: map[string]bool{}}
	graph := p.graph
	for start := 0; start < len(units); start += p.batchSize {
		batch := units[start:min(start+p.batchSize, len(units))]
		if graph {
			err := r.graphBatch(ctx, batch)
			if errors.Is(err, errGraphForbidden) {
				p.log.Info("defender source: Resource Graph is not granted (403); reading the assessments API per subscription")
				graph = false
			} else if err != nil {
				return err
			} else {
				continue
			}
		}
		for _, u := range batch {
			if err := r.fallbackUnit(ctx, u); err != nil {
				return err
			}
		}
	}
	return nil
}

// run is one Pull's state.
type run struct {
	p     *puller
	sink  pull.Sink
	ended map[string]bool
}

func (r *run) done(ctx context.Context, u pull.Unit) error {
	if r.ended[u.ID] {
		return nil
	}
	r.ended[u.ID] = true
	return r.sink.Done(ctx, u)
}

func (r *run) anyEnded(units []pull.Unit) bool {
	for _, u := range units {
		if r.ended[u.ID] {
			return true
		}
	}
	return false
}

func (r *run) failed(ctx context.Context, u pull.Unit, err error) {
	if r.ended[u.ID] {
		return
	}
	r.ended[u.ID] = true
	r.p.log.Warn("defender source: unit failed", "unit", u.ID, "err", steward.ErrorMessage(err))
	r.sink.Failed(ctx, u, err)
}

func unitFor(id string) pull.Unit {
	return pull.Unit{ID: id, Scope: steward.Scope("/subscriptions/" + id)}
}

var errGraphForbidden = errors.New("resource graph forbidden")

// requestError turns an SDK error into a user-safe *steward.Error naming
// what was being read. A refused credential stops the pull (stop true).
func requestError(err error, what string) (e *steward.Error, stop bool) {
	if re, ok := errors.AsType[*azcore.ResponseError](err); ok {
		switch {
		case re.StatusCode == http.StatusUnauthorized:
			return steward.WrapError(steward.CodeUnauthorized, err, "defender source: Azure refused the credential (HTTP 401 %s) for %s; check tenant_id, client_id and the client secret or identity, which may have expired", re.ErrorCode, what), true
		case re.StatusCode == http.StatusForbidden:
			return steward.WrapError(steward.CodeForbidden, err, "defender source: the identity may not read %s (HTTP 403 %s); it needs the Security Reader role", what, re.ErrorCode), false
		case re.StatusCode == http.StatusTooManyRequests || re.StatusCode >= 500 || re.StatusCode == http.StatusRequestTimeout:
			return steward.WrapError(steward.CodeUnavailable, err, "defender source: Azure did not answer %s (HTTP %d %s) after %d retries", what, re.StatusCode, re.ErrorCode, maxRetries), false
		default:
			return steward.WrapError(steward.CodeInvalid, err, "defender source: Azure refused %s (HTTP %d %s)", what, re.StatusCode, re.ErrorCode), false
		}
	}
	if ae, ok := errors.AsType[*azidentity.AuthenticationFailedError](err); ok {
		code := ""
		if ae.RawResponse != nil {
			code = strconv.Itoa(ae.RawResponse.StatusCode)
		}
		return steward.WrapError(steward.CodeUnauthorized, err, "defender source: Microsoft Entra refused the credential (HTTP %s) while reading %s; check tenant_id, client_id and the client secret or identity, which may have expired", code, what), true
	}
	if _, ok := errors.AsType[*azidentity.AuthenticationRequiredError](err); ok {
		return steward.WrapError(steward.CodeUnauthorized, err, "defender source: the credential needs an interactive sign-in to read %s", what), true
	}
	if isCredentialError(err) {
		// azidentity's credentialUnavailableError (no az CLI, no identity
		// endpoint, no federated token file): its message names what is
		// missing, never a secret.
		return steward.WrapError(steward.CodeUnauthorized, err, "defender source: no credential available to read %s (%s)", what, firstLine(err.Error())), true
	}
	return steward.WrapError(steward.CodeUnavailable, err, "defender source: reading %s failed", what), false
}

func isCredentialError(err error) bool {
	var nr interface{ NonRetriable() }
	return errors.As(err, &nr)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}
