// Package securityhub pulls findings from AWS Security Hub with
// aws-sdk-go-v2: GetFindings in each configured region, with filters
// (record state, workflow status, product, severity, accounts), paged, and
// maps them with internal/source/asff, the mapping ASFF file imports use.
//
// # Units
//
// A unit is an account in a region as the findings name it,
// "<AwsAccountId>/<region>", with scope /aws/accounts/<AwsAccountId>. One
// GetFindings stream per region returns every account the credential sees
// there (an administrator account sees its members; an aggregation region
// sees its linked regions too), so units appear as the stream names them,
// plus every account listed in Settings.Accounts.
//
// A unit is Done only when the whole stream of its region was read without
// a page error, and only if every other configured region's stream was too:
// the scope of a unit is the whole account, so a region that failed part
// way may hold findings of any account, and marking an account's unseen
// findings gone while one of its regions was not read would be wrong. A
// page error therefore fails every unit of the pull (each told which region
// and page failed). Accounts the stream had not named when it failed get no
// unit in that run at all, so nothing of theirs is marked gone. The units
// are ended after every region was read.
//
// Filters that a finding can move out of while still failing
// (severity_labels; workflow_status unless it holds both NEW and NOTIFIED)
// narrow the pull: its units end Failed, so nothing is marked gone (see
// pull.Puller's contract). record_state ACTIVE, product_name and accounts
// do not: a finding leaves them only by being archived (which the mapping
// reads as Healthy) or never.
//
// docs/sources.md ("AWS Security Hub") has the permissions, the mapping
// table and what "gone" means for this source.
package securityhub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	"github.com/aws/aws-sdk-go-v2/service/securityhub/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	smithy "github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/httpretry"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/source/asff"
	"github.com/stewardhq/steward/internal/source/pull"
)

// Settings configure a Security Hub source. They are stored as is and
// shown by the API; the keys are in Secrets.
type Settings struct {
	// Regions are the regions to call GetFindings in (required). With
	// cross-region aggregation, the aggregation region alone covers its
	// linked regions.
	Regions []string `json:"regions"`
	// Accounts, when set, reads only these account IDs (a GetFindings
	// filter), and each gets a unit in every region even when it has no
	// finding left, so its last finding can be marked gone.
	Accounts []string `json:"accounts,omitempty"`
	// RecordState filters on RecordState; default ["ACTIVE"].
	RecordState []string `json:"record_state,omitempty"`
	// WorkflowStatus filters on Workflow.Status (NEW, NOTIFIED, RESOLVED,
	// SUPPRESSED); empty means all.
	WorkflowStatus []string `json:"workflow_status,omitempty"`
	// ProductName filters on ProductName ("Security Hub", "GuardDuty",
	// "Inspector", a partner's product name); empty means all.
	ProductName []string `json:"product_name,omitempty"`
	// SeverityLabels filters on Severity.Label (INFORMATIONAL, LOW, MEDIUM,
	// HIGH, CRITICAL); empty means all.
	SeverityLabels []string `json:"severity_labels,omitempty"`
	// RoleARN, when set, is assumed (sts:AssumeRole) with the keys or the
	// default credential chain; ExternalID goes with it if the role's trust
	// policy asks for one.
	RoleARN    string `json:"role_arn,omitempty"`
	ExternalID string `json:"external_id,omitempty"`
	// Endpoint overrides the Security Hub (and STS) endpoint for a local
	// test server. It is accepted only with Local: true and a loopback host.
	Endpoint string `json:"endpoint,omitempty"`
	Local    bool   `json:"local,omitempty"`
}

// Secrets are the sealed credentials of a Security Hub source. Without
// keys the AWS default credential chain is used (environment, shared
// config and credentials files, web identity, container and EC2 instance
// roles).
type Secrets struct {
	AccessKeyID     secret.String `json:"access_key_id"`
	SecretAccessKey secret.String `json:"secret_access_key"`
	SessionToken    secret.String `json:"session_token"`
}

// Source is Recommendation.Source of Security Hub's own findings; other
// products' findings carry the product's name (asff.Finding.Source).
const Source = "securityhub"

var (
	regionRE     = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)
	accountRE    = regexp.MustCompile(`^[0-9]{12}$`)
	roleARNRE    = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$`)
	externalIDRE = regexp.MustCompile(`^[\w+=,.@:/-]{2,}$`)
)

// filterLimit is Security Hub's limit on the values of one filter.
const filterLimit = 20

var (
	recordStates     = []string{"ACTIVE", "ARCHIVED"}
	workflowStatuses = []string{"NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED"}
	severityLabels   = []string{"INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"}
)

// Validate checks the settings, filling defaults; errors name the field.
func (s *Settings) Validate() error {
	var err error
	if s.Regions, err = clean("regions", s.Regions, func(v string) (string, bool) {
		v = strings.ToLower(v)
		return v, regionRE.MatchString(v)
	}, "is not an AWS region such as eu-west-1"); err != nil {
		return err
	}
	if len(s.Regions) == 0 {
		return steward.InvalidAt("regions", "regions is missing (the regions to read findings in, e.g. [\"eu-west-1\"]; with cross-region aggregation, the aggregation region)")
	}
	if s.Accounts, err = clean("accounts", s.Accounts, func(v string) (string, bool) { return v, accountRE.MatchString(v) }, "is not a 12-digit AWS account ID"); err != nil {
		return err
	}
	if len(s.Accounts) > filterLimit {
		return steward.InvalidAt("accounts", "accounts lists %d accounts; Security Hub filters take at most %d (leave it empty to read every account)", len(s.Accounts), filterLimit)
	}
	if len(s.RecordState) == 0 {
		s.RecordState = []string{"ACTIVE"}
	}
	if s.RecordState, err = clean("record_state", s.RecordState, oneOf(recordStates), "is not ACTIVE or ARCHIVED"); err != nil {
		return err
	}
	if s.WorkflowStatus, err = clean("workflow_status", s.WorkflowStatus, oneOf(workflowStatuses), "is not one of NEW, NOTIFIED, RESOLVED, SUPPRESSED"); err != nil {
		return err
	}
	if s.SeverityLabels, err = clean("severity_labels", s.SeverityLabels, oneOf(severityLabels), "is not one of INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL"); err != nil {
		return err
	}
	if s.ProductName, err = clean("product_name", s.ProductName, func(v string) (string, bool) { return v, len(v) <= 256 }, "is longer than 256 characters"); err != nil {
		return err
	}
	if len(s.ProductName) > filterLimit {
		return steward.InvalidAt("product_name", "product_name lists more than %d products", filterLimit)
	}
	s.RoleARN = strings.TrimSpace(s.RoleARN)
	s.ExternalID = strings.TrimSpace(s.ExternalID)
	if s.RoleARN != "" && !roleARNRE.MatchString(s.RoleARN) {
		return steward.InvalidAt("role_arn", "role_arn %q is not an IAM role ARN such as arn:aws:iam::111122223333:role/steward-reader", s.RoleARN)
	}
	if s.ExternalID != "" && s.RoleARN == "" {
		return steward.InvalidAt("external_id", "external_id goes with role_arn, which is empty")
	}
	if s.ExternalID != "" && (len(s.ExternalID) > 1224 || !externalIDRE.MatchString(s.ExternalID)) {
		return steward.InvalidAt("external_id", "external_id must be 2–1224 letters, digits or +=,.@:/-_")
	}
	return pull.CheckEndpoint(s.Endpoint, s.Local, "AWS")
}

func oneOf(allowed []string) func(string) (string, bool) {
	return func(v string) (string, bool) {
		v = strings.ToUpper(v)
		return v, slices.Contains(allowed, v)
	}
}

// clean trims, checks and de-duplicates a list setting.
func clean(field string, in []string, check func(string) (string, bool), what string) ([]string, error) {
	var out []string
	for _, v := range in {
		v, ok := check(strings.TrimSpace(v))
		if !ok {
			return nil, steward.InvalidAt(field, "%s: %q %s", field, v, what)
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if len(out) > filterLimit && field != "regions" {
		return nil, steward.InvalidAt(field, "%s lists more than %d values", field, filterLimit)
	}
	return out, nil
}

// Validate checks the secrets: both keys or neither; a session token only
// with keys.
func (s Secrets) Validate(settings Settings) error {
	switch {
	case s.AccessKeyID.IsZero() && !s.SecretAccessKey.IsZero():
		return steward.InvalidAt("access_key_id", "access_key_id is missing (secret_access_key is set)")
	case !s.AccessKeyID.IsZero() && s.SecretAccessKey.IsZero():
		return steward.InvalidAt("secret_access_key", "secret_access_key is missing (access_key_id is set)")
	case s.AccessKeyID.IsZero() && !s.SessionToken.IsZero():
		return steward.InvalidAt("session_token", "session_token goes with access_key_id and secret_access_key")
	}
	return nil
}

// Retry policy: throttling (429, ThrottlingException, TooManyRequests,
// LimitExceededException) and 5xx answers are retried up to maxAttempts
// attempts in all, waiting what Retry-After says (seconds or an HTTP date)
// or else exponential backoff with jitter up to maxBackoff; a Retry-After
// longer than maxRetryAfter is not waited for and the region fails as
// unavailable.
const (
	maxAttempts   = 5
	maxBackoff    = 20 * time.Second
	maxRetryAfter = 60 * time.Second
	pageSize      = 100 // GetFindings' maximum
)

// puller reads one configured source.
type puller struct {
	settings Settings
	cfg      aws.Config
	redact   []string // secret values scrubbed from error text
	logger   *slog.Logger
	now      func() time.Time
	// backoff, when set (tests), replaces the exponential backoff used
	// when an answer carries no Retry-After.
	backoff func(attempt int) time.Duration
	// sdkDecode (tests) leaves every page to the SDK's decoder.
	sdkDecode bool
}

// New returns a Puller for the settings, with its credential.
func New(s Settings, sec Secrets, env pull.Env) (pull.Puller, error) {
	return newPuller(s, sec, env)
}

func newPuller(s Settings, sec Secrets, env pull.Env) (*puller, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := sec.Validate(s); err != nil {
		return nil, err
	}
	p := &puller{settings: s, logger: env.Logger, now: env.Now}
	if p.logger == nil {
		p.logger = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	hc := env.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	var cfg aws.Config
	if !sec.AccessKeyID.IsZero() {
		cfg = aws.Config{
			Region: s.Regions[0],
			Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(
				sec.AccessKeyID.Reveal(), sec.SecretAccessKey.Reveal(), sec.SessionToken.Reveal())),
		}
		p.redact = []string{sec.AccessKeyID.Reveal(), sec.SecretAccessKey.Reveal(), sec.SessionToken.Reveal()}
	} else {
		// The default chain's own requests (EC2 instance metadata at
		// 169.254.169.254, SSO, web identity) use the SDK's HTTP client:
		// Steward's outbound policy refuses link-local addresses, and these
		// are AWS's fixed endpoints, not a host a user picked.
		var err error
		cfg, err = config.LoadDefaultConfig(context.Background(), config.WithRegion(s.Regions[0]))
		if err != nil {
			return nil, steward.AtField("access_key_id", steward.Errorf(steward.CodeInvalid,
				"securityhub source: the AWS default credential chain cannot be set up (%s); set access_key_id and secret_access_key", firstLine(err.Error())))
		}
	}
	cfg.HTTPClient = hc
	cfg.Retryer = func() aws.Retryer { return p.retryer() }
	if s.RoleARN != "" {
		stsClient := sts.NewFromConfig(cfg, func(o *sts.Options) {
			if s.Endpoint != "" {
				o.BaseEndpoint = aws.String(s.Endpoint)
			}
		})
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, s.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "steward-securityhub"
			if s.ExternalID != "" {
				o.ExternalID = aws.String(s.ExternalID)
			}
		}))
	}
	p.cfg = cfg
	return p, nil
}

func (p *puller) retryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = maxAttempts
		o.MaxBackoff = maxBackoff
		o.Backoff = retryAfter{fallback: retry.NewExponentialJitterBackoff(maxBackoff), test: p.backoff}
	})
}

// retryAfter waits what an answer's Retry-After header says, else backs
// off exponentially.
type retryAfter struct {
	fallback retry.BackoffDelayer
	test     func(int) time.Duration
}

func (r retryAfter) BackoffDelay(attempt int, err error) (time.Duration, error) {
	if d, ok := retryAfterOf(err, time.Now()); ok {
		if d > maxRetryAfter {
			return 0, &tooLongError{wait: d, err: err}
		}
		return d, nil
	}
	if r.test != nil {
		return r.test(attempt), nil
	}
	return r.fallback.BackoffDelay(attempt, err)
}

// tooLongError is a Retry-After longer than the pull waits.
type tooLongError struct {
	wait time.Duration
	err  error
}

func (e *tooLongError) Error() string {
	return fmt.Sprintf("the service asked to retry after %s, longer than the %s this source waits", e.wait.Round(time.Second), maxRetryAfter)
}
func (e *tooLongError) Unwrap() error { return e.err }

func retryAfterOf(err error, now time.Time) (time.Duration, bool) {
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.Response == nil || re.Response.Response == nil {
		return 0, false
	}
	return httpretry.RetryAfter(re.Response.Header.Get("Retry-After"), now)
}

// client returns the Security Hub client of a region.
func (p *puller) client(region string) *securityhub.Client {
	return securityhub.NewFromConfig(p.cfg, func(o *securityhub.Options) {
		o.Region = region
		if p.settings.Endpoint != "" {
			o.BaseEndpoint = aws.String(p.settings.Endpoint)
		}
	})
}

// filters builds GetFindings' filters from the settings.
func (p *puller) filters() *types.AwsSecurityFindingFilters {
	eq := func(vs []string) []types.StringFilter {
		var out []types.StringFilter
		for _, v := range vs {
			out = append(out, types.StringFilter{Comparison: types.StringFilterComparisonEquals, Value: aws.String(v)})
		}
		return out
	}
	s := p.settings
	return &types.AwsSecurityFindingFilters{
		RecordState:    eq(s.RecordState),
		WorkflowStatus: eq(s.WorkflowStatus),
		ProductName:    eq(s.ProductName),
		SeverityLabel:  eq(s.SeverityLabels),
		AwsAccountId:   eq(s.Accounts),
	}
}

// narrowing says why the filters keep a pull from proving findings gone,
// or "" when they do not.
func (s *Settings) narrowing() string {
	if len(s.SeverityLabels) > 0 {
		return "the severity_labels filter narrows the pull (a finding whose severity changes leaves it while still failing), so nothing is marked gone; remove the filter to have gone findings marked Healthy"
	}
	if len(s.WorkflowStatus) > 0 && !(slices.Contains(s.WorkflowStatus, "NEW") && slices.Contains(s.WorkflowStatus, "NOTIFIED")) {
		return "the workflow_status filter narrows the pull (it must hold both NEW and NOTIFIED for a finding that leaves it to be resolved or suppressed), so nothing is marked gone"
	}
	if !slices.Contains(s.RecordState, "ACTIVE") {
		return "the record_state filter leaves out ACTIVE findings, so nothing is marked gone"
	}
	return ""
}

type unitState struct {
	unit   pull.Unit
	region string
}

// Pull reads every configured region; see the package doc for units.
func (p *puller) Pull(ctx context.Context, sink pull.Sink) error {
	var (
		units     []*unitState
		byID      = map[string]*unitState{}
		regionErr = map[string]error{}
		failed    []string // regions whose stream failed, in order
		readAny   bool     // a page was answered: the credential works
	)
	unitOf := func(account, region string) *unitState {
		id := account + "/" + region
		if u, ok := byID[id]; ok {
			return u
		}
		u := &unitState{unit: pull.Unit{ID: id, Scope: steward.Scope("/aws/accounts/" + account)}, region: region}
		byID[id] = u
		units = append(units, u)
		return u
	}
	for _, region := range p.settings.Regions {
		err := p.pullRegion(ctx, sink, region, unitOf, &readAny)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var stop *stopError
		if errors.As(err, &stop) {
			if stop.sink || !readAny {
				return stop.err
			}
			err = stop.err
		}
		// Listed accounts have a unit even without findings, so the last
		// finding of an account can be marked gone.
		for _, a := range p.settings.Accounts {
			unitOf(a, region)
		}
		if err == nil {
			continue
		}
		p.logger.Warn("securityhub: region failed", "region", region, "error", steward.ErrorMessage(err))
		regionErr[region] = err
		failed = append(failed, region)
	}
	if len(units) == 0 && len(failed) > 0 {
		// No account was named, so no unit can carry the error: the pull
		// as a whole failed (a region where Security Hub is not enabled,
		// throttling from the first page on).
		return regionErr[failed[0]]
	}
	narrow := p.settings.narrowing()
	for _, u := range units {
		switch {
		case regionErr[u.region] != nil:
			sink.Failed(ctx, u.unit, regionErr[u.region])
		case len(failed) > 0:
			sink.Failed(ctx, u.unit, steward.WrapError(steward.ErrorCode(regionErr[failed[0]]), regionErr[failed[0]],
				"securityhub source: %s was read, but reading region %s failed (%s); the unit's scope is the whole account, so nothing is marked gone for it",
				u.unit.ID, failed[0], steward.ErrorMessage(regionErr[failed[0]])))
		case narrow != "":
			sink.Failed(ctx, u.unit, steward.Errorf(steward.CodeInvalid, "securityhub source: %s", narrow))
		default:
			if err := sink.Done(ctx, u.unit); err != nil {
				return err
			}
		}
	}
	return nil
}

// stopError is an error that may stop the whole pull: a Sink error always,
// a refused credential when nothing was read yet.
type stopError struct {
	err  error
	sink bool
}

func (e *stopError) Error() string { return e.err.Error() }
func (e *stopError) Unwrap() error { return e.err }

// pullRegion reads one region's stream. A page is mapped as a whole before
// any of it reaches the sink, so a page with a finding that cannot be
// mapped adds nothing.
func (p *puller) pullRegion(ctx context.Context, sink pull.Sink, region string, unitOf func(account, region string) *unitState, readAny *bool) error {
	client := p.client(region)
	pager := securityhub.NewGetFindingsPaginator(client, &securityhub.GetFindingsInput{
		Filters:    p.filters(),
		MaxResults: aws.Int32(pageSize),
	})
	type item struct {
		u   *unitState
		obs steward.Observation
	}
	var batch []item
	read := 0
	defer func() { p.logger.Debug("securityhub: region read", "region", region, "findings", read) }()
	for page := 1; pager.HasMorePages(); page++ {
		var findings []asff.Finding
		var opts []func(*securityhub.Options)
		if !p.sdkDecode {
			opts = append(opts, decodeFindingsInto(&findings))
		}
		out, err := pager.NextPage(ctx, opts...)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			e, credential := p.describe(err, region, page)
			if credential {
				return &stopError{err: e}
			}
			return e
		}
		*readAny = true
		if findings == nil {
			// The page was decoded by the SDK (decodeFindingsInto leaves
			// what it cannot decode to it).
			for i := range out.Findings {
				findings = append(findings, *fromSDK(&out.Findings[i]))
			}
		}
		batch = batch[:0]
		for i := range findings {
			f := &findings[i]
			account := strings.TrimSpace(f.AwsAccountID)
			if len(p.settings.Accounts) > 0 && !slices.Contains(p.settings.Accounts, account) {
				continue // the service filters; this only guards the scope
			}
			o, err := f.Observation()
			if err != nil {
				return steward.WrapError(steward.CodeInvalid, err, "securityhub source: GetFindings in %s, page %d, finding %d (%s): %s",
					region, page, i+1, truncate(f.ID, 200), steward.ErrorMessage(err))
			}
			batch = append(batch, item{u: unitOf(account, region), obs: o})
		}
		for _, it := range batch {
			if err := sink.Observe(ctx, it.u.unit, it.obs); err != nil {
				return &stopError{err: err, sink: true}
			}
		}
		read += len(batch)
	}
	return nil
}

// decodeFindingsInto adds a step inside GetFindings' own response decoder:
// a successful answer's findings are decoded straight into asff.Finding
// (ASFF's field names are the API's) and the SDK is handed the page
// without them, only its NextToken. The SDK decodes a page into generic
// maps before building its types, which made it most of a pull's CPU time
// (a 200,000-finding pull took several times longer). An answer that does
// not decode this way is left whole to the SDK, whose errors say what is
// wrong, and *into stays nil.
func decodeFindingsInto(into *[]asff.Finding) func(*securityhub.Options) {
	return func(o *securityhub.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Deserialize.Insert(findingsDecoder{into: into}, "OperationDeserializer", middleware.After)
		})
	}
}

type findingsDecoder struct{ into *[]asff.Finding }

func (findingsDecoder) ID() string { return "StewardFindingsDecoder" }

func (d findingsDecoder) HandleDeserialize(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (
	middleware.DeserializeOutput, middleware.Metadata, error,
) {
	out, md, err := next.HandleDeserialize(ctx, in)
	if err != nil {
		return out, md, err
	}
	resp, ok := out.RawResponse.(*smithyhttp.Response)
	if !ok || resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return out, md, err
	}
	body, rerr := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if rerr != nil {
		return out, md, rerr
	}
	var page struct {
		Findings  []asff.Finding `json:"Findings"`
		NextToken *string        `json:"NextToken"`
	}
	if json.Unmarshal(body, &page) != nil {
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return out, md, nil
	}
	if page.Findings == nil {
		page.Findings = []asff.Finding{}
	}
	*d.into = page.Findings
	rest, _ := json.Marshal(struct {
		NextToken *string `json:"NextToken,omitempty"`
	}{page.NextToken})
	resp.Body = io.NopCloser(bytes.NewReader(rest))
	return out, md, nil
}

// describe turns a GetFindings error into a user-safe *steward.Error that
// names the region and page, and says whether the credential was refused.
// Secret values are scrubbed from any text the service sent.
func (p *puller) describe(err error, region string, page int) (*steward.Error, bool) {
	what := fmt.Sprintf("GetFindings in %s, page %d", region, page)
	cause := scrubbed{msg: p.scrub(err.Error()), err: err}
	if tl, ok := errors.AsType[*tooLongError](err); ok {
		return steward.WrapError(steward.CodeUnavailable, cause, "securityhub source: %s: throttled; %s", what, tl.Error()), false
	}
	if _, ok := errors.AsType[*smithy.DeserializationError](err); ok {
		return steward.WrapError(steward.CodeInvalid, cause, "securityhub source: %s: the answer is not a GetFindings page (%s)", what, p.scrub(lastPart(err.Error()))), false
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		code := api.ErrorCode()
		msg := p.scrub(firstLine(api.ErrorMessage()))
		status := 0
		var re *smithyhttp.ResponseError
		if errors.As(err, &re) {
			status = re.HTTPStatusCode()
		}
		switch code {
		case "UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException", "SignatureDoesNotMatch",
			"ExpiredToken", "ExpiredTokenException", "IncompleteSignature", "MissingAuthenticationToken", "AuthFailure":
			return steward.WrapError(steward.CodeUnauthorized, cause,
				"securityhub source: AWS refused the credentials (%s) for %s; check access_key_id and secret_access_key (or the default credential chain), which may have expired", code, what), true
		case "AccessDeniedException", "AccessDenied":
			return steward.WrapError(steward.CodeForbidden, cause,
				"securityhub source: the credentials may not read findings (%s) for %s; they need securityhub:GetFindings: %s", code, what, msg), true
		case "InvalidAccessException":
			return steward.WrapError(steward.CodeForbidden, cause,
				"securityhub source: %s: Security Hub is not enabled for the account in this region (%s): %s", what, code, msg), false
		case "ThrottlingException", "TooManyRequestsException", "LimitExceededException", "Throttling":
			return steward.WrapError(steward.CodeUnavailable, cause,
				"securityhub source: %s: still throttled (%s) after %d attempts", what, code, maxAttempts), false
		}
		if status >= 500 || status == http.StatusTooManyRequests {
			return steward.WrapError(steward.CodeUnavailable, cause,
				"securityhub source: %s: Security Hub did not answer (HTTP %d %s) after %d attempts", what, status, code, maxAttempts), false
		}
		return steward.WrapError(steward.CodeInvalid, cause, "securityhub source: %s: Security Hub refused the request (HTTP %d %s): %s", what, status, code, msg), false
	}
	if strings.Contains(err.Error(), "failed to retrieve credentials") || strings.Contains(err.Error(), "failed to refresh cached credentials") {
		return steward.WrapError(steward.CodeUnauthorized, cause,
			"securityhub source: no AWS credentials for %s (%s); set access_key_id and secret_access_key, or give the host a role", what, p.scrub(lastPart(err.Error()))), true
	}
	return steward.WrapError(steward.CodeUnavailable, cause, "securityhub source: %s failed: %s", what, p.scrub(lastPart(err.Error()))), false
}

// scrubbed is an SDK error whose text had secret values removed; Error
// returns the scrubbed text.
type scrubbed struct {
	msg string
	err error
}

func (s scrubbed) Error() string { return s.msg }
func (s scrubbed) Unwrap() error { return s.err }

func (p *puller) scrub(s string) string {
	for _, v := range p.redact {
		if len(v) >= 4 {
			s = strings.ReplaceAll(s, v, secret.Redacted)
		}
	}
	return s
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}

// lastPart is the innermost cause of an SDK error chain ("a: b: c" → "c").
func lastPart(s string) string {
	s = firstLine(s)
	if i := strings.LastIndex(s, ": "); i >= 0 && i < len(s)-2 {
		return s[i+2:]
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// fromSDK converts the SDK's finding into the fields asff maps.
func fromSDK(f *types.AwsSecurityFinding) *asff.Finding {
	s := aws.ToString
	out := &asff.Finding{
		ID: s(f.Id), ProductArn: s(f.ProductArn), ProductName: s(f.ProductName), CompanyName: s(f.CompanyName),
		Region: s(f.Region), GeneratorID: s(f.GeneratorId), AwsAccountID: s(f.AwsAccountId), Types: f.Types,
		FirstObservedAt: s(f.FirstObservedAt), LastObservedAt: s(f.LastObservedAt), CreatedAt: s(f.CreatedAt), UpdatedAt: s(f.UpdatedAt),
		Title: s(f.Title), Description: s(f.Description), ProductFields: f.ProductFields, RecordState: string(f.RecordState),
	}
	if f.Severity != nil {
		out.Severity = &asff.Severity{Label: string(f.Severity.Label)}
		if f.Severity.Normalized != nil {
			n := int(*f.Severity.Normalized)
			out.Severity.Normalized = &n
		}
	}
	if f.FindingProviderFields != nil && f.FindingProviderFields.Severity != nil {
		out.FindingProviderFields = &asff.FindingProviderFields{Severity: &asff.Severity{Label: string(f.FindingProviderFields.Severity.Label)}}
	}
	if f.Remediation != nil && f.Remediation.Recommendation != nil {
		out.Remediation = &asff.Remediation{Recommendation: &asff.Recommendation{Text: s(f.Remediation.Recommendation.Text), URL: s(f.Remediation.Recommendation.Url)}}
	}
	for _, r := range f.Resources {
		res := asff.Resource{Type: s(r.Type), ID: s(r.Id), Partition: string(r.Partition), Region: s(r.Region), Tags: r.Tags}
		if r.Details != nil && len(r.Details.Other) > 0 {
			res.Details = &asff.ResourceDetails{Other: r.Details.Other}
		}
		out.Resources = append(out.Resources, res)
	}
	if f.Compliance != nil {
		c := &asff.Compliance{Status: string(f.Compliance.Status), SecurityControlID: s(f.Compliance.SecurityControlId)}
		for _, r := range f.Compliance.StatusReasons {
			c.StatusReasons = append(c.StatusReasons, asff.StatusReason{ReasonCode: s(r.ReasonCode), Description: s(r.Description)})
		}
		out.Compliance = c
	}
	if f.Workflow != nil {
		out.Workflow = &asff.Workflow{Status: string(f.Workflow.Status)}
	}
	for _, v := range f.Vulnerabilities {
		out.Vulnerabilities = append(out.Vulnerabilities, asff.Vulnerability{ID: s(v.Id)})
	}
	return out
}
