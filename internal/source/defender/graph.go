package defender

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resourcegraph/armresourcegraph"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/pull"
)

// assessmentsQuery reads Defender's assessments with what Steward needs of
// their recommendation (Resource Graph keeps the assessment metadata in
// properties.metadata of each row) and, through a join with the resources
// table, the assessed resource's tags and location. Ordered by id so that
// $skipToken paging is stable.
const assessmentsQuery = `securityresources
| where type == 'microsoft.security/assessments'
| extend resourceId = tostring(coalesce(properties.resourceDetails.Id, properties.resourceDetails.id, properties.resourceDetails.ResourceId))
| extend joinId = tolower(resourceId)
| join kind=leftouter (resources | project joinId = tolower(id), resourceTags = tags, resourceLocation = location) on joinId
| project id, subscriptionId, key = name, resourceId,
    source = tostring(coalesce(properties.resourceDetails.Source, properties.resourceDetails.source)),
    resourceName = tostring(properties.resourceDetails.ResourceName),
    resourceType = tostring(properties.resourceDetails.ResourceType),
    nativeRegion = tostring(properties.resourceDetails.Region),
    status = tostring(properties.status.code), cause = tostring(properties.status.cause),
    statusDescription = tostring(properties.status.description),
    displayName = tostring(properties.displayName),
    severity = tostring(properties.metadata.severity),
    description = tostring(properties.metadata.description),
    remediation = tostring(properties.metadata.remediationDescription),
    categories = properties.metadata.categories,
    timeGenerated = tostring(properties.timeGenerated),
    resourceTags, resourceLocation
| order by id asc`

// containersQuery reads the tags of subscriptions and resource groups, for
// the owner lookup of governance rules (Sink.ScopeTags).
const containersQuery = `resourcecontainers
| where type =~ 'microsoft.resources/subscriptions' or type =~ 'microsoft.resources/subscriptions/resourcegroups'
| project id, type, subscriptionId, tags
| order by id asc`

// subscriptionsQuery lists every subscription the credential can see (used
// when Settings.Subscriptions is empty).
const subscriptionsQuery = `resourcecontainers
| where type =~ 'microsoft.resources/subscriptions'
| project id, subscriptionId, tags
| order by id asc`

// graphVersion is the Resource Graph API version armresourcegraph's
// Client.Resources uses.
const graphVersion = "2024-04-01"

// graphClient is an ARM client (the SDK's pipeline: bearer token, retry,
// Steward's transport) for Resource Graph queries.
func (p *puller) graphClient() (*arm.Client, error) {
	return arm.NewClient("steward-defender", "v1.0.0", p.cred, p.armOpts)
}

// graphRow is a row of any of the three queries, in objectArray format.
// The rows are decoded into this struct rather than into
// armresourcegraph.QueryResponse's Data (an any of maps), which took half
// again the CPU and twice the allocations for the same pull
// (docs/benchmarks.md).
type graphRow struct {
	ID                string         `json:"id"`
	Type              string         `json:"type"`
	SubscriptionID    string         `json:"subscriptionId"`
	Tags              map[string]any `json:"tags"`
	Key               string         `json:"key"`
	ResourceID        string         `json:"resourceId"`
	Source            string         `json:"source"`
	ResourceName      string         `json:"resourceName"`
	ResourceType      string         `json:"resourceType"`
	NativeRegion      string         `json:"nativeRegion"`
	Status            string         `json:"status"`
	Cause             string         `json:"cause"`
	StatusDescription string         `json:"statusDescription"`
	DisplayName       string         `json:"displayName"`
	Severity          string         `json:"severity"`
	Description       string         `json:"description"`
	Remediation       string         `json:"remediation"`
	Categories        []any          `json:"categories"`
	TimeGenerated     string         `json:"timeGenerated"`
	ResourceTags      map[string]any `json:"resourceTags"`
	ResourceLocation  string         `json:"resourceLocation"`
}

// graphPage is a Resource Graph answer (armresourcegraph.QueryResponse).
type graphPage struct {
	Data            []graphRow `json:"data"`
	SkipToken       string     `json:"$skipToken"`
	ResultTruncated string     `json:"resultTruncated"`
}

// pageError is a failed Resource Graph or ARM page.
type pageError struct {
	what string
	page int
	err  error
}

func (e *pageError) Error() string { return fmt.Sprintf("%s, page %d: %v", e.what, e.page, e.err) }
func (e *pageError) Unwrap() error { return e.err }

// graphQuery runs query over subs (nil: every subscription the credential
// sees), page by page, calling each for every row. The request is
// armresourcegraph's QueryRequest, sent through the SDK's ARM pipeline.
func (p *puller) graphQuery(ctx context.Context, client *arm.Client, query string, subs []string, what string, each func(row *graphRow) error) error {
	format := armresourcegraph.ResultFormatObjectArray
	top := p.pageSize
	qr := armresourcegraph.QueryRequest{Query: &query, Options: &armresourcegraph.QueryRequestOptions{ResultFormat: &format, Top: &top}}
	for _, s := range subs {
		qr.Subscriptions = append(qr.Subscriptions, &s)
	}
	url := runtime.JoinPaths(client.Endpoint(), "/providers/Microsoft.ResourceGraph/resources") + "?api-version=" + graphVersion
	for page := 1; ; page++ {
		req, err := runtime.NewRequest(ctx, http.MethodPost, url)
		if err != nil {
			return &pageError{what: what, page: page, err: err}
		}
		req.Raw().Header["Accept"] = []string{"application/json"}
		if err := runtime.MarshalAsJSON(req, qr); err != nil {
			return &pageError{what: what, page: page, err: err}
		}
		resp, err := client.Pipeline().Do(req)
		if err != nil {
			return &pageError{what: what, page: page, err: err}
		}
		if !runtime.HasStatusCode(resp, http.StatusOK) {
			return &pageError{what: what, page: page, err: runtime.NewResponseError(resp)}
		}
		var body graphPage
		if err := runtime.UnmarshalAsJSON(resp, &body); err != nil {
			return &pageError{what: what, page: page, err: steward.Errorf(steward.CodeInvalid, "the answer is not a page of rows (%s)", firstLine(err.Error()))}
		}
		for i := range body.Data {
			if err := each(&body.Data[i]); err != nil {
				return err
			}
		}
		if body.SkipToken == "" {
			if body.ResultTruncated == string(armresourcegraph.ResultTruncatedTrue) {
				return &pageError{what: what, page: page, err: steward.Errorf(steward.CodeUnavailable, "Resource Graph truncated the result without a $skipToken to read on")}
			}
			return nil
		}
		tok := body.SkipToken
		qr.Options.SkipToken = &tok
	}
}

func isForbidden(err error) bool {
	re, ok := errors.AsType[*azcore.ResponseError](err)
	return ok && re.StatusCode == http.StatusForbidden
}

// graphBatch reads one batch of subscriptions through Resource Graph. It
// returns errGraphForbidden when Resource Graph answered 403 before any of
// the batch's units ended (the caller falls back to the assessments API),
// and an error only for what stops the whole pull.
func (r *run) graphBatch(ctx context.Context, batch []pull.Unit) error {
	client, err := r.p.graphClient()
	if err != nil {
		return steward.WrapError(steward.CodeInternal, err, "defender source: Resource Graph client")
	}
	units := map[string]pull.Unit{}
	subs := make([]string, len(batch))
	for i, u := range batch {
		units[u.ID] = u
		subs[i] = u.ID
	}
	desc := "subscription " + subs[0]
	if len(subs) > 1 {
		desc = fmt.Sprintf("subscriptions %s … %s (%d)", subs[0], subs[len(subs)-1], len(subs))
	}
	failAll := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		what := "the Resource Graph query"
		if pe, ok := errors.AsType[*pageError](err); ok {
			what = fmt.Sprintf("%s, page %d", pe.what, pe.page)
		}
		se, stop := requestError(err, what)
		if e, ok := errors.AsType[*steward.Error](err); ok && !isSDKError(err) {
			se = steward.WrapError(e.Code, err, "defender source: %s: %s", what, e.Message)
		}
		for _, u := range batch {
			r.failed(ctx, u, se)
		}
		if stop {
			return se
		}
		return nil
	}

	// Tags of the batch's subscriptions and resource groups. A subscription
	// the credential cannot see has no row here; Resource Graph would also
	// answer its assessments with nothing, which must not read as "every
	// finding is gone".
	var tagErr error
	visible := map[string]bool{}
	err = r.p.graphQuery(ctx, client, containersQuery, subs, "Resource Graph query of subscription and resource group tags for "+desc, func(row *graphRow) error {
		id := row.ID
		if id == "" {
			return nil
		}
		if strings.EqualFold(row.Type, "microsoft.resources/subscriptions") {
			visible[strings.ToLower(row.SubscriptionID)] = true
		}
		if err := r.sink.ScopeTags(ctx, steward.Scope(id), tagMap(row.Tags)); err != nil {
			tagErr = err
			return err
		}
		return nil
	})
	if tagErr != nil {
		return tagErr
	}
	if err != nil {
		if isForbidden(err) {
			return errGraphForbidden
		}
		return failAll(err)
	}

	for _, u := range batch {
		if !visible[u.ID] {
			r.failed(ctx, u, steward.Errorf(steward.CodeForbidden, "defender source: subscription %s is not visible to the credential in Resource Graph (no such subscription, or no role on it); nothing was read there", u.ID))
		}
	}

	// The assessments.
	var sinkErr error
	observed := 0
	err = r.p.graphQuery(ctx, client, assessmentsQuery, subs, "Resource Graph query of assessments for "+desc, func(row *graphRow) error {
		f := findingFromRow(row)
		sub := strings.ToLower(row.SubscriptionID)
		u, ok := units[sub]
		if !ok {
			u, ok = units[subscriptionOf(f.resourceID)]
		}
		if !ok {
			r.p.log.Warn("defender source: Resource Graph returned an assessment outside the queried subscriptions; skipped", "subscription", sub, "key", f.key)
			return nil
		}
		if r.ended[u.ID] {
			return nil
		}
		obs, err := f.observation(u)
		if err != nil {
			r.failed(ctx, u, steward.WrapError(steward.CodeInvalid, err, "defender source: Resource Graph assessment %q in subscription %s: %s", f.assessmentID, u.ID, steward.ErrorMessage(err)))
			return nil
		}
		if err := r.sink.Observe(ctx, u, obs); err != nil {
			sinkErr = err
			return err
		}
		observed++
		return nil
	})
	if sinkErr != nil {
		return sinkErr
	}
	if err != nil {
		if isForbidden(err) && observed == 0 && !r.anyEnded(batch) {
			return errGraphForbidden
		}
		return failAll(err)
	}
	for _, u := range batch {
		if err := r.done(ctx, u); err != nil {
			return err
		}
	}
	return nil
}

// isSDKError reports whether err came from the Azure SDK (a response or
// credential error), as opposed to Steward's own check of a page.
func isSDKError(err error) bool {
	if _, ok := errors.AsType[*azcore.ResponseError](err); ok {
		return true
	}
	return isCredentialError(err)
}

// units lists the pull's units: the configured subscriptions, else every
// subscription the credential can see.
func (p *puller) units(ctx context.Context) ([]pull.Unit, error) {
	if len(p.settings.Subscriptions) > 0 {
		out := make([]pull.Unit, len(p.settings.Subscriptions))
		for i, id := range p.settings.Subscriptions {
			out[i] = unitFor(strings.ToLower(id))
		}
		return out, nil
	}
	var ids []string
	seen := map[string]bool{}
	add := func(id string) {
		id = strings.ToLower(strings.TrimSpace(id))
		if guidRE.MatchString(id) && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	listed := false
	if p.graph {
		client, err := p.graphClient()
		if err != nil {
			return nil, steward.WrapError(steward.CodeInternal, err, "defender source: Resource Graph client")
		}
		err = p.graphQuery(ctx, client, subscriptionsQuery, nil, "Resource Graph query listing subscriptions", func(row *graphRow) error {
			add(row.SubscriptionID)
			return nil
		})
		switch {
		case err == nil:
			listed = true
		case isForbidden(err):
		default:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			se, _ := requestError(err, "the list of subscriptions (Resource Graph)")
			return nil, se
		}
	}
	if !listed {
		subs, err := p.listSubscriptions(ctx)
		if err != nil {
			return nil, err
		}
		for _, s := range subs {
			add(s.ID)
		}
	}
	out := make([]pull.Unit, len(ids))
	for i, id := range ids {
		out[i] = unitFor(id)
	}
	p.log.Info("defender source: subscriptions listed", "count", len(out))
	return out, nil
}

func tagMap(m map[string]any) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		switch v := v.(type) {
		case string:
			out[k] = v
		case nil:
			out[k] = ""
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}
